//! What a pair of Weft sidecars costs, run by `weft-bench-sidecars`: a plain client/server pod
//! pair and a meshed one on one bridge ([`setup`]), the same `weft-load` runs against each in
//! the same run ([`load`]), and the differences ([`report`]).
//!
//! The meshed pair runs in one of three [`MeshMode`]s, from bare proxies forwarding to the pod
//! IP up to the production setting: a controller, a Service in front of the server and mTLS
//! between the proxies.

pub mod load;
pub mod report;
pub mod setup;

pub use self::{
    load::{LoadRun, LoadSpec},
    report::Report,
    setup::Setup,
};
use crate::control::Error;
use serde::Serialize;
use std::{fmt, time::Duration};

/// How the meshed pair is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MeshMode {
    /// Sidecars without a controller: the client's proxy forwards to the server pod's IP.
    Plain,
    /// A controller (files source, no identity): load goes to the server's Service ClusterIP
    /// and the client's proxy balances over its endpoints.
    Controller,
    /// As `controller`, with identity: the proxies certify and speak mTLS to each other.
    Mtls,
}

impl fmt::Display for MeshMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "plain",
            Self::Controller => "controller",
            Self::Mtls => "mtls",
        })
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// How the meshed pair is set up.
    pub mesh: MeshMode,
    /// Open-loop request rate of the latency runs.
    pub rate: u32,
    /// Length of each measured latency run.
    pub duration: Duration,
    /// Warm-up before each latency run.
    pub warmup: Duration,
    /// Keep-alive connections of the latency and throughput runs.
    pub connections: usize,
    /// Direct/meshed latency rounds.
    pub rounds: usize,
    /// Length of the closed-loop throughput runs; zero skips them.
    pub max_duration: Duration,
    /// Length of the new-connection runs; zero skips them.
    pub connect_duration: Duration,
    /// One-request connections open at once in the new-connection runs.
    pub connect_concurrency: usize,
    /// Extra `WEFT_PROXY_*` settings for both proxies; they override the benchmark's own.
    pub proxy_env: Vec<(String, String)>,
    /// Annotations on the server's HTTP Service (controller modes), e.g. retries to measure
    /// what they cost when nothing fails.
    pub service_annotations: Vec<(String, String)>,
    /// Tracing on both proxies, starting traces for this share of requests, with spans
    /// exported to an OTLP receiver in a pod of its own.
    pub tracing: Option<f64>,
}

/// Warm-up of the throughput and new-connection runs.
const SHORT_WARMUP: Duration = Duration::from_secs(1);

/// Sets the pods up, runs every measurement and tears everything down.
pub fn run(config: &Config) -> Result<Report, Error> {
    let c = config;
    let setup = Setup::start(c.mesh, &c.proxy_env, &c.service_annotations, c.tracing)?;
    let (direct, meshed) = (&setup.direct, &setup.meshed);
    let load =
        |pod, url: &str, spec: &LoadSpec| load::run(pod, url, spec).map_err(|e| setup.with_logs(e));

    let fixed = LoadSpec::open_loop(c.rate, c.duration, c.warmup, c.connections);
    let mut rounds = Vec::with_capacity(c.rounds);
    for _ in 0..c.rounds {
        let d = load(&direct.client, &direct.url, &fixed)?;
        let before = setup.usage();
        let m = load(&meshed.client, &meshed.url, &fixed)?;
        rounds.push(report::Round::new(d, m, setup.usage().since(before).cpu_s));
        // The receiver keeps what it gets; the benchmark only needs the proxies' counters.
        if let Some(otlp) = &setup.otlp {
            otlp.clear();
        }
    }
    let mut rss = report::Rss {
        after_fixed_rate: setup.proxy_rss_mb(),
        ..report::Rss::default()
    };

    let mut max = None;
    if !c.max_duration.is_zero() {
        let spec = LoadSpec::closed_loop(c.max_duration, SHORT_WARMUP, c.connections);
        let direct = load(&direct.client, &direct.url, &spec)?;
        let mesh = load(&meshed.client, &meshed.url, &spec)?;
        rss.after_max = Some(setup.proxy_rss_mb());
        max = Some(report::Versus { direct, mesh });
    }

    let mut new_connections = None;
    if !c.connect_duration.is_zero() {
        let spec = LoadSpec::closed_loop(c.connect_duration, SHORT_WARMUP, c.connect_concurrency)
            .one_request_connections();
        let direct = load(&direct.client, &direct.url, &spec)?;
        let before = setup.usage();
        let http = load(&meshed.client, &meshed.url, &spec)?;
        let between = setup.usage();
        let opaque = load(&meshed.client, &setup.opaque_url, &spec)?;
        let after = setup.usage();
        rss.after_new_connections = Some(setup.proxy_rss_mb());
        new_connections = Some(report::NewConnections {
            direct,
            mesh_http: between.since(before).of(http),
            mesh_opaque: after.since(between).of(opaque),
        });
    }

    let inbound_tls = setup.inbound_tls();
    if c.mesh == MeshMode::Mtls && (inbound_tls.plaintext > 0.0 || inbound_tls.mtls == 0.0) {
        return Err(setup.with_logs(Error::Failed {
            what: format!(
                "the meshed pair did not use mTLS: the server's proxy authorized {} connections \
                 and requests over mTLS and {} in plaintext",
                inbound_tls.mtls, inbound_tls.plaintext
            ),
            log: String::new(),
        }));
    }
    Ok(Report {
        mesh: c.mesh,
        rate: c.rate,
        connections: c.connections,
        duration_s: c.duration.as_secs_f64(),
        connect_concurrency: c.connect_concurrency,
        summary: report::Summary::new(&rounds, max.as_ref(), new_connections.as_ref(), &rss),
        rounds,
        max,
        new_connections,
        inbound_tls,
        spans: setup.otlp.as_ref().map(|_| setup.spans()),
    })
}
