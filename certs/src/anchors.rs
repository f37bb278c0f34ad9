//! Trust anchors: the root certificates every proxy and the controller trust.

use crate::{CertError, cert, pem};
use rustls_pki_types::CertificateDer;
use std::time::SystemTime;
use x509_parser::certificate::X509Certificate;

/// Trust anchors (one or more root certificates) from PEM.
#[derive(Clone, Debug)]
pub struct TrustAnchors {
    certs: Vec<CertificateDer<'static>>,
}

impl TrustAnchors {
    /// Reads every CERTIFICATE block; fails when there is none, or one is not a CA or is
    /// outside its validity.
    pub fn from_pem(pem: &str) -> Result<TrustAnchors, CertError> {
        let certs = pem::certs_from_pem("trust anchors", pem)?;
        let now = SystemTime::now();
        for der in &certs {
            let parsed = cert::parse("trust anchor", der)?;
            cert::check_ca(&parsed)?;
            cert::check_validity(&parsed, now)?;
        }
        Ok(TrustAnchors { certs })
    }

    /// The anchors' certificates.
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// The anchors as PEM text.
    pub fn to_pem(&self) -> String {
        pem::chain_to_pem(&self.certs)
    }

    /// Whether `der` is one of the anchors.
    pub(crate) fn contains(&self, der: &[u8]) -> bool {
        self.certs.iter().any(|a| a.as_ref() == der)
    }

    /// Fails unless `cert` is signed by one of the anchors, and that anchor allows `below`
    /// intermediate CAs under it.
    pub(crate) fn check_signed(
        &self,
        cert: &X509Certificate<'_>,
        below: usize,
    ) -> Result<(), CertError> {
        let mut subjects = Vec::new();
        for der in &self.certs {
            let anchor = cert::parse("trust anchor", der)?;
            if cert::check_signed_by(cert, &anchor).is_ok() {
                return cert::check_path_len(&anchor, below);
            }
            subjects.push(cert::subject(&anchor));
        }
        Err(CertError::NotSignedBy {
            subject: cert::subject(cert),
            issuer: format!("any trust anchor ({})", subjects.join("; ")),
        })
    }
}
