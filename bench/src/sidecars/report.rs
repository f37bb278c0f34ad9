//! The result of `weft-bench-sidecars`: every `weft-load` run, a summary of the differences
//! between the pairs, as text for people and as one JSON object for scripts.

use super::{LoadRun, MeshMode, load::LatencyMs};
use serde::Serialize;

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// How the meshed pair was set up.
    pub mesh: MeshMode,
    /// Open-loop rate of the latency rounds.
    pub rate: u32,
    /// Keep-alive connections of the latency and throughput runs.
    pub connections: usize,
    /// Measured seconds of each latency run.
    pub duration_s: f64,
    /// One-request connections open at once in the new-connection runs.
    pub connect_concurrency: usize,
    /// The numbers to quote.
    pub summary: Summary,
    /// Each direct/meshed latency round.
    pub rounds: Vec<Round>,
    /// The closed-loop throughput runs, unless skipped.
    pub max: Option<Versus>,
    /// The new-connection runs, unless skipped.
    pub new_connections: Option<NewConnections>,
    /// How the server's proxy saw its clients, by the end of the run.
    pub inbound_tls: InboundTls,
    /// What both proxies exported, with tracing on.
    pub spans: Option<Spans>,
}

/// Spans both proxies exported and dropped over the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Spans {
    /// Accepted by the collector.
    pub exported: f64,
    /// Not exported (queue full, collector failed or slow).
    pub dropped: f64,
}

/// One latency round: the same open-loop load against each pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Round {
    /// Against the plain pair.
    pub direct: LoadRun,
    /// Against the meshed pair.
    pub mesh: LoadRun,
    /// CPU seconds both proxies used during the meshed run, warm-up included.
    pub proxy_cpu_s: f64,
}

/// The same run against each pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Versus {
    /// Against the plain pair.
    pub direct: LoadRun,
    /// Against the meshed pair.
    pub mesh: LoadRun,
}

/// A meshed run and what the proxies spent on it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measured {
    /// What `weft-load` reported.
    pub run: LoadRun,
    /// CPU seconds both proxies used, warm-up included.
    pub proxy_cpu_s: f64,
    /// Connections the client's proxy accepted meanwhile, warm-up included.
    pub proxy_connections: f64,
}

/// Closed-loop runs with a new connection per request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewConnections {
    /// Against the plain pair.
    pub direct: LoadRun,
    /// Against the meshed server's HTTP port: the client's proxy accepts and detects each
    /// connection, but pools its upstream connections.
    pub mesh_http: Measured,
    /// Against the meshed server's opaque port: one upstream connection per client connection,
    /// and with mTLS one handshake between the proxies each.
    pub mesh_opaque: Measured,
}

/// Proxies' resident memory (client, server) in MB, after each part of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rss {
    /// After the latency rounds.
    pub after_fixed_rate: [f64; 2],
    /// After the throughput runs.
    pub after_max: Option<[f64; 2]>,
    /// After the new-connection runs.
    pub after_new_connections: Option<[f64; 2]>,
}

/// Inbound authorizations (connections and requests) of the server's proxy, by whether the
/// client proved a mesh identity over mTLS. Zero both without a controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct InboundTls {
    /// Over mTLS.
    pub mtls: f64,
    /// In plaintext.
    pub plaintext: f64,
}

/// The numbers to quote, averaged over the rounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Latency of the plain pair.
    pub direct_ms: LatencyMs,
    /// Latency of the meshed pair.
    pub mesh_ms: LatencyMs,
    /// What the mesh added: the mean over rounds of meshed minus direct.
    pub added_ms: LatencyMs,
    /// Each proxy's CPU during the meshed latency runs, in % of a core.
    pub proxy_cpu_pct_per_proxy: f64,
    /// The proxies' memory.
    pub proxy_rss_mb: Rss,
    /// Closed-loop requests per second (direct, meshed).
    pub max_rps: Option<[f64; 2]>,
    /// New connections per second: direct, meshed HTTP, meshed opaque.
    pub new_connections_per_s: Option<[f64; 3]>,
    /// CPU of both proxies per new connection, in µs: meshed HTTP, meshed opaque.
    pub proxy_cpu_us_per_new_connection: Option<[f64; 2]>,
}

// === impl Round ===

impl Round {
    /// A round and the proxies' CPU seconds during its meshed run.
    pub fn new(direct: LoadRun, mesh: LoadRun, proxy_cpu_s: f64) -> Self {
        Self {
            direct,
            mesh,
            proxy_cpu_s,
        }
    }
}

// === impl Summary ===

impl Summary {
    /// Averages the rounds and picks the other runs' headline numbers.
    pub fn new(
        rounds: &[Round],
        max: Option<&Versus>,
        new_connections: Option<&NewConnections>,
        rss: &Rss,
    ) -> Self {
        let mean = |f: &dyn Fn(&Round) -> f64| {
            rounds.iter().map(f).sum::<f64>() / rounds.len().max(1) as f64
        };
        let latency = |f: &dyn Fn(&Round) -> LatencyMs| LatencyMs {
            p50: mean(&|r| f(r).p50),
            p90: mean(&|r| f(r).p90),
            p99: mean(&|r| f(r).p99),
            p99_9: mean(&|r| f(r).p99_9),
            max: mean(&|r| f(r).max),
        };
        // The CPU counters cover the warm-up too, so divide by it as well.
        let mesh_secs: f64 = rounds
            .iter()
            .map(|r| r.mesh.elapsed_s + r.mesh.warmup_s)
            .sum();
        let cpu_secs: f64 = rounds.iter().map(|r| r.proxy_cpu_s).sum();
        Self {
            direct_ms: latency(&|r| r.direct.latency_ms),
            mesh_ms: latency(&|r| r.mesh.latency_ms),
            added_ms: latency(&|r| minus(r.mesh.latency_ms, r.direct.latency_ms)),
            proxy_cpu_pct_per_proxy: round3(100.0 * cpu_secs / mesh_secs.max(1e-9) / 2.0),
            proxy_rss_mb: *rss,
            max_rps: max.map(|v| [v.direct.achieved_rate, v.mesh.achieved_rate]),
            new_connections_per_s: new_connections.map(|n| {
                [
                    n.direct.achieved_rate,
                    n.mesh_http.run.achieved_rate,
                    n.mesh_opaque.run.achieved_rate,
                ]
            }),
            proxy_cpu_us_per_new_connection: new_connections.map(|n| {
                [
                    n.mesh_http.cpu_us_per_connection(),
                    n.mesh_opaque.cpu_us_per_connection(),
                ]
            }),
        }
    }
}

fn minus(a: LatencyMs, b: LatencyMs) -> LatencyMs {
    LatencyMs {
        p50: a.p50 - b.p50,
        p90: a.p90 - b.p90,
        p99: a.p99 - b.p99,
        p99_9: a.p99_9 - b.p99_9,
        max: a.max - b.max,
    }
}

/// `x` to three decimals: more digits than these measurements have.
fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

// === impl Measured ===

impl Measured {
    /// `run`, and the proxies' CPU seconds and the client proxy's accepted connections during
    /// it (differences of their counters).
    pub fn new(run: LoadRun, proxy_cpu_s: f64, proxy_connections: f64) -> Self {
        Self {
            run,
            proxy_cpu_s,
            proxy_connections,
        }
    }

    /// CPU of both proxies per connection the client's proxy accepted, in µs.
    pub fn cpu_us_per_connection(&self) -> f64 {
        round3(1e6 * self.proxy_cpu_s / self.proxy_connections.max(1.0))
    }
}

mod text;

#[cfg(test)]
mod tests;
