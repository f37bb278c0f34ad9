//! The controller's issuer: an intermediate CA, checked against the trust anchors on load,
//! that signs workloads' CSRs into short-lived leaf certificates.

use crate::{
    CertError, ServiceAccountIdentity, TrustAnchors,
    ca::{Ca, leaf_params, until},
    cert, csr, pem,
};
use rcgen::{ExtendedKeyUsagePurpose, SanType};
use rustls_pki_types::CertificateDer;
use std::time::{Duration, SystemTime};
use x509_parser::certificate::X509Certificate;

/// The controller's issuer: a Ca whose cert is signed by one of the anchors (checked on load:
/// signature verified, not expired). `cert_pem` may hold the issuer cert followed by further
/// intermediates; the chain sent to proxies is issuer (+ intermediates), never the root.
#[derive(Debug)]
pub struct Issuer {
    ca: Ca,
    chain: Vec<CertificateDer<'static>>,
}

/// A signed leaf certificate.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The leaf first, then the issuer and any further intermediates (never the root).
    pub chain: Vec<CertificateDer<'static>>,
    /// The end of the leaf's validity.
    pub not_after: SystemTime,
}

impl Issuer {
    /// Loads the issuer: its certificate (then any further intermediates) and its key.
    ///
    /// Each certificate must be a CA within its validity, signed by the next one, and the
    /// last signed by one of `anchors`. Copies of the anchors in `cert_pem` are dropped.
    pub fn load(
        cert_pem: &str,
        key_pem: &str,
        anchors: &TrustAnchors,
    ) -> Result<Issuer, CertError> {
        let chain: Vec<_> = pem::certs_from_pem("issuer certificate", cert_pem)?
            .into_iter()
            .filter(|c| !anchors.contains(c))
            .collect();
        let Some(first) = chain.first() else {
            return Err(CertError::Pem {
                what: "issuer certificate".to_string(),
                reason: "holds only trust anchors; the issuer must be an intermediate CA signed by an anchor".to_string(),
            });
        };
        let key = pem::key_from_pem("issuer private key", key_pem)?;
        let now = SystemTime::now();
        let ca = Ca::load("issuer certificate", first.clone(), key, now)?;
        let parsed = chain
            .iter()
            .map(|der| cert::parse("issuer chain certificate", der))
            .collect::<Result<Vec<_>, _>>()?;
        check_issuer_chain(&parsed, anchors, now)?;
        Ok(Issuer { ca, chain })
    }

    /// Checks the CSR (DER, PKCS#10): self-signature valid; key ECDSA P-256 or P-384 or Ed25519
    /// (else UnsupportedKey); its SANs are exactly the DNS name of `identity` and optionally the
    /// SPIFFE URI of `identity` (anything else → WrongSan). Signs a leaf: DNS SAN + URI SAN of
    /// `identity`, CN = DNS name, not CA, key usage digitalSignature, EKU serverAuth+clientAuth,
    /// not_before = now - 60 s (clock skew), not_after = min(now + lifetime, issuer not_after),
    /// random serial. Returns the chain leaf-first.
    pub fn certify(
        &self,
        csr_der: &[u8],
        identity: &ServiceAccountIdentity,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<Leaf, CertError> {
        if now > self.ca.not_after() {
            return Err(CertError::Expired {
                subject: self.ca.subject(),
                not_after: cert::rfc3339(self.ca.not_after()),
            });
        }
        if now < self.ca.not_before() {
            return Err(CertError::NotYetValid {
                subject: self.ca.subject(),
                not_before: cert::rfc3339(self.ca.not_before()),
            });
        }
        let public_key = csr::check(csr_der, identity)?;
        let not_after = until(now, lifetime)?.min(self.ca.not_after());
        let params = leaf_params(
            &identity.dns_name(),
            identity_sans(identity)?,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            now,
            not_after,
        )?;
        let leaf = self.ca.sign(&params, &public_key)?;
        let not_after = cert::not_after(&leaf)?;
        let mut chain = Vec::with_capacity(1 + self.chain.len());
        chain.push(leaf);
        chain.extend(self.chain.iter().cloned());
        Ok(Leaf { chain, not_after })
    }

    /// The end of the issuer's validity; no leaf outlives it.
    pub fn not_after(&self) -> SystemTime {
        self.ca.not_after()
    }

    /// The issuer's certificate and further intermediates: issuer first, no root.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}

/// Checks an issuer chain (issuer first, then further intermediates, no anchor): each
/// certificate is a CA within its validity at `now`, signed by the next, and the last by one
/// of `anchors`; every CA's pathLenConstraint allows the intermediates below it. `weft check`
/// and [`Issuer::load`] both run it, so the check passes what the controller loads.
pub(crate) fn check_issuer_chain(
    parsed: &[X509Certificate<'_>],
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<(), CertError> {
    for cert in parsed {
        cert::check_ca(cert)?;
        cert::check_validity(cert, now)?;
    }
    // The CA `n` steps above the issuer has `n` intermediate CAs (the issuer among them)
    // below it; its pathLenConstraint must allow that.
    for (below, pair) in parsed.windows(2).enumerate() {
        cert::check_path_len(&pair[1], below + 1)?;
        cert::check_signed_by(&pair[0], &pair[1])?;
    }
    if let Some(last) = parsed.last() {
        anchors.check_signed(last, parsed.len())?;
    }
    Ok(())
}

/// The identity's DNS and SPIFFE URI names.
pub(crate) fn identity_sans(identity: &ServiceAccountIdentity) -> Result<Vec<SanType>, CertError> {
    let ia5 = |s: String| {
        rcgen::string::Ia5String::try_from(s.clone())
            .map_err(|e| CertError::Generate(format!("name {s:?}: {e}")))
    };
    Ok(vec![
        SanType::DnsName(ia5(identity.dns_name())?),
        SanType::URI(ia5(identity.spiffe_uri())?),
    ])
}
