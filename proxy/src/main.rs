//! `weft-proxy`: read `WEFT_PROXY_*`, bind, serve, drain on SIGTERM.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use weft_proxy::config::{Config, Env};

fn main() -> ExitCode {
    let config = match Config::from_strings(&Env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weft-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_writer(std::io::stderr)
        .init();
    // One worker needs no work stealing: a current-thread runtime has less overhead.
    let mut builder = if config.worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(config.worker_threads);
        b
    };
    let rt = match builder.thread_name("weft-proxy").enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weft-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let bound = weft_proxy::Bound::bind(&config).await?;
        weft_proxy::run(config, bound).await
    });
    // Anything still running after the grace period is cut here.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}
