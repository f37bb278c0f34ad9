//! Wires the Weft control plane together: a source (kube or files) feeds the index, the
//! gRPC services stream its results to proxies, and a small admin server reports health.
//!
//! The `weft-controller` binary parses flags into [`Config`] and calls [`run`].

#![forbid(unsafe_code)]

mod admin;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use tokio::sync::watch;
use weft_controller_core::DefaultPolicy;
use weft_controller_index::SharedIndex;
use weft_controller_sources::files;

/// Where the index's objects come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Watch the Kubernetes API (in-cluster config or kubeconfig).
    Kube,
    /// A directory of YAML, reloaded on change.
    Files(PathBuf),
}

/// Everything the controller needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The source.
    pub source: Source,
    /// Destination and policy gRPC (8086).
    pub grpc_addr: SocketAddr,
    /// Admin: `/live`, `/ready`, `/index` (9990).
    pub admin_addr: SocketAddr,
    /// Service DNS suffix.
    pub cluster_domain: String,
    /// Identity trust domain.
    pub trust_domain: String,
    /// The install-wide default inbound policy.
    pub default_policy: DefaultPolicy,
    /// Networks `cluster-authenticated` admits.
    pub cluster_networks: Vec<ipnet::IpNet>,
}

/// State the admin server reports.
#[derive(Clone, Debug)]
pub struct Status {
    index: SharedIndex,
    source: watch::Receiver<SourceState>,
}

/// How the source is doing.
#[derive(Clone, Debug, Default)]
pub enum SourceState {
    /// Nothing loaded yet.
    #[default]
    Starting,
    /// The files source has loaded at least once.
    Files(Arc<files::Report>),
    /// The kube source is watching.
    Kube,
    /// The source stopped.
    Failed(String),
}

/// Runs the controller until `shutdown` completes or the source fails for good.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let index = SharedIndex::new(weft_controller_index::Config {
        cluster_domain: config.cluster_domain.clone(),
        trust_domain: config.trust_domain.clone(),
        default_policy: config.default_policy,
        cluster_networks: config.cluster_networks.clone(),
        detect_timeout: Duration::from_secs(10),
    });
    let (state_tx, state_rx) = watch::channel(SourceState::Starting);
    let source = spawn_source(config.source.clone(), index.clone(), state_tx).await?;

    let admin = admin::bind(config.admin_addr).await?;
    tokio::spawn(admin::serve(
        admin,
        Status {
            index: index.clone(),
            source: state_rx,
        },
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let grpc = tokio::spawn(weft_controller_grpc::serve(
        config.grpc_addr,
        index,
        weft_controller_grpc::Config {
            cluster_domain: config.cluster_domain.clone(),
        },
        async move {
            let mut stop_rx = stop_rx;
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    ));
    tracing::info!(grpc = %config.grpc_addr, admin = %config.admin_addr, source = ?config.source, "controller running");

    tokio::pin!(shutdown);
    let result = tokio::select! {
        () = &mut shutdown => Ok(()),
        r = source => match r {
            Ok(Ok(())) => Err(anyhow::anyhow!("the source stopped")),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("the source task failed: {e}")),
        },
    };
    let _ = stop_tx.send(true);
    match tokio::time::timeout(Duration::from_secs(5), grpc).await {
        Ok(Ok(Err(e))) => return Err(e.into()),
        Ok(_) => {}
        Err(_) => tracing::warn!("gRPC server did not stop within 5s"),
    }
    result
}

async fn spawn_source(
    source: Source,
    index: SharedIndex,
    state: watch::Sender<SourceState>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    match source {
        Source::Files(dir) => {
            // Fail start-up at once on a directory that cannot be read; `run` loads it.
            std::fs::read_dir(&dir)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
            let (reports_tx, mut reports_rx) = watch::channel(Arc::new(files::Report::default()));
            tokio::spawn(async move {
                while reports_rx.changed().await.is_ok() {
                    let report = reports_rx.borrow_and_update().clone();
                    state.send_replace(SourceState::Files(report));
                }
            });
            Ok(tokio::spawn(async move {
                files::run(dir, index, reports_tx)
                    .await
                    .map_err(anyhow::Error::from)
            }))
        }
        Source::Kube => {
            let client = kube::Client::try_default().await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot configure a Kubernetes client (in-cluster or kubeconfig): {e}"
                )
            })?;
            state.send_replace(SourceState::Kube);
            Ok(tokio::spawn(async move {
                let e = weft_controller_sources::kube::run(client, index).await;
                Err(anyhow::anyhow!("kube source stopped: {e:?}"))
            }))
        }
    }
}
