//! Prometheus metrics, with Linkerd's names so dashboards carry over.
//!
//! Label sets are resolved once per connection and the resulting counters are kept on the
//! connection, so the per-request cost is a few atomic adds.

mod http;
mod resilience;
mod trace;

pub use http::{HttpMetrics, RequestLabels, ResponseLabels};
pub use resilience::{FailFast, ResilienceMetrics};
pub use trace::TraceMetrics;

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use std::{fmt::Write as _, net::SocketAddr, sync::Arc, sync::atomic::AtomicU64};

/// Which side of the pod a connection is on.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Direction {
    /// Arriving for the local app.
    Inbound,
    /// Leaving the local app.
    Outbound,
}

impl Direction {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl EncodeLabelValue for Direction {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

/// A label value shared by reference, so cloning a label set does not copy strings.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Shared(pub Arc<str>);

impl Shared {
    /// A label value.
    pub fn new(value: &str) -> Self {
        Self(value.into())
    }

    /// The empty label value (shared: no allocation per use).
    pub fn empty() -> Self {
        static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        Self(EMPTY.get_or_init(|| Arc::from("")).clone())
    }
}

impl EncodeLabelValue for Shared {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(&self.0)
    }
}

/// Labels of a connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnLabels {
    /// inbound | outbound.
    pub direction: Direction,
    /// Where the proxy forwards to.
    pub target_addr: Shared,
    /// The detected protocol: http1, h2, tls, opaque.
    pub protocol: &'static str,
}

/// Every metric the proxy exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    tcp_open: Family<ConnLabels, Counter>,
    tcp_open_connections: Family<ConnLabels, Gauge>,
    tcp_read_bytes: Family<ConnLabels, Counter>,
    tcp_write_bytes: Family<ConnLabels, Counter>,
    http: http::HttpFamilies,
    resident_memory: Gauge,
    cpu_seconds: Gauge<f64, AtomicU64>,
    control_updates: Family<KindLabels, Counter>,
    inbound_authz: AuthzMetrics,
    resilience: ResilienceMetrics,
    trace: TraceMetrics,
    access_log_dropped: Counter,
    identity_expiry: Gauge,
}

/// Labels of control-plane update counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// One connection's counters, resolved once.
#[derive(Debug)]
pub struct ConnMetrics {
    /// Bytes read from the client.
    pub read: Counter,
    /// Bytes written to the client.
    pub write: Counter,
    open: Gauge,
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let tcp_open = Family::default();
        let tcp_open_connections = Family::default();
        let tcp_read_bytes = Family::default();
        let tcp_write_bytes = Family::default();
        let http = http::HttpFamilies::new(&mut registry);
        let resident_memory = Gauge::default();
        let cpu_seconds = Gauge::<f64, AtomicU64>::default();
        let control_updates = Family::default();
        let inbound_authz = AuthzMetrics::default();
        inbound_authz.register(&mut registry);
        let resilience = ResilienceMetrics::default();
        resilience.register(&mut registry);
        let trace = TraceMetrics::default();
        trace.register(&mut registry);
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped",
            "Access log lines dropped because stdout could not keep up",
            access_log_dropped.clone(),
        );
        let identity_expiry = Gauge::default();
        registry.register(
            "identity_cert_expiration_timestamp_seconds",
            "When the proxy's current certificate expires, in seconds since the Unix epoch (0: none yet)",
            identity_expiry.clone(),
        );
        registry.register(
            "control_plane_updates",
            "Updates received from the controller, by stream kind",
            control_updates.clone(),
        );
        registry.register("tcp_open", "Connections opened", tcp_open.clone());
        registry.register(
            "tcp_open_connections",
            "Connections open now",
            tcp_open_connections.clone(),
        );
        registry.register(
            "tcp_read_bytes",
            "Bytes read from clients",
            tcp_read_bytes.clone(),
        );
        registry.register(
            "tcp_write_bytes",
            "Bytes written to clients",
            tcp_write_bytes.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory",
            resident_memory.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time",
            cpu_seconds.clone(),
        );
        Arc::new(Self {
            registry,
            tcp_open,
            tcp_open_connections,
            tcp_read_bytes,
            tcp_write_bytes,
            http,
            resident_memory,
            cpu_seconds,
            control_updates,
            inbound_authz,
            resilience,
            trace,
            access_log_dropped,
            identity_expiry,
        })
    }

    /// Records when the proxy's newly installed certificate expires.
    pub fn set_identity_expiry(&self, not_after: std::time::SystemTime) {
        let secs = not_after
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.identity_expiry
            .set(i64::try_from(secs).unwrap_or(i64::MAX));
    }

    /// The inbound authorization counters.
    pub fn inbound_authz(&self) -> &AuthzMetrics {
        &self.inbound_authz
    }

    /// Access log lines dropped.
    pub fn access_log_dropped(&self) -> &Counter {
        &self.access_log_dropped
    }

    /// The span export counters.
    pub fn trace(&self) -> &TraceMetrics {
        &self.trace
    }

    /// The retry, timeout, ejection and fail-fast counters.
    pub fn resilience(&self) -> &ResilienceMetrics {
        &self.resilience
    }

    /// Counts one message from the controller on a `kind` stream (`outbound_policy`,
    /// `destination`), so tools can see when an update has been applied.
    pub fn control_update(&self, kind: &'static str) {
        self.control_updates
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// Counts a new connection and returns its live counters.
    pub fn connection(&self, labels: &ConnLabels) -> ConnMetrics {
        self.tcp_open.get_or_create(labels).inc();
        let open = self.tcp_open_connections.get_or_create(labels).clone();
        open.inc();
        ConnMetrics {
            read: self.tcp_read_bytes.get_or_create(labels).clone(),
            write: self.tcp_write_bytes.get_or_create(labels).clone(),
            open,
        }
    }

    /// The request metrics of an HTTP connection to `target`; `client_id` is the identity a
    /// meshed inbound client proved.
    pub fn http(
        &self,
        direction: Direction,
        target: &Shared,
        client_id: Option<&str>,
    ) -> HttpMetrics {
        HttpMetrics::new(&self.http, direction, target.clone(), client_id)
    }

    /// Renders the text exposition format.
    pub fn encode(&self) -> String {
        self.sample_process();
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# metrics encoding failed");
        }
        out
    }

    fn sample_process(&self) {
        // statm: size resident ...; in pages.
        if let Some(pages) = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok())
        {
            self.resident_memory.set(pages * 4096);
        }
        // stat: fields 14 and 15 (utime, stime) in clock ticks, after the `(comm)` field.
        if let Some(ticks) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 2..];
                let mut f = rest.split_whitespace().skip(11);
                Some(f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?)
            })
        {
            self.cpu_seconds.set(ticks as f64 / 100.0);
        }
    }
}

/// The label value for a forwarding target.
pub fn target_label(addr: SocketAddr) -> Shared {
    Shared(addr.to_string().into())
}

impl Drop for ConnMetrics {
    fn drop(&mut self) {
        self.open.dec();
    }
}

// === inbound authorization ===

/// Labels of allowed inbound HTTP requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpAllowLabels {
    srv_name: Arc<str>,
    route_name: Arc<str>,
    authz_name: Arc<str>,
    tls: bool,
}

/// Labels of denied inbound HTTP requests: no authorization admitted them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpDenyLabels {
    srv_name: Arc<str>,
    route_name: Arc<str>,
    tls: bool,
}

/// Labels of inbound connections authorized as a whole (opaque, TLS, or not HTTP).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TcpAuthzLabels {
    srv_name: Arc<str>,
    tls: bool,
}

/// Inbound authorization decisions: `inbound_http_authz_{allow,deny}_total` per request and
/// `inbound_tcp_authz_{allow,deny}_total` per opaque connection. `tls` is whether the proxy
/// terminated mesh TLS for the client.
#[derive(Clone, Debug, Default)]
pub struct AuthzMetrics {
    http_allow: Family<HttpAllowLabels, Counter>,
    http_deny: Family<HttpDenyLabels, Counter>,
    tcp_allow: Family<TcpAuthzLabels, Counter>,
    tcp_deny: Family<TcpAuthzLabels, Counter>,
}

impl AuthzMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "inbound_http_authz_allow",
            "Inbound HTTP requests allowed, by server, route and authorization",
            self.http_allow.clone(),
        );
        registry.register(
            "inbound_http_authz_deny",
            "Inbound HTTP requests denied (no authorization admitted them), by server and route",
            self.http_deny.clone(),
        );
        registry.register(
            "inbound_tcp_authz_allow",
            "Inbound connections allowed as a whole, by server",
            self.tcp_allow.clone(),
        );
        registry.register(
            "inbound_tcp_authz_deny",
            "Inbound connections refused as a whole, by server",
            self.tcp_deny.clone(),
        );
    }

    /// Counts an HTTP request `authz` let through on `route` of `server`.
    pub fn http_allow(&self, server: &Arc<str>, route: &Arc<str>, authz: &Arc<str>, tls: bool) {
        let labels = HttpAllowLabels {
            srv_name: server.clone(),
            route_name: route.clone(),
            authz_name: authz.clone(),
            tls,
        };
        self.http_allow.get_or_create(&labels).inc();
    }

    /// Counts an HTTP request no authorization of `route` on `server` let through.
    pub fn http_deny(&self, server: &Arc<str>, route: &Arc<str>, tls: bool) {
        let labels = HttpDenyLabels {
            srv_name: server.clone(),
            route_name: route.clone(),
            tls,
        };
        self.http_deny.get_or_create(&labels).inc();
    }

    /// Counts a connection to `server`, allowed or not.
    pub fn tcp(&self, server: &Arc<str>, tls: bool, allowed: bool) {
        let labels = TcpAuthzLabels {
            srv_name: server.clone(),
            tls,
        };
        let family = if allowed {
            &self.tcp_allow
        } else {
            &self.tcp_deny
        };
        family.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_authorization_counters_follow_the_design() {
        let m = Metrics::new();
        let (srv, route, authz) = (Arc::from("web"), Arc::from("admin"), Arc::from("mesh"));
        m.inbound_authz().http_allow(&srv, &route, &authz, true);
        m.inbound_authz().http_allow(&srv, &route, &authz, true);
        m.inbound_authz().http_deny(&srv, &route, false);
        m.inbound_authz().tcp(&srv, true, true);
        m.inbound_authz().tcp(&srv, false, false);
        let text = m.encode();
        for line in [
            r#"inbound_http_authz_allow_total{srv_name="web",route_name="admin",authz_name="mesh",tls="true"} 2"#,
            r#"inbound_http_authz_deny_total{srv_name="web",route_name="admin",tls="false"} 1"#,
            r#"inbound_tcp_authz_allow_total{srv_name="web",tls="true"} 1"#,
            r#"inbound_tcp_authz_deny_total{srv_name="web",tls="false"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn names_follow_the_design() {
        let m = Metrics::new();
        let target = target_label("10.0.0.1:80".parse().unwrap());
        let conn = m.connection(&ConnLabels {
            direction: Direction::Outbound,
            target_addr: target.clone(),
            protocol: "http1",
        });
        conn.read.inc_by(10);
        let http = m.http(Direction::Outbound, &target, None);
        let notes = crate::http::notes::Notes {
            parent: Some("Service shop/web:80".into()),
            route: Some("shop/web-route".into()),
            backend: Some("shop/web-v2:80".into()),
            server_id: Some("web.shop.serviceaccount.identity.cluster.local".into()),
            ..Default::default()
        };
        http.response(&notes, 503, true, 1.5);
        http.response(&notes, 200, false, 0.7);
        let inbound = m.http(
            Direction::Inbound,
            &target,
            Some("client.shop.serviceaccount.identity.cluster.local"),
        );
        inbound.response(&Default::default(), 200, false, 0.2);
        let text = m.encode();
        for line in [
            r#"tcp_open_total{direction="outbound",target_addr="10.0.0.1:80",protocol="http1"} 1"#,
            r#"tcp_open_connections{direction="outbound",target_addr="10.0.0.1:80",protocol="http1"} 1"#,
            r#"tcp_read_bytes_total{direction="outbound",target_addr="10.0.0.1:80",protocol="http1"} 10"#,
            r#"request_total{direction="outbound",target_addr="10.0.0.1:80",dst_service="Service shop/web:80",route="shop/web-route",dst_backend="shop/web-v2:80",tls="true",client_id="",server_id="web.shop.serviceaccount.identity.cluster.local"} 2"#,
            r#"response_total{direction="outbound",target_addr="10.0.0.1:80",dst_service="Service shop/web:80",route="shop/web-route",dst_backend="shop/web-v2:80",tls="true",client_id="",server_id="web.shop.serviceaccount.identity.cluster.local",status_code="503",classification="failure"} 1"#,
            r#"response_latency_ms_bucket{le="1.0",direction="outbound",target_addr="10.0.0.1:80",dst_service="Service shop/web:80",route="shop/web-route",dst_backend="shop/web-v2:80",tls="true",client_id="",server_id="web.shop.serviceaccount.identity.cluster.local"} 1"#,
            r#"response_latency_ms_bucket{le="2.0",direction="outbound",target_addr="10.0.0.1:80",dst_service="Service shop/web:80",route="shop/web-route",dst_backend="shop/web-v2:80",tls="true",client_id="",server_id="web.shop.serviceaccount.identity.cluster.local"} 2"#,
            r#"request_total{direction="inbound",target_addr="10.0.0.1:80",dst_service="",route="",dst_backend="",tls="true",client_id="client.shop.serviceaccount.identity.cluster.local",server_id=""} 1"#,
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        drop(conn);
        assert!(m.encode().contains(r#"tcp_open_connections{direction="outbound",target_addr="10.0.0.1:80",protocol="http1"} 0"#));
        assert!(text.contains("process_resident_memory_bytes "));
    }

    #[test]
    fn the_certificate_expiry_is_in_seconds_since_the_epoch() {
        let m = Metrics::new();
        let name = "identity_cert_expiration_timestamp_seconds";
        let text = m.encode();
        assert!(text.contains(&format!("\n{name} 0\n")), "{text}");
        let ms = std::time::Duration::from_millis(1_700_000_000_900);
        m.set_identity_expiry(std::time::SystemTime::UNIX_EPOCH + ms);
        let text = m.encode();
        assert!(text.contains(&format!("\n{name} 1700000000\n")), "{text}");
    }
}
