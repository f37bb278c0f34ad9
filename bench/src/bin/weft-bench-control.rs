//! `weft-bench-control`: control-plane numbers for issue notes. `propagation` times a
//! TrafficSplit change from the files source to a proxy (demo set-up, needs root); `memory`
//! measures the controller with a generated cluster and a stream per service and kind open.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::{num::NonZeroUsize, time::Duration};
use weft_bench::{
    cli::parse_count,
    control::{memory, propagation, scale::Scale},
    parse_duration,
};

#[derive(Parser)]
#[command(
    name = "weft-bench-control",
    version,
    about = "Weft control-plane benchmarks"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Print one JSON object instead of text.
    #[arg(long, global = true, env = "WEFT_BENCH_CONTROL_JSON")]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Time from a TrafficSplit change in the files source to the client's proxy applying it,
    /// and to the controller reloading it (the demo's pods; needs root).
    Propagation(PropagationArgs),
    /// The controller's load time and memory with a generated cluster, idle and with an
    /// OutboundPolicies.Watch and a Destination.Get open per service.
    Memory(MemoryArgs),
}

#[derive(clap::Args)]
struct PropagationArgs {
    /// Changes to time, in each pass.
    #[arg(long, env = "WEFT_BENCH_CONTROL_CHANGES", default_value = "100", value_parser = parse_count)]
    changes: NonZeroUsize,
    /// How often to poll the sidecar's /metrics and the controller's /index.
    #[arg(long, env = "WEFT_BENCH_CONTROL_POLL", default_value = "1ms", value_parser = parse_duration)]
    poll: Duration,
    /// Quiet time after each change.
    #[arg(long, env = "WEFT_BENCH_CONTROL_PAUSE", default_value = "100ms", value_parser = parse_duration)]
    pause: Duration,
    /// How long one change may take before the run fails.
    #[arg(long, env = "WEFT_BENCH_CONTROL_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// After each change, send this many requests (200 if no number is given) and check that
    /// the observed split moved.
    #[arg(long, env = "WEFT_BENCH_CONTROL_VERIFY", num_args = 0..=1, default_missing_value = "200")]
    verify: Option<usize>,
}

#[derive(clap::Args)]
struct MemoryArgs {
    /// Services to generate.
    #[arg(long, env = "WEFT_BENCH_CONTROL_SERVICES", default_value = "1000", value_parser = parse_count)]
    services: NonZeroUsize,
    /// Endpoints (meshed pods) per service.
    #[arg(long, env = "WEFT_BENCH_CONTROL_ENDPOINTS", default_value = "10", value_parser = parse_count)]
    endpoints: NonZeroUsize,
    /// Services per namespace (and per manifest file).
    #[arg(long, env = "WEFT_BENCH_CONTROL_SERVICES_PER_NAMESPACE", default_value = "100", value_parser = parse_count)]
    services_per_namespace: NonZeroUsize,
    /// Streams sharing one HTTP/2 connection to the controller.
    #[arg(long, env = "WEFT_BENCH_CONTROL_STREAMS_PER_CONNECTION", default_value = "100", value_parser = parse_count)]
    streams_per_connection: NonZeroUsize,
    /// Split changes to time with every stream open, in each pass.
    #[arg(long, env = "WEFT_BENCH_CONTROL_CHANGES", default_value = "20")]
    changes: usize,
    /// How often to poll the controller's /index.
    #[arg(long, env = "WEFT_BENCH_CONTROL_POLL", default_value = "1ms", value_parser = parse_duration)]
    poll: Duration,
    /// Quiet time after each change.
    #[arg(long, env = "WEFT_BENCH_CONTROL_PAUSE", default_value = "200ms", value_parser = parse_duration)]
    pause: Duration,
    /// How long loading, or one change, may take before the run fails.
    #[arg(long, env = "WEFT_BENCH_CONTROL_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Propagation(a) => {
            let config = propagation::Config {
                changes: a.changes.get(),
                poll: a.poll,
                pause: a.pause,
                timeout: a.timeout,
                verify: a.verify,
            };
            let report = propagation::run(&config).context("the propagation benchmark failed")?;
            print(&report, args.json)
        }
        Command::Memory(a) => {
            let config = memory::Config {
                scale: Scale {
                    services: a.services.get(),
                    endpoints: a.endpoints.get(),
                    services_per_namespace: a.services_per_namespace.get(),
                },
                streams_per_connection: a.streams_per_connection.get(),
                changes: a.changes,
                poll: a.poll,
                pause: a.pause,
                timeout: a.timeout,
            };
            let report = memory::run(&config).context("the memory benchmark failed")?;
            print(&report, args.json)
        }
    }
}

fn print<R: serde::Serialize + std::fmt::Display>(report: &R, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
