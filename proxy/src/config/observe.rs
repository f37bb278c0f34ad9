//! Observability settings: where spans go (`OTLP_ADDR`), how many traces are started, how
//! the workload names itself in them, and access logs.

use super::{PREFIX, Reader};

pub(super) const OTLP_ADDR: &str = "OTLP_ADDR";
pub(super) const TRACE_SAMPLING: &str = "TRACE_SAMPLING";
pub(super) const TRACE_SERVICE_NAME: &str = "TRACE_SERVICE_NAME";
pub(super) const TRACE_QUEUE: &str = "TRACE_QUEUE";
pub(super) const NODE_NAME: &str = "NODE_NAME";
pub(super) const ACCESS_LOG: &str = "ACCESS_LOG";

/// Where and how the proxy exports spans.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceConfig {
    /// The collector's OTLP/gRPC endpoint, `http://host:port`.
    pub collector: String,
    /// The share of requests without a sampled or unsampled parent that start a trace
    /// (0 to 1). A request whose caller sent a trace context follows the caller's decision.
    pub sampling: f64,
    /// `service.name`: `<deployment or pod>.<namespace>`.
    pub service_name: String,
    /// `k8s.namespace.name`, from the workload.
    pub namespace: Option<String>,
    /// `k8s.pod.name`, from the workload.
    pub pod: Option<String>,
    /// `k8s.node.name`.
    pub node: Option<String>,
    /// Finished spans waiting for export at most; more are dropped (and counted).
    pub queue: usize,
}

/// One line per request on stdout, or none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessLog {
    /// No access log (the default): nothing on the request path.
    #[default]
    Off,
    /// A JSON object per line.
    Json,
    /// Apache's combined log format, with the request's duration.
    Apache,
}

impl Reader<'_> {
    /// The tracing settings; `None` without `OTLP_ADDR` (the other settings are then unused).
    pub(super) fn trace(&mut self, workload: Option<&str>) -> Option<TraceConfig> {
        let addr = self.raw(OTLP_ADDR).map(|a| a.trim().to_string());
        let sampling = self.parse(TRACE_SAMPLING, "1", parse_ratio);
        let queue = self.parse(TRACE_QUEUE, "2048", |t| match t.parse::<usize>() {
            Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
            _ => Err("expected a number of spans from 1 to 1000000".to_string()),
        });
        let node = self.raw(NODE_NAME).filter(|n| !n.trim().is_empty());
        let named = self
            .raw(TRACE_SERVICE_NAME)
            .filter(|n| !n.trim().is_empty());
        let addr = addr.filter(|a| !a.is_empty())?;
        let collector = match collector_url(&addr) {
            Ok(url) => url,
            Err(why) => {
                self.errors
                    .push(format!("{PREFIX}{OTLP_ADDR}={addr:?}: {why}"));
                return None;
            }
        };
        let (namespace, pod) = match workload.and_then(|w| w.split_once('/')) {
            Some((ns, pod)) => (Some(ns.to_string()), Some(pod.to_string())),
            None => (None, None),
        };
        let service_name = named.unwrap_or_else(|| match (&namespace, &pod) {
            (Some(ns), Some(pod)) => format!("{}.{ns}", workload_name(pod)),
            _ => "weft-proxy".to_string(),
        });
        Some(TraceConfig {
            collector,
            sampling: sampling?,
            service_name,
            namespace,
            pod,
            node,
            queue: queue?,
        })
    }

    pub(super) fn access_log(&mut self) -> Option<AccessLog> {
        self.parse(ACCESS_LOG, "off", |t| match t {
            "off" | "" => Ok(AccessLog::Off),
            "json" => Ok(AccessLog::Json),
            "apache" => Ok(AccessLog::Apache),
            _ => Err("expected json, apache or off".to_string()),
        })
    }
}

/// `host:port` or `http://host:port` as the URL the OTLP exporter dials.
fn collector_url(addr: &str) -> Result<String, String> {
    let bare = addr.strip_prefix("http://").unwrap_or(addr);
    if addr.starts_with("https://") {
        return Err("TLS to the collector is not supported; expected HOST:PORT".into());
    }
    let valid = bare.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if !valid {
        return Err(
            "expected HOST:PORT of an OTLP/gRPC collector, such as jaeger.weft-system:4317".into(),
        );
    }
    Ok(format!("http://{bare}"))
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a ratio from 0 to 1, such as 0.1".into()),
    }
}

/// The name of the workload a pod belongs to: a Deployment's pod `web-7d4b9c8f6-x2x9z` is
/// `web`, a DaemonSet's or Job's `agent-x2x9z` is `agent`; any other pod is itself.
pub fn workload_name(pod: &str) -> &str {
    // Kubernetes makes generated suffixes from these characters (no vowels, no 0/1/3).
    fn generated(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
        lens.contains(&s.len())
            && s.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
    }
    let Some((rest, suffix)) = pod.rsplit_once('-') else {
        return pod;
    };
    if !generated(suffix, 5..=5) || rest.is_empty() {
        return pod;
    }
    match rest.rsplit_once('-') {
        // The pod template hash of a ReplicaSet.
        Some((name, hash)) if !name.is_empty() && generated(hash, 6..=10) => name,
        _ => rest,
    }
}
