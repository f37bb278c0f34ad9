//! The proxy's mesh identity: a key made in memory at start (it never leaves the process), a
//! certificate for it from the controller's `identity.Identity/Certify`, renewed at about 70%
//! of its life, and the trust anchors every mesh peer is checked against.
//!
//! rustls asks the [`Identity`] for the certificate on every handshake, so a renewal applies to
//! the next connection without rebuilding any TLS configuration.

mod certify;
pub mod connect;
mod schedule;

use crate::{config::IdentityConfig, metrics::Metrics};
use rustls::{
    RootCertStore, SignatureScheme,
    client::ResolvesClientCert,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::ServerName;
use std::{fmt, sync::Arc};
use tokio::sync::watch;

pub use self::{
    certify::CertifyError,
    connect::{ConnectError, TlsConnect},
};

/// The proxy's mesh identity: name, trust anchors and the current certificate, swapped
/// atomically on renewal; rustls asks it for the certificate on every handshake.
pub struct Identity {
    name: String,
    roots: Arc<RootCertStore>,
    controller_name: ServerName<'static>,
    current: watch::Sender<Option<Arc<CertifiedKey>>>,
}

/// Starts the certify/renew task; returns at once. The identity has no certificate until the
/// controller's first answer ([`Identity::certified`]).
pub fn spawn(config: IdentityConfig, metrics: Arc<Metrics>) -> Arc<Identity> {
    let identity = Arc::new(Identity::new(&config));
    tokio::spawn(certify::run(
        Arc::downgrade(&identity),
        identity.roots(),
        config,
        metrics,
    ));
    identity
}

// === impl Identity ===

impl Identity {
    /// An identity without a certificate yet.
    fn new(config: &IdentityConfig) -> Self {
        let mut roots = RootCertStore::empty();
        // The configuration already added each anchor to a store, so none is skipped here.
        let (_, skipped) = roots.add_parsable_certificates(config.trust_anchors.iter().cloned());
        if skipped > 0 {
            tracing::warn!(skipped, "trust anchors not usable as roots");
        }
        Self {
            name: config.name.dns_name(),
            roots: Arc::new(roots),
            controller_name: config.controller_name.clone(),
            current: watch::Sender::new(None),
        }
    }

    /// An identity with a certificate obtained elsewhere, never renewed: for tests and tools
    /// that hold a certificate already (`config.addr` and `config.token_file` are not used).
    pub fn fixed(config: &IdentityConfig, key: Arc<CertifiedKey>) -> Arc<Self> {
        let identity = Self::new(config);
        identity.install(key);
        Arc::new(identity)
    }

    /// This proxy's DNS identity (`<sa>.<ns>.serviceaccount.identity.<trust-domain>`), also the
    /// TLS server name peers use for it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trust anchors every mesh certificate must chain to.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    /// The current certificate chain and key, if the controller has issued one.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.borrow().clone()
    }

    /// Whether a certificate has been issued (an old one is kept while renewal fails).
    pub fn is_certified(&self) -> bool {
        self.current.borrow().is_some()
    }

    /// Waits until the first certificate is installed; returns at once after that.
    pub async fn certified(&self) {
        let mut rx = self.current.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// When the current certificate expires (`None` before the first one).
    pub fn expires(&self) -> Option<std::time::SystemTime> {
        let key = self.current()?;
        let leaf = key.cert.first()?;
        weft_certs::not_after(leaf).ok()
    }

    /// Keeps `ready` true exactly while the proxy holds a certificate that has not expired:
    /// false before the first one, and false again if renewal kept failing until the
    /// certificate ran out (peers would refuse it), until a new one arrives. Runs until
    /// aborted.
    pub async fn track_readiness(self: Arc<Self>, ready: Arc<std::sync::atomic::AtomicBool>) {
        use std::sync::atomic::Ordering;
        let mut changes = self.current.subscribe();
        loop {
            // Mark the value seen before reading it, so an install in between wakes us again.
            changes.borrow_and_update();
            let expires = self.expires();
            let left = expires.and_then(|t| t.duration_since(std::time::SystemTime::now()).ok());
            let valid = left.is_some_and(|d| !d.is_zero());
            if ready.swap(valid, Ordering::AcqRel) != valid {
                match valid {
                    true => tracing::info!(identity = %self.name, "proxy ready"),
                    false if expires.is_some() => {
                        tracing::error!(identity = %self.name, "the certificate expired before it could be renewed; not ready")
                    }
                    false => {}
                }
            }
            match left {
                Some(left) if valid => {
                    tokio::select! {
                        _ = changes.changed() => {}
                        () = tokio::time::sleep(left) => {}
                    }
                }
                // The sender lives in `self`, so this only returns on a new certificate.
                _ => {
                    let _ = changes.changed().await;
                }
            }
        }
    }

    /// The certificate for inbound handshakes.
    pub fn server_resolver(self: &Arc<Self>) -> Arc<dyn ResolvesServerCert> {
        Arc::new(Resolver(self.clone()))
    }

    /// The client certificate for outbound handshakes (none until certified).
    pub fn client_resolver(self: &Arc<Self>) -> Arc<dyn ResolvesClientCert> {
        Arc::new(Resolver(self.clone()))
    }

    /// The connector for the controller's destination and policy service: TLS 1.3 with this
    /// identity's certificate as the client certificate, the controller's certificate checked
    /// against the trust anchors for the configured controller name.
    pub fn controller_connector(self: &Arc<Self>) -> TlsConnect {
        let config = connect::client_config(self.roots(), Some(self.client_resolver()));
        TlsConnect::new(config, self.controller_name.clone())
    }

    /// Installs a renewed certificate; handshakes from now on use it.
    fn install(&self, key: Arc<CertifiedKey>) {
        self.current.send_replace(Some(key));
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("certified", &self.is_certified())
            .finish_non_exhaustive()
    }
}

/// Hands rustls the identity's current certificate on each handshake.
#[derive(Debug)]
struct Resolver(Arc<Identity>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }
}

impl ResolvesClientCert for Resolver {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }

    fn has_certs(&self) -> bool {
        self.0.is_certified()
    }
}
