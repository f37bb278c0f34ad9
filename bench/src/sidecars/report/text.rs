//! The report as text.

use super::{Report, Rss};
use crate::sidecars::MeshMode;
use std::fmt;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "sidecar pair vs direct, mesh {}: {}",
            self.mesh,
            describe(self.mesh)
        )?;
        writeln!(
            f,
            "latency at {} req/s open loop, {} connections, {} rounds of {}s:",
            self.rate,
            self.connections,
            self.rounds.len(),
            self.duration_s
        )?;
        writeln!(
            f,
            "{:>8} {:>11} {:>11} {:>11}",
            "", "direct", "meshed", "added"
        )?;
        for (label, pick) in PERCENTILES {
            writeln!(
                f,
                "{label:>8} {:>9.3}ms {:>9.3}ms {:>+9.3}ms",
                pick(&s.direct_ms),
                pick(&s.mesh_ms),
                pick(&s.added_ms)
            )?;
        }
        for (i, r) in self.rounds.iter().enumerate() {
            let (d, m) = (r.direct.latency_ms, r.mesh.latency_ms);
            writeln!(
                f,
                "  round {}: direct p50 {:.3} p99 {:.3} | meshed p50 {:.3} p99 {:.3}",
                i + 1,
                d.p50,
                d.p99,
                m.p50,
                m.p99
            )?;
        }
        writeln!(
            f,
            "proxy CPU at {} req/s: {:.1}% of a core per proxy",
            self.rate, s.proxy_cpu_pct_per_proxy
        )?;
        writeln!(f, "proxy RSS (client, server): {}", rss(&s.proxy_rss_mb))?;
        if let Some([direct, mesh]) = s.max_rps {
            writeln!(
                f,
                "max throughput (closed loop, {} connections): direct {direct:.0} req/s, \
                 meshed {mesh:.0} req/s ({:.2}x of direct)",
                self.connections,
                mesh / direct.max(1.0)
            )?;
        }
        if let (Some(n), Some([direct, http, opaque]), Some([http_us, opaque_us])) = (
            &self.new_connections,
            s.new_connections_per_s,
            s.proxy_cpu_us_per_new_connection,
        ) {
            writeln!(
                f,
                "new connections (closed loop, {} at a time, one request each):",
                self.connect_concurrency
            )?;
            let tls = match self.mesh {
                MeshMode::Mtls => "an mTLS handshake between the proxies each",
                _ => "no TLS",
            };
            let x = |rate: f64| rate / direct.max(1.0);
            writeln!(f, "  direct        {direct:>8.0}/s")?;
            writeln!(
                f,
                "  meshed HTTP   {http:>8.0}/s ({:.2}x of direct; upstream connections pooled)",
                x(http)
            )?;
            writeln!(
                f,
                "  meshed opaque {opaque:>8.0}/s ({:.2}x of direct; {tls})",
                x(opaque)
            )?;
            writeln!(
                f,
                "  proxy CPU per connection (both proxies): HTTP {http_us:.0}µs, opaque {opaque_us:.0}µs"
            )?;
            let (d, h, o) = (
                n.direct.latency_ms,
                n.mesh_http.run.latency_ms,
                n.mesh_opaque.run.latency_ms,
            );
            writeln!(
                f,
                "  connect + request p50/p99 ms: direct {:.3}/{:.3}, meshed HTTP {:.3}/{:.3}, \
                 meshed opaque {:.3}/{:.3}",
                d.p50, d.p99, h.p50, h.p99, o.p50, o.p99
            )?;
        }
        if let Some(s) = self.spans {
            writeln!(
                f,
                "spans (both proxies): {:.0} exported, {:.0} dropped",
                s.exported, s.dropped
            )?;
        }
        let t = self.inbound_tls;
        write!(
            f,
            "server proxy inbound authorizations: {:.0} over mTLS, {:.0} plaintext",
            t.mtls, t.plaintext
        )
    }
}

type Pick = fn(&crate::sidecars::load::LatencyMs) -> f64;

const PERCENTILES: [(&str, Pick); 4] = [
    ("p50", |l| l.p50),
    ("p90", |l| l.p90),
    ("p99", |l| l.p99),
    ("p99.9", |l| l.p99_9),
];

fn describe(mode: MeshMode) -> &'static str {
    match mode {
        MeshMode::Plain => "sidecars without a controller, load to the server pod's IP",
        MeshMode::Controller => "controller, load to a Service ClusterIP, no TLS",
        MeshMode::Mtls => "controller, load to a Service ClusterIP, mTLS between the proxies",
    }
}

fn rss(r: &Rss) -> String {
    let pair = |[client, server]: [f64; 2]| format!("{client:.1} MB, {server:.1} MB");
    let mut text = format!("{} after the fixed-rate runs", pair(r.after_fixed_rate));
    if let Some(m) = r.after_max {
        text.push_str(&format!("; {} after max throughput", pair(m)));
    }
    if let Some(n) = r.after_new_connections {
        text.push_str(&format!("; {} after the new-connection runs", pair(n)));
    }
    text
}
