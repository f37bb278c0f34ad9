//! `weft inject` and `weft uninject`: the webhook's patch, offline, on YAML files or standard
//! input (Pods, Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, ReplicaSets, Lists,
//! several documents); the result on standard output, what was done on standard error.

use anyhow::Context;
use std::{io::Read, path::PathBuf};
use weft_injector::InjectFlags;
use weft_injector_patch::{Injector, Report, inject_documents, uninject_documents};

/// `weft inject` arguments.
#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// The YAML file, or `-` for standard input.
    pub file: PathBuf,
    /// Mesh without identity (no mTLS): allowed only when asked for, since the proxies of
    /// an installed mesh need its trust anchors (--trust-anchors).
    #[arg(
        long,
        env = "WEFT_INJECT_NO_IDENTITY",
        conflicts_with = "trust_anchors"
    )]
    pub no_identity: bool,
    #[command(flatten)]
    pub flags: InjectFlags,
}

/// `weft uninject` arguments.
#[derive(Debug, clap::Args)]
pub struct UninjectArgs {
    /// The YAML file, or `-` for standard input.
    pub file: PathBuf,
}

/// Runs `weft inject`.
pub fn inject(args: InjectArgs) -> anyhow::Result<()> {
    if args.flags.trust_anchors.is_none() && !args.no_identity {
        anyhow::bail!(
            "weft inject needs the mesh's trust anchors: --trust-anchors FILE (from a cluster: kubectl -n weft-system get configmap weft-identity-trust-anchors -o jsonpath='{{.data.ca\\.crt}}' > ca.crt), or --no-identity for a mesh without mTLS"
        );
    }
    let injector = Injector::new(args.flags.config()?);
    let text = read(&args.file)?;
    let (out, report) = inject_documents(&text, &injector).with_context(|| name(&args.file))?;
    finish(&out, &report)
}

/// Runs `weft uninject`.
pub fn uninject(args: UninjectArgs) -> anyhow::Result<()> {
    let text = read(&args.file)?;
    let (out, report) = uninject_documents(&text).with_context(|| name(&args.file))?;
    finish(&out, &report)
}

fn name(file: &std::path::Path) -> String {
    if file.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        file.display().to_string()
    }
}

fn read(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
    }
}

fn finish(out: &str, report: &Report) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("cannot write standard output")?;
    for line in report.lines.iter().chain(&report.warnings) {
        eprintln!("{line}");
    }
    if report.lines.is_empty() {
        eprintln!(
            "no workload found (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob or a List of them)"
        );
    }
    Ok(())
}
