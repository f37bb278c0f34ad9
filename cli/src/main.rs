//! `weft`: parse the command line and run the subcommand.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use weft_cli::{check, demo, inject, install};

mod certs;

#[derive(Parser)]
#[command(name = "weft", version, about = "Weft, a service mesh for Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Renders everything a cluster needs to run Weft, with fresh certificates (or yours):
    /// `weft install | kubectl apply -f -`. `--crds` renders the CRDs alone.
    Install(install::Options),
    /// Checks an installation: API, CRDs, control plane, webhook and its certificate, trust
    /// anchors and issuer. One pass or fail line each; exits non-zero if any fails.
    Check(check::Args),
    /// Adds the Weft proxy to the workloads of a YAML file (or `-`), as the webhook would.
    Inject(inject::InjectArgs),
    /// Takes the Weft proxy out of the workloads of a YAML file (or `-`).
    Uninject(inject::UninjectArgs),
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
        Command::Install(options) => install::run(options),
        Command::Check(args) => check::run(args),
        Command::Inject(args) => inject::inject(args),
        Command::Uninject(args) => inject::uninject(args),
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
