//! The one error type of the crate: every certificate, key and CSR problem, each saying what
//! was wrong and where (a file, a subject or an identity).

use crate::name::NameError;

/// Every certificate/key/CSR problem, each saying what was wrong and where (file or subject).
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The text is not the PEM that was expected: no block, a wrong label or bad base64.
    #[error("{what}: {reason}")]
    Pem {
        /// What was being read (a file name, or "trust anchors", "issuer key", ...).
        what: String,
        /// What was wrong and what was found instead.
        reason: String,
    },
    /// A PEM block decoded but its DER is not a valid certificate, key or CSR.
    #[error("{what}: cannot parse: {reason}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The private key is not the key of the certificate it came with.
    #[error("the private key does not match the public key of certificate {cert_subject:?}")]
    KeyMismatch {
        /// The certificate's subject.
        cert_subject: String,
    },
    /// The certificate's validity ended.
    #[error("certificate {subject:?} expired at {not_after}")]
    Expired {
        /// The certificate's subject.
        subject: String,
        /// Its notAfter, RFC 3339.
        not_after: String,
    },
    /// The certificate's validity has not started.
    #[error("certificate {subject:?} is not valid before {not_before} (check the clock)")]
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Its notBefore, RFC 3339.
        not_before: String,
    },
    /// A certificate used to sign is not a CA (no basicConstraints CA:true).
    #[error("certificate {subject:?} is not a CA (basicConstraints CA:true is missing)")]
    NotCa {
        /// The certificate's subject.
        subject: String,
    },
    /// A CA's pathLenConstraint does not allow the intermediates below it.
    #[error(
        "CA certificate {subject:?} allows {path_len} intermediate CA(s) below it, but the chain has {below}"
    )]
    PathLen {
        /// The CA's subject.
        subject: String,
        /// Its pathLenConstraint.
        path_len: u32,
        /// The intermediate CAs below it in the chain.
        below: usize,
    },
    /// A certificate's signature does not verify with the key of its expected issuer.
    #[error("certificate {subject:?} is not signed by {issuer}")]
    NotSignedBy {
        /// The certificate's subject.
        subject: String,
        /// The issuer(s) it was checked against.
        issuer: String,
    },
    /// A CSR or certificate names something other than the expected identity.
    #[error("subject alternative names {found:?} do not match; expected {expected}")]
    WrongSan {
        /// What was expected.
        expected: String,
        /// The names found, as `DNS:...`, `URI:...`, ...
        found: Vec<String>,
    },
    /// A certificate has no DNS name that is a mesh identity.
    #[error(
        "certificate {subject:?} names no mesh identity (<sa>.<ns>.serviceaccount.identity.<trust-domain>) among its names {found:?}"
    )]
    NoIdentity {
        /// The certificate's subject.
        subject: String,
        /// Its subject alternative names.
        found: Vec<String>,
    },
    /// The CSR cannot be parsed or its self-signature does not verify.
    #[error("certificate signing request rejected: {reason}")]
    Csr {
        /// Why.
        reason: String,
    },
    /// A key of an algorithm Weft does not accept.
    #[error("unsupported key algorithm {algorithm}; accepted: ECDSA P-256, ECDSA P-384, Ed25519")]
    UnsupportedKey {
        /// The key's algorithm.
        algorithm: String,
    },
    /// A name (trust domain, identity) is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Making a key, certificate or CSR failed.
    #[error("cannot generate: {0}")]
    Generate(String),
}

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> Self {
        CertError::Generate(e.to_string())
    }
}
