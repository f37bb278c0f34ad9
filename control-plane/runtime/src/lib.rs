//! Wires the Weft control plane together: a source (kube or files) feeds the index, the
//! gRPC services stream its results to proxies, and a small admin server reports health. With
//! identity configured, the controller also issues proxies' certificates (Certify over TLS)
//! and serves discovery over mTLS only.
//!
//! The `weft-controller` binary parses flags into [`Config`] and calls [`run`].

#![forbid(unsafe_code)]

mod admin;
mod duration;
mod identity;

pub use duration::{InvalidDuration, parse_duration};
pub use identity::{IdentityFlags, IdentityFlagsError};
pub use weft_controller_identity::{DEFAULT_LEAF_LIFETIME, IssuerFiles, controller_identity};

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch};
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
    /// Identity; `None` serves discovery in plaintext and issues no certificates.
    pub identity: Option<IdentityConfig>,
}

/// How the controller issues certificates and protects its own servers.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// Identity gRPC, TLS (8080).
    pub addr: SocketAddr,
    /// The trust anchors, issuer certificate and issuer key, re-read when they change.
    pub issuer: IssuerFiles,
    /// The local token registry (files source); `None` checks tokens with TokenReview.
    pub token_registry: Option<PathBuf>,
    /// How long proxies' (and the controller's own) certificates are valid.
    pub leaf_lifetime: Duration,
    /// The controller's own identity, its TLS server name
    /// ([`controller_identity`] of the trust domain by default).
    pub controller_identity: String,
}

/// State the admin server reports.
#[derive(Clone, Debug)]
pub struct Status {
    index: SharedIndex,
    source: watch::Receiver<SourceState>,
    identity: Option<identity::IdentityStatus>,
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
    let kube = match config.source {
        Source::Kube => Some(kube::Client::try_default().await.map_err(|e| {
            anyhow::anyhow!("cannot configure a Kubernetes client (in-cluster or kubeconfig): {e}")
        })?),
        Source::Files(_) => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }
    };
    let identity = match &config.identity {
        Some(c) => Some(identity::start(c, &config.trust_domain, kube.clone(), stopped()).await?),
        None => {
            tracing::warn!(
                "identity is disabled (no --trust-anchors, --issuer-cert, --issuer-key): no certificates are issued and discovery is served without mTLS"
            );
            None
        }
    };
    let (state_tx, state_rx) = watch::channel(SourceState::Starting);
    let source = spawn_source(config.source.clone(), kube, index.clone(), state_tx).await?;

    let admin = admin::bind(config.admin_addr).await?;
    tokio::spawn(admin::serve(
        admin,
        Status {
            index: index.clone(),
            source: state_rx,
            identity: identity.as_ref().map(|i| i.status.clone()),
        },
    ));

    let grpc_config = weft_controller_grpc::Config {
        cluster_domain: config.cluster_domain.clone(),
    };
    let (grpc, identity_server) = match identity {
        Some(identity) => {
            let listener = TcpListener::bind(config.grpc_addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.grpc_addr))?;
            let incoming = weft_controller_identity::tls::incoming(listener, identity.mtls);
            let grpc = tokio::spawn(weft_controller_grpc::serve_with_incoming(
                incoming,
                index,
                grpc_config,
                stopped(),
            ));
            (grpc, Some(identity.server))
        }
        None => {
            let grpc = weft_controller_grpc::serve(config.grpc_addr, index, grpc_config, stopped());
            (tokio::spawn(grpc), None)
        }
    };
    tracing::info!(grpc = %config.grpc_addr, admin = %config.admin_addr, source = ?config.source, mtls = identity_server.is_some(), "controller running");

    tokio::pin!(shutdown);
    let (mut grpc, mut identity_server) = (Some(grpc), identity_server);
    // A server that ends on its own (it failed) ends the controller: running on without it
    // would look healthy while no proxy can be served or certified.
    let ended = tokio::select! {
        () = &mut shutdown => Ended::Shutdown,
        r = source => Ended::Source(match r {
            Ok(Ok(())) => Err(anyhow::anyhow!("the source stopped")),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("the source task failed: {e}")),
        }),
        r = until_done(&mut grpc) => Ended::Grpc(format!("{r:?}")),
        r = until_done(&mut identity_server) => Ended::Identity(format!("{r:?}")),
    };
    let result = match ended {
        Ended::Shutdown => Ok(()),
        Ended::Source(r) => r,
        Ended::Grpc(why) => {
            grpc = None;
            Err(anyhow::anyhow!(
                "the destination/policy gRPC server stopped: {why}"
            ))
        }
        Ended::Identity(why) => {
            identity_server = None;
            Err(anyhow::anyhow!("the identity gRPC server stopped: {why}"))
        }
    };
    let _ = stop_tx.send(true);
    if let Some(grpc) = grpc {
        match tokio::time::timeout(Duration::from_secs(5), grpc).await {
            Ok(Ok(Err(e))) => return Err(e.into()),
            Ok(_) => {}
            Err(_) => tracing::warn!("gRPC server did not stop within 5s"),
        }
    }
    if let Some(server) = identity_server {
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(Err(e))) => return Err(anyhow::anyhow!("identity gRPC server failed: {e}")),
            Ok(_) => {}
            Err(_) => tracing::warn!("identity gRPC server did not stop within 5s"),
        }
    }
    result
}

/// Why the controller stopped running.
enum Ended {
    Shutdown,
    Source(anyhow::Result<()>),
    Grpc(String),
    Identity(String),
}

/// The task's outcome once it ends; never, for a task that is not running.
async fn until_done<T>(
    task: &mut Option<tokio::task::JoinHandle<T>>,
) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

async fn spawn_source(
    source: Source,
    kube: Option<kube::Client>,
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
            let client = kube.ok_or_else(|| anyhow::anyhow!("the kube source needs a client"))?;
            state.send_replace(SourceState::Kube);
            Ok(tokio::spawn(async move {
                let e = weft_controller_sources::kube::run(client, index).await;
                Err(anyhow::anyhow!("kube source stopped: {e:?}"))
            }))
        }
    }
}
