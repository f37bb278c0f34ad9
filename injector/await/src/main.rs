//! `weft-await`: exits 0 once the local proxy is ready, 1 if it is not within the timeout.

#![forbid(unsafe_code)]

use clap::Parser;
use std::{net::SocketAddr, process::ExitCode, time::Duration};

/// Waits until the Weft proxy's admin server says it is ready.
#[derive(Debug, Parser)]
#[command(name = "weft-await", version)]
struct Args {
    /// The proxy's admin address.
    #[arg(long, env = "WEFT_AWAIT_ADMIN_ADDR", default_value = "127.0.0.1:4191")]
    admin_addr: SocketAddr,
    /// How long to wait, in seconds.
    #[arg(long, env = "WEFT_AWAIT_TIMEOUT_SECONDS", default_value_t = 120)]
    timeout_seconds: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let timeout = Duration::from_secs(args.timeout_seconds);
    match weft_injector_await::wait_ready(args.admin_addr, timeout, Duration::from_millis(200)) {
        Ok(waited) => {
            eprintln!("weft-await: the proxy is ready after {waited:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weft-await: {e}");
            ExitCode::FAILURE
        }
    }
}
