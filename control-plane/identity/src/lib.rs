//! The Weft controller's identity: `identity.Identity/Certify` for proxies, and the TLS the
//! controller itself serves with.
//!
//! A proxy sends its identity, its ServiceAccount token and a CSR. The token is checked by an
//! [`Authenticator`] (a Kubernetes TokenReview, or the local [`TokenRegistry`]); if it names
//! the ServiceAccount the identity is for, the current issuer signs the CSR. The issuer is
//! re-read from its files when they change ([`IssuerReloader`]). The controller signs a
//! certificate for its own identity with the same issuer ([`ControllerTls`]) and serves the
//! identity gRPC over TLS and the discovery gRPC over mTLS with it.

#![forbid(unsafe_code)]

pub mod auth;
pub mod issuer;
mod service;
pub mod tls;

pub use auth::{AuthError, Authenticator, ServiceAccount, TokenRegistry, TokenReviewer};
pub use issuer::{Credentials, IssuerError, IssuerFiles, IssuerReloader, IssuerStatus};
pub use service::{CertifyService, DEFAULT_LEAF_LIFETIME, MAX_REQUEST_BYTES};
pub use tls::{ControllerTls, ServerCertInfo, TlsAcceptor, TlsConn, TlsConnectInfo, TlsError};

use std::{future::Future, time::SystemTime};
use tokio::net::TcpListener;

/// The ServiceAccount (in namespace `weft-system`) whose identity the controller serves with.
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "weft-controller";

/// The namespace of [`CONTROLLER_SERVICE_ACCOUNT`].
pub const CONTROLLER_NAMESPACE: &str = "weft-system";

/// The controller's default identity (and TLS server name) in `trust_domain`:
/// `weft-controller.weft-system.serviceaccount.identity.<trust-domain>`.
pub fn controller_identity(trust_domain: &str) -> String {
    format!(
        "{CONTROLLER_SERVICE_ACCOUNT}.{CONTROLLER_NAMESPACE}.serviceaccount.identity.{trust_domain}"
    )
}

/// Serves Certify over TLS on `listener` until `shutdown` completes.
pub async fn serve<A: Authenticator>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: CertifyService<A>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tracing::info!(addr = ?listener.local_addr().ok(), "serving identity gRPC (TLS)");
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(tls::incoming(listener, acceptor), shutdown)
        .await
}

/// A time as RFC 3339 (UTC), for logs and the admin server.
pub fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{t:?}"))
}

/// A certificate's subject as text, or a note that it does not parse.
pub(crate) fn subject_of(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    match x509_parser::certificate::X509Certificate::from_der(der) {
        Ok((_, cert)) => cert.subject().to_string(),
        Err(e) => format!("(unparsable certificate: {e})"),
    }
}
