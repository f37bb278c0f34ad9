//! `weft`: parse the command line and run the subcommand.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use weft_cli::demo;

mod certs;

#[derive(Parser)]
#[command(name = "weft", version, about = "Weft, a service mesh for Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the mesh on this host with no cluster: pods as network namespaces, real sidecars,
    /// real redirect rules, live traffic. Needs root.
    Demo(demo::Args),
    /// Makes and inspects the mesh's certificates: the root (trust anchor), the controller's
    /// issuer, and any PEM file.
    Certs(certs::Args),
    /// The demo's sample app (started by `weft demo` inside a pod).
    #[command(hide = true)]
    DemoApp(demo::app::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::DemoApp(args) => demo::app::run(args),
        Command::Certs(args) => certs::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft: {e:#}");
            ExitCode::FAILURE
        }
    }
}
