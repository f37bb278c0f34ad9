//! `weft-bench-server`: the target app for benchmarks, answering every request with `200 OK`.

use anyhow::Context;
use clap::Parser;
use std::{net::SocketAddr, num::NonZeroUsize};
use tokio::{net::TcpListener, runtime, signal::unix};
use weft_bench::{cli::parse_count, server};

/// Minimal keep-alive HTTP/1.1 server: `200 OK` with a small fixed body for every request.
#[derive(Debug, Parser)]
#[command(name = "weft-bench-server", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "WEFT_BENCH_SERVER_ADDR", default_value = "0.0.0.0:8080")]
    addr: SocketAddr,

    /// Runtime threads. One runs a single-threaded runtime, the fastest per core.
    #[arg(long, env = "WEFT_BENCH_SERVER_THREADS", default_value = "1", value_parser = parse_count)]
    threads: NonZeroUsize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match args.threads.get() {
        1 => runtime::Builder::new_current_thread().enable_all().build(),
        n => runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .thread_name("weft-bench-server")
            .enable_all()
            .build(),
    }
    .context("cannot start the runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let mut sigterm =
            unix::signal(unix::SignalKind::terminate()).context("cannot watch for SIGTERM")?;
        tracing::info!(addr = %listener.local_addr()?, "listening");
        server::serve(listener, async {
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutting down");
        })
        .await;
        Ok(())
    })
}
