//! `weft-load`: open-loop (or, with `--rate max`, closed-loop) HTTP/1.1 load against one URL.

use anyhow::Context;
use clap::Parser;
use weft_bench::cli::LoadArgs;

fn main() -> anyhow::Result<()> {
    let args = LoadArgs::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.get())
        .thread_name("weft-load")
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = runtime
        .block_on(weft_bench::run(args.config()))
        .with_context(|| format!("load test against {} failed", args.url))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
