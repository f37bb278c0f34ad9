//! Wires identity: the issuer and its reloader, the controller's own certificate, the
//! Certify server (TLS) and the mTLS acceptor for the discovery server.

mod flags;

pub use flags::{IdentityFlags, IdentityFlagsError};

use crate::IdentityConfig;
use parking_lot::Mutex;
use std::{future::Future, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use weft_certs::ServiceAccountIdentity;
use weft_controller_identity::{
    Authenticator, CertifyService, ControllerTls, Credentials, IssuerReloader, ServerCertInfo,
    TlsAcceptor, TokenRegistry, TokenReviewer, issuer::DEFAULT_POLL,
};

/// What the admin server shows about identity.
#[derive(Clone, Debug)]
pub(crate) struct IdentityStatus {
    pub(crate) issuer: watch::Receiver<Arc<Credentials>>,
    pub(crate) reload_error: Arc<Mutex<Option<String>>>,
    pub(crate) server_cert: watch::Receiver<ServerCertInfo>,
}

/// Identity, running.
pub(crate) struct Running {
    /// Accepts discovery clients with a certificate from the trust anchors.
    pub(crate) mtls: TlsAcceptor,
    pub(crate) status: IdentityStatus,
    /// The Certify server.
    pub(crate) server: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Loads the issuer, signs the controller's certificate, and serves Certify until `stop`.
/// Fails at once on unusable files or flags, so a controller never runs half-configured.
pub(crate) async fn start(
    config: &IdentityConfig,
    trust_domain: &str,
    kube: Option<kube::Client>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let own = ServiceAccountIdentity::parse_dns(&config.controller_identity)
        .map_err(|e| anyhow::anyhow!("--controller-identity: {e}"))?;
    if own.trust_domain != trust_domain {
        anyhow::bail!(
            "--controller-identity {own} is not in trust domain {trust_domain} (--trust-domain)"
        );
    }
    let reloader = IssuerReloader::load(config.issuer.clone())?;
    let credentials = reloader.subscribe();
    let reload_error = reloader.last_error();
    tokio::spawn(reloader.run(DEFAULT_POLL));

    let tls = ControllerTls::new(own.clone(), config.leaf_lifetime, credentials.clone())?;
    let (acceptor, mtls, server_cert) = (tls.acceptor(), tls.mtls_acceptor(), tls.info());
    tokio::spawn(tls.run());

    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (identity): {e}", config.addr))?;
    let serve = Serve {
        listener,
        acceptor,
        credentials: credentials.clone(),
        trust_domain: trust_domain.to_string(),
        lifetime: config.leaf_lifetime,
    };
    let server = match (&config.token_registry, kube) {
        (Some(path), _) => serve.spawn(TokenRegistry::load(path)?, stop),
        (None, Some(client)) => serve.spawn(TokenReviewer::new(client), stop),
        (None, None) => anyhow::bail!(
            "identity needs a way to check tokens: --token-registry FILE (files source) or the kube source"
        ),
    };
    tracing::info!(
        addr = %config.addr,
        server_name = %own,
        lifetime = ?config.leaf_lifetime,
        "identity enabled: Certify over TLS, discovery over mTLS"
    );
    Ok(Running {
        mtls,
        status: IdentityStatus {
            issuer: credentials,
            reload_error,
            server_cert,
        },
        server,
    })
}

struct Serve {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    credentials: watch::Receiver<Arc<Credentials>>,
    trust_domain: String,
    lifetime: Duration,
}

impl Serve {
    fn spawn<A: Authenticator>(
        self,
        auth: A,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<Result<(), tonic::transport::Error>> {
        let service = CertifyService::new(auth, self.credentials, self.trust_domain, self.lifetime);
        tokio::spawn(weft_controller_identity::serve(
            self.listener,
            self.acceptor,
            service,
            stop,
        ))
    }
}
