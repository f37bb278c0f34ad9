//! Weft identity: the names a workload's certificate carries, and the certificates, keys and
//! CSRs (rcgen, x509-parser) that give every proxy its mTLS identity.
//!
//! A ServiceAccount `sa` in namespace `ns` under trust domain `td` is
//! `sa.ns.serviceaccount.identity.td` (DNS SAN, and the TLS server name) and
//! `spiffe://td/ns/ns/sa/sa` (URI SAN). A root (trust anchor) signs an issuer; the controller
//! loads the issuer ([`Issuer::load`]) and signs each proxy's CSR ([`Issuer::certify`]); the
//! proxy keeps its key ([`LeafKey`]) in memory.

#![forbid(unsafe_code)]

mod anchors;
mod ca;
mod cert;
mod csr;
mod error;
mod inspect;
mod issuer;
mod leaf;
mod name;
mod pem;
mod server;

pub use anchors::TrustAnchors;
pub use ca::{Ca, CaFiles, generate_issuer, generate_root};
pub use cert::{identity_of, not_after, subject_of};
pub use error::CertError;
pub use inspect::inspect;
pub use issuer::{Issuer, Leaf};
pub use leaf::LeafKey;
pub use name::{DEFAULT_TRUST_DOMAIN, NameError, ServiceAccountIdentity, check_trust_domain};
pub use pem::{cert_to_pem, certs_from_pem, chain_to_pem};
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
pub use server::{
    ServerCertStatus, ServerCredentials, check_issuer_cert, check_server_cert, generate_ca,
    generate_server_cert,
};
