//! Checking a workload's certificate signing request before the issuer signs it.

use crate::{
    CertError, ServiceAccountIdentity,
    cert::{self, KeyAlgorithm},
};
use x509_parser::{
    certification_request::X509CertificationRequest, extensions::ParsedExtension, prelude::FromDer,
};

/// Checks a PKCS#10 CSR (DER) for `identity` and returns its public key.
///
/// The key must be ECDSA P-256, ECDSA P-384 or Ed25519; the self-signature must verify; the
/// requested names must be exactly the identity's DNS name and optionally its SPIFFE URI.
pub(crate) fn check(
    csr_der: &[u8],
    identity: &ServiceAccountIdentity,
) -> Result<rcgen::SubjectPublicKeyInfo, CertError> {
    let (_, csr) = X509CertificationRequest::from_der(csr_der).map_err(|e| CertError::Csr {
        reason: format!("not a DER PKCS#10 request: {e}"),
    })?;
    let spki = &csr.certification_request_info.subject_pki;
    if let KeyAlgorithm::Other(algorithm) = KeyAlgorithm::of(spki) {
        return Err(CertError::UnsupportedKey { algorithm });
    }
    csr.verify_signature().map_err(|e| CertError::Csr {
        reason: format!(
            "its signature does not verify with its own public key ({e}); the request was altered or is corrupt"
        ),
    })?;
    check_names(&requested_names(&csr), identity)?;
    rcgen::SubjectPublicKeyInfo::from_der(spki.raw).map_err(|e| CertError::UnsupportedKey {
        algorithm: format!("{} ({e})", KeyAlgorithm::of(spki).name()),
    })
}

/// The subject alternative names a CSR asks for.
fn requested_names(csr: &X509CertificationRequest<'_>) -> Vec<String> {
    let Some(extensions) = csr.requested_extensions() else {
        return Vec::new();
    };
    extensions
        .filter_map(|ext| match ext {
            ParsedExtension::SubjectAlternativeName(san) => Some(&san.general_names),
            _ => None,
        })
        .flatten()
        .map(cert::general_name)
        .collect()
}

/// Fails unless `found` is the identity's DNS name, and optionally its SPIFFE URI, only.
fn check_names(found: &[String], identity: &ServiceAccountIdentity) -> Result<(), CertError> {
    let dns = format!("DNS:{}", identity.dns_name());
    let uri = format!("URI:{}", identity.spiffe_uri());
    let has_dns = found.iter().filter(|n| **n == dns).count() == 1;
    let only_ours = found.iter().all(|n| *n == dns || *n == uri);
    let uri_once = found.iter().filter(|n| **n == uri).count() <= 1;
    if has_dns && only_ours && uri_once {
        Ok(())
    } else {
        Err(CertError::WrongSan {
            expected: format!("{dns} and optionally {uri}, nothing else"),
            found: found.to_vec(),
        })
    }
}
