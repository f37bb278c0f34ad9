//! `weft check`: is the mesh installed and healthy? Like `linkerd check`, each check prints
//! one pass or fail line: the API is reachable, the CRDs are established, the control plane
//! is ready, the webhook is configured, reachable and serves a valid certificate, and the
//! trust anchors and the issuer are valid and not near expiry. It reads; it changes nothing.

mod checks;

pub use checks::{CRDS, CheckOptions, Line, run_checks};

use std::{path::PathBuf, time::Duration};

/// `weft check` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kubeconfig file [default: $KUBECONFIG, else ~/.kube/config, else in-cluster].
    // Not `env = "KUBECONFIG"`: it may list several files (`a:b`), which kube reads and merges
    // as kubectl does when no file is given, but which is no path.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context [default: its current context].
    #[arg(long, env = "WEFT_CHECK_CONTEXT")]
    pub context: Option<String>,
    /// Certificates expiring sooner than this fail: 720h, 30d, ...
    #[arg(long, env = "WEFT_CHECK_MIN_VALIDITY", default_value = "30d",
          value_parser = crate::duration::parse_duration)]
    pub min_validity: Duration,
    /// How long each request to the API server may take.
    #[arg(long, env = "WEFT_CHECK_TIMEOUT", default_value = "10s",
          value_parser = crate::duration::parse_duration)]
    pub timeout: Duration,
}

/// Runs `weft check`: fails if any check fails.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let lines = runtime.block_on(async {
        let client = client(&args).await?;
        let options = CheckOptions {
            min_validity: args.min_validity,
            now: std::time::SystemTime::now(),
        };
        anyhow::Ok(run_checks(&client, &options).await)
    })?;
    for line in &lines {
        println!("{line}");
    }
    let failed = lines.iter().filter(|l| !l.ok).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} checks failed", lines.len());
    }
    println!("all {} checks passed", lines.len());
    Ok(())
}

async fn client(args: &Args) -> anyhow::Result<kube::Client> {
    use anyhow::Context;
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("the kubeconfig {}", path.display()))?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .context("cannot load the kubeconfig")?,
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found (give --kubeconfig or set KUBECONFIG)")?,
    };
    config.connect_timeout = Some(args.timeout);
    config.read_timeout = Some(args.timeout);
    kube::Client::try_from(config).context("cannot make a Kubernetes client")
}
