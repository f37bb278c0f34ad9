//! `weft-bench-sidecars`: what a pair of Weft sidecars costs. Two client/server pod pairs on
//! one bridge, one plain and one meshed (by default with a controller, a Service and mTLS, as
//! in production); the same load runs against each, alternating, in the same run, so the
//! difference is the mesh and not the machine's mood. Needs root.

use anyhow::Context;
use clap::Parser;
use std::{num::NonZeroUsize, time::Duration};
use weft_bench::{
    cli::parse_count,
    parse_duration,
    sidecars::{self, MeshMode},
};

#[derive(Parser)]
#[command(
    name = "weft-bench-sidecars",
    version,
    about = "Added latency, throughput, connection set-up cost and memory of a pair of Weft sidecars"
)]
struct Args {
    /// How the meshed pair runs: `plain` (sidecars only, load to the pod IP), `controller`
    /// (a controller and a Service ClusterIP) or `mtls` (the same with mTLS between proxies).
    #[arg(long, value_enum, env = "WEFT_BENCH_SIDECARS_MESH", default_value_t = MeshMode::Mtls)]
    mesh: MeshMode,
    /// Open-loop request rate for the latency runs.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_RATE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Length of each measured latency run.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_DURATION", default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before each latency run (not measured).
    #[arg(long, env = "WEFT_BENCH_SIDECARS_WARMUP", default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Keep-alive connections the client uses.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_CONNECTIONS", default_value = "16", value_parser = parse_count)]
    connections: NonZeroUsize,
    /// Alternating direct/meshed rounds at the fixed rate.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_ROUNDS", default_value = "3", value_parser = parse_count)]
    rounds: NonZeroUsize,
    /// Length of the closed-loop (max throughput) runs; `0s` skips them.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_MAX_DURATION", default_value = "5s", value_parser = parse_duration)]
    max_duration: Duration,
    /// Length of the closed-loop runs with a new connection per request; `0s` skips them.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_CONNECT_DURATION", default_value = "3s", value_parser = parse_duration)]
    connect_duration: Duration,
    /// One-request connections open at once in those runs.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_CONNECT_CONCURRENCY", default_value = "16", value_parser = parse_count)]
    connect_concurrency: NonZeroUsize,
    /// Extra proxy settings, `WEFT_PROXY_NAME=value` (repeatable); they override the
    /// benchmark's own.
    #[arg(long = "proxy-env", value_parser = parse_env)]
    proxy_env: Vec<(String, String)>,
    /// An annotation on the server's Service, `weft.dev/NAME=value` (repeatable; `controller`
    /// and `mtls` modes), e.g. `weft.dev/retry-http=5xx` to turn retries on.
    #[arg(long = "service-annotation", value_parser = parse_annotation)]
    service_annotations: Vec<(String, String)>,
    /// Tracing on both proxies: start traces for this share of requests (0 to 1) and export
    /// every span to an OTLP receiver in a pod of its own.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_TRACING", value_parser = parse_ratio)]
    tracing: Option<f64>,
    /// Print one JSON object instead of text.
    #[arg(long, env = "WEFT_BENCH_SIDECARS_JSON")]
    json: bool,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if k.starts_with("WEFT_PROXY_") => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?}: expected WEFT_PROXY_NAME=value")),
    }
}

fn parse_annotation(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if k.starts_with("weft.dev/") => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?}: expected weft.dev/NAME=value")),
    }
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?}: expected a ratio from 0 to 1")),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.mesh == MeshMode::Plain && !args.service_annotations.is_empty() {
        anyhow::bail!("--service-annotation needs a controller: use --mesh controller or mtls");
    }
    let config = sidecars::Config {
        mesh: args.mesh,
        rate: args.rate,
        duration: args.duration,
        warmup: args.warmup,
        connections: args.connections.get(),
        rounds: args.rounds.get(),
        max_duration: args.max_duration,
        connect_duration: args.connect_duration,
        connect_concurrency: args.connect_concurrency.get(),
        proxy_env: args.proxy_env,
        service_annotations: args.service_annotations,
        tracing: args.tracing,
    };
    let report = sidecars::run(&config)
        .with_context(|| format!("the sidecar benchmark (mesh {}) failed", config.mesh))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
