//! The controller's own TLS: a certificate for the controller's identity that it signs for
//! itself with the issuer, kept fresh, and the acceptors of the identity server (TLS) and the
//! discovery server (mTLS, client certificate required).

mod incoming;

pub use incoming::{TlsAcceptor, TlsConn, TlsConnectInfo, incoming};

use crate::issuer::Credentials;
use parking_lot::RwLock;
use rustls::{
    RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};
use tokio::{sync::watch, time::Instant};
use weft_certs::{CertError, LeafKey, ServiceAccountIdentity};

/// How long to wait before trying again when signing the controller's certificate fails.
const RETRY: Duration = Duration::from_secs(10);

/// The shortest wait between renewals, so an issuer about to expire (which caps every
/// certificate's life) cannot make the controller sign in a tight loop.
const MIN_RENEW: Duration = Duration::from_secs(1);

/// The controller's current server certificate, for the admin server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCertInfo {
    /// The identity (and TLS server name) the certificate names.
    pub identity: String,
    /// When it was signed.
    pub signed_at: SystemTime,
    /// When it expires.
    pub not_after: SystemTime,
    /// When it will be replaced (70% of its life), unless the issuer changes first.
    pub renew_at: SystemTime,
    /// 1 for the certificate signed at start, +1 for each renewal.
    pub generation: u64,
}

/// Why the controller's TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The controller's certificate cannot be made with the current issuer.
    #[error("cannot sign the controller's certificate for {identity}: {source}")]
    Sign {
        /// The controller's identity.
        identity: String,
        /// Why.
        #[source]
        source: CertError,
    },
    /// rustls refused the key, the anchors or the configuration.
    #[error("cannot configure TLS for {identity}: {source}")]
    Rustls {
        /// The controller's identity.
        identity: String,
        /// rustls' complaint.
        #[source]
        source: rustls::Error,
    },
    /// The trust anchors cannot verify client certificates.
    #[error("cannot verify client certificates with the trust anchors: {0}")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
}

/// The controller's server certificate and the TLS configurations that present it.
///
/// [`new`](Self::new) signs the first certificate; [`run`](Self::run) re-signs it with a new
/// key when the issuer changes and at 70% of its life, and rebuilds the mTLS configuration
/// when the trust anchors change. Acceptors taken before `run` follow every change.
pub struct ControllerTls {
    identity: ServiceAccountIdentity,
    lifetime: Duration,
    credentials: watch::Receiver<Arc<Credentials>>,
    resolver: Arc<SwapResolver>,
    tls: watch::Sender<Arc<ServerConfig>>,
    mtls: watch::Sender<Arc<ServerConfig>>,
    info: watch::Sender<ServerCertInfo>,
}

impl ControllerTls {
    /// Signs a certificate for `identity`, valid for `lifetime` (or until the issuer expires).
    pub fn new(
        identity: ServiceAccountIdentity,
        lifetime: Duration,
        mut credentials: watch::Receiver<Arc<Credentials>>,
    ) -> Result<Self, TlsError> {
        let current = credentials.borrow_and_update().clone();
        let (key, info) = sign(&identity, lifetime, &current, 1)?;
        let resolver = Arc::new(SwapResolver(RwLock::new(key)));
        let tls = server_config(&identity, resolver.clone(), None)?;
        let mtls = server_config(&identity, resolver.clone(), Some(&current))?;
        Ok(Self {
            identity,
            lifetime,
            credentials,
            resolver,
            tls: watch::channel(tls).0,
            mtls: watch::channel(mtls).0,
            info: watch::channel(info).0,
        })
    }

    /// Accepts TLS 1.3 without client certificates (the identity server: proxies have no
    /// certificate yet when they ask for one).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::new(self.tls.subscribe())
    }

    /// Accepts TLS 1.3 only from clients with a certificate that chains to the trust anchors
    /// (the discovery server: only meshed proxies read discovery).
    pub fn mtls_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::new(self.mtls.subscribe())
    }

    /// The current certificate's identity and expiry.
    pub fn info(&self) -> watch::Receiver<ServerCertInfo> {
        self.info.subscribe()
    }

    /// Keeps the certificate fresh until the issuer's reloader is gone. Waits on the tokio
    /// clock, so tests can pause time.
    pub async fn run(mut self) {
        let mut issuer_open = true;
        let mut deadline = Instant::now() + self.renew_in();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                r = self.credentials.changed(), if issuer_open => {
                    if r.is_err() {
                        issuer_open = false;
                        continue;
                    }
                }
            }
            deadline = match self.renew() {
                Ok(()) => Instant::now() + self.renew_in(),
                Err(error) => {
                    tracing::error!(%error, retry_in = ?RETRY, "keeping the controller's current certificate");
                    Instant::now() + RETRY
                }
            };
        }
    }

    /// 70% of the current certificate's life from when it was signed.
    fn renew_in(&self) -> Duration {
        let info = self.info.borrow();
        info.renew_at
            .duration_since(info.signed_at)
            .unwrap_or_default()
            .max(MIN_RENEW)
    }

    fn renew(&mut self) -> Result<(), TlsError> {
        let current = self.credentials.borrow_and_update().clone();
        let generation = self.info.borrow().generation + 1;
        let (key, info) = sign(&self.identity, self.lifetime, &current, generation)?;
        let mtls = server_config(&self.identity, self.resolver.clone(), Some(&current))?;
        *self.resolver.0.write() = key;
        self.mtls.send_replace(mtls);
        self.info.send_replace(info);
        Ok(())
    }
}

/// A new key and a certificate for it, signed by the current issuer.
fn sign(
    identity: &ServiceAccountIdentity,
    lifetime: Duration,
    credentials: &Credentials,
    generation: u64,
) -> Result<(Arc<CertifiedKey>, ServerCertInfo), TlsError> {
    let sign_err = |source| TlsError::Sign {
        identity: identity.to_string(),
        source,
    };
    let now = SystemTime::now();
    let key = LeafKey::generate().map_err(sign_err)?;
    let csr = key.csr_der(identity).map_err(sign_err)?;
    let leaf = credentials
        .issuer
        .certify(&csr, identity, lifetime, now)
        .map_err(sign_err)?;
    let certified = CertifiedKey::from_der(leaf.chain, key.private_key_der(), &provider())
        .map_err(|source| TlsError::Rustls {
            identity: identity.to_string(),
            source,
        })?;
    let life = leaf.not_after.duration_since(now).unwrap_or_default();
    let info = ServerCertInfo {
        identity: identity.to_string(),
        not_after: leaf.not_after,
        signed_at: now,
        renew_at: now + life.mul_f64(0.7),
        generation,
    };
    tracing::info!(
        %identity,
        not_after = %crate::rfc3339(info.not_after),
        renew_at = %crate::rfc3339(info.renew_at),
        issuer = %credentials.status.subject,
        "signed the controller's certificate"
    );
    Ok((Arc::new(certified), info))
}

/// TLS 1.3 with the swappable certificate; with `client_auth`, clients must present a
/// certificate that chains to its anchors.
fn server_config(
    identity: &ServiceAccountIdentity,
    resolver: Arc<SwapResolver>,
    client_auth: Option<&Credentials>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| TlsError::Rustls {
            identity: identity.to_string(),
            source,
        })?;
    let mut config = match client_auth {
        None => builder.with_no_client_auth().with_cert_resolver(resolver),
        Some(credentials) => {
            let mut roots = RootCertStore::empty();
            let (_, ignored) =
                roots.add_parsable_certificates(credentials.anchors.certs().to_vec());
            if ignored > 0 {
                tracing::warn!(
                    ignored,
                    "some trust anchors cannot verify client certificates"
                );
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider()))
                    .build()
                    .map_err(TlsError::ClientVerifier)?;
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver)
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The one crypto provider Weft compiles.
pub(crate) fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Presents whatever certificate was signed last, whatever the SNI.
#[derive(Debug)]
struct SwapResolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for SwapResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}
