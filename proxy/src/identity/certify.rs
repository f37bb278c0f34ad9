//! The certify/renew task: sends `Certify` with the pod's token and a CSR for the in-memory
//! key, checks the answer, installs it, sleeps until about 70% of its life, and starts again.
//! A failed attempt is retried with backoff while the current certificate stays in use.

use super::{
    Identity, connect,
    schedule::{Retry, refresh_delay},
};
use crate::{config::IdentityConfig, metrics::Metrics};
use rustls::{
    RootCertStore,
    client::{WebPkiServerVerifier, danger::ServerCertVerifier},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::{
    error::Error as _,
    path::PathBuf,
    sync::{Arc, Weak},
    time::{Duration, SystemTime},
};
use tonic::transport::{Channel, Endpoint};
use weft_certs::{CertError, LeafKey, ServiceAccountIdentity};
use weft_proto::identity::{CertifyRequest, CertifyResponse, identity_client::IdentityClient};

/// Why one certify attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    /// The ServiceAccount token could not be read.
    #[error("cannot read the ServiceAccount token {path}: {source}")]
    Token {
        /// The token file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The key or the CSR could not be made.
    #[error("cannot make the key or the certificate signing request: {0}")]
    Csr(CertError),
    /// The controller could not be reached or refused the request.
    #[error("Certify to {addr} failed: {code:?}: {message}")]
    Rpc {
        /// The identity service address.
        addr: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message, with the transport error behind it if any.
        message: String,
    },
    /// The answer carries no certificate.
    #[error("the controller answered without a leaf certificate")]
    NoCertificate,
    /// The answer is already expired (a skewed clock on one side): installing it would only
    /// ask again at once.
    #[error("the controller's answer is valid only until {until:?}, which has passed")]
    AlreadyExpired {
        /// The end of its validity.
        until: SystemTime,
    },
    /// The certificate does not parse or names no identity.
    #[error("the issued certificate is unusable: {0}")]
    Certificate(CertError),
    /// The certificate is for someone else.
    #[error("the issued certificate names {found}, not {expected}")]
    WrongIdentity {
        /// This proxy's identity.
        expected: String,
        /// The identity in the certificate.
        found: String,
    },
    /// The chain does not verify against the trust anchors for our name.
    #[error("the issued certificate does not verify against the trust anchors as {name}: {source}")]
    Untrusted {
        /// This proxy's identity.
        name: String,
        /// The verifier's complaint.
        source: rustls::Error,
    },
    /// The certificate is not for this proxy's key.
    #[error("the issued certificate is not for this proxy's key: {0}")]
    KeyMismatch(rustls::Error),
}

/// Runs for as long as the identity is in use.
pub(super) async fn run(
    identity: Weak<Identity>,
    roots: Arc<RootCertStore>,
    config: IdentityConfig,
    metrics: Arc<Metrics>,
) {
    let name = config.name.dns_name();
    let mut certifier = match Certifier::new(config, roots) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(identity = %name, error = %e, "cannot start certifying; the proxy will not become ready");
            return;
        }
    };
    let mut retry = Retry::default();
    let mut expiry = None;
    loop {
        let wait = match certifier.certify().await {
            Ok((key, not_after)) => {
                let Some(identity) = identity.upgrade() else {
                    return;
                };
                identity.install(key);
                metrics.set_identity_expiry(not_after);
                expiry = Some(not_after);
                retry.reset();
                let wait = refresh_delay(not_after, SystemTime::now(), fastrand::f64());
                tracing::info!(
                    identity = %name,
                    not_after = unix_seconds(not_after),
                    valid_for = ?not_after.duration_since(SystemTime::now()).unwrap_or_default(),
                    renew_in = ?wait,
                    "certificate installed"
                );
                wait
            }
            Err(e) => {
                let wait = retry.next(expiry, SystemTime::now(), fastrand::f64());
                let expired = expiry.is_some_and(|t| t <= SystemTime::now());
                tracing::warn!(
                    identity = %name,
                    error = %e,
                    retry_in = ?wait,
                    keeping = if expiry.is_none() { "no certificate yet" } else if expired { "an expired certificate" } else { "the current certificate" },
                    "certify failed"
                );
                wait
            }
        };
        tokio::time::sleep(wait).await;
        if identity.strong_count() == 0 {
            return;
        }
    }
}

/// Everything one attempt needs, made once.
struct Certifier {
    addr: String,
    name: ServiceAccountIdentity,
    server_name: ServerName<'static>,
    token_file: PathBuf,
    key: LeafKey,
    signer: Arc<dyn rustls::sign::SigningKey>,
    client: IdentityClient<Channel>,
    verifier: Arc<WebPkiServerVerifier>,
}

/// Why the task cannot start at all.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("cannot make a key: {0}")]
    Key(CertError),
    #[error("the key is not usable for TLS: {0}")]
    Signer(rustls::Error),
    #[error("invalid identity address {addr:?}: {source}")]
    Addr {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("{0:?} is not a TLS server name")]
    Name(String),
    #[error("cannot verify certificates with these trust anchors: {0}")]
    Verifier(rustls::server::VerifierBuilderError),
}

impl Certifier {
    fn new(config: IdentityConfig, roots: Arc<RootCertStore>) -> Result<Self, SetupError> {
        let key = LeafKey::generate().map_err(SetupError::Key)?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&key.private_key_der())
            .map_err(SetupError::Signer)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
            .build()
            .map_err(SetupError::Verifier)?;
        // The identity channel presents no client certificate: it is how we get one.
        let tls = connect::TlsConnect::new(
            connect::client_config(roots, None),
            config.controller_name.clone(),
        );
        let channel = Endpoint::from_shared(format!("http://{}", config.addr))
            .map_err(|source| SetupError::Addr {
                addr: config.addr.clone(),
                source,
            })?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_with_connector_lazy(tls);
        let server_name = ServerName::try_from(config.name.dns_name())
            .map_err(|_| SetupError::Name(config.name.dns_name()))?;
        Ok(Self {
            addr: config.addr,
            name: config.name,
            server_name,
            token_file: config.token_file,
            key,
            signer,
            client: IdentityClient::new(channel),
            verifier,
        })
    }

    /// One attempt: a fresh token read, the request, and the checked answer.
    async fn certify(&mut self) -> Result<(Arc<CertifiedKey>, SystemTime), CertifyError> {
        // Projected tokens rotate: read the file on every attempt. It is a small file on a
        // tmpfs volume, so a blocking read costs less than a trip to the blocking pool.
        let token = std::fs::read(&self.token_file).map_err(|source| CertifyError::Token {
            path: self.token_file.clone(),
            source,
        })?;
        let csr = self.key.csr_der(&self.name).map_err(CertifyError::Csr)?;
        let request = CertifyRequest {
            identity: self.name.dns_name(),
            token: token.trim_ascii().to_vec(),
            certificate_signing_request: csr,
        };
        let response = self
            .client
            .certify(request)
            .await
            .map_err(|status| CertifyError::Rpc {
                addr: self.addr.clone(),
                code: status.code(),
                message: status_text(&status),
            })?;
        self.check(response.into_inner())
    }

    /// The answer must name us, chain to the anchors for our name, and certify our key.
    fn check(&self, rsp: CertifyResponse) -> Result<(Arc<CertifiedKey>, SystemTime), CertifyError> {
        if rsp.leaf_certificate.is_empty() {
            return Err(CertifyError::NoCertificate);
        }
        let leaf = CertificateDer::from(rsp.leaf_certificate);
        let intermediates: Vec<CertificateDer<'static>> = rsp
            .intermediate_certificates
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let found = weft_certs::identity_of(&leaf).map_err(CertifyError::Certificate)?;
        if found != self.name {
            return Err(CertifyError::WrongIdentity {
                expected: self.name.dns_name(),
                found: found.dns_name(),
            });
        }
        self.verifier
            .verify_server_cert(
                &leaf,
                &intermediates,
                &self.server_name,
                &[],
                UnixTime::now(),
            )
            .map_err(|source| CertifyError::Untrusted {
                name: self.name.dns_name(),
                source,
            })?;
        let mut not_after = weft_certs::not_after(&leaf).map_err(CertifyError::Certificate)?;
        if let Some(until) = rsp.valid_until.and_then(|t| {
            let secs = u64::try_from(t.seconds).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
        }) {
            not_after = not_after.min(until);
        }
        if not_after <= SystemTime::now() {
            return Err(CertifyError::AlreadyExpired { until: not_after });
        }
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(leaf);
        chain.extend(intermediates);
        let key = CertifiedKey::new(chain, self.signer.clone());
        key.keys_match().map_err(CertifyError::KeyMismatch)?;
        Ok((Arc::new(key), not_after))
    }
}

/// The status message and the transport error behind it (a refused connection, a handshake
/// that failed on the controller's certificate), which tonic keeps as the source.
fn status_text(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    let mut source = status.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
