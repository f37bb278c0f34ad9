//! TLS server certificates outside the mesh identity: the admission webhook's serving
//! certificate and the private CA whose certificate the API server trusts for it
//! (`caBundle`), and the checks `weft check` and the injector run on them.

use crate::{
    CertError,
    ca::{Ca, CaFiles, leaf_params, self_signed, until},
    cert,
    issuer::check_issuer_chain,
    pem,
};
use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::time::{Duration, SystemTime};

/// A self-signed CA named `common_name` (ECDSA P-256, pathlen 0), valid for `lifetime` from
/// now: the signer of a webhook's serving certificate, trusted through `caBundle` only.
pub fn generate_ca(common_name: &str, lifetime: Duration) -> Result<CaFiles, CertError> {
    self_signed(common_name, BasicConstraints::Constrained(0), lifetime)
}

/// A TLS server certificate for `dns_names` (the first is also the CN), signed by `ca`:
/// ECDSA P-256, not a CA, EKU serverAuth, valid for `lifetime` from now but never past the CA.
/// `cert_pem` holds the certificate alone.
pub fn generate_server_cert(
    ca: &Ca,
    dns_names: &[&str],
    lifetime: Duration,
) -> Result<CaFiles, CertError> {
    let Some(first) = dns_names.first() else {
        return Err(CertError::Generate(
            "a server certificate needs at least one DNS name".to_string(),
        ));
    };
    let now = SystemTime::now();
    let sans = dns_names
        .iter()
        .map(|name| {
            rcgen::string::Ia5String::try_from(name.to_string())
                .map(SanType::DnsName)
                .map_err(|e| CertError::Generate(format!("DNS name {name:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let params = leaf_params(
        first,
        sans,
        vec![ExtendedKeyUsagePurpose::ServerAuth],
        now,
        until(now, lifetime)?.min(ca.not_after()),
    )?;
    let key = KeyPair::generate()?;
    let der = ca.sign(&params, &key)?;
    Ok(CaFiles {
        cert_pem: pem::cert_to_pem(&der),
        key_pem: key.serialize_pem(),
    })
}

/// A serving certificate chain and its key, checked to belong together, for rustls.
pub struct ServerCredentials {
    /// The certificate first, then any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The PKCS#8 private key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCredentials")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerCredentials {
    /// Reads a certificate chain and its PKCS#8 key: the first certificate must be within
    /// its validity now and carry the key's public key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let chain = pem::certs_from_pem("server certificate", cert_pem)?;
        let first = first_of(&chain)?;
        let key = pem::key_from_pem("server private key", key_pem)?;
        let parsed = cert::parse("server certificate", first)?;
        cert::check_validity(&parsed, SystemTime::now())?;
        cert::check_key(&parsed, &key)?;
        Ok(Self {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

/// The first certificate of a server's chain.
fn first_of<'a>(
    chain: &'a [CertificateDer<'static>],
) -> Result<&'a CertificateDer<'static>, CertError> {
    chain.first().ok_or_else(|| CertError::Pem {
        what: "server certificate".to_string(),
        reason: "no CERTIFICATE block".to_string(),
    })
}

/// What [`check_server_cert`] found out about a serving certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCertStatus {
    /// The certificate's subject.
    pub subject: String,
    /// Its DNS names.
    pub dns_names: Vec<String>,
    /// The end of its validity.
    pub not_after: SystemTime,
}

/// Checks that the first certificate of `cert_pem` is signed by one of the CA certificates of
/// `ca_pem` (a webhook's `caBundle`), names `dns_name`, and is within its validity at `now`.
pub fn check_server_cert(
    cert_pem: &str,
    ca_pem: &str,
    dns_name: &str,
    now: SystemTime,
) -> Result<ServerCertStatus, CertError> {
    let certs = pem::certs_from_pem("server certificate", cert_pem)?;
    let cas = pem::certs_from_pem("CA bundle", ca_pem)?;
    let first = first_of(&certs)?;
    let parsed = cert::parse("server certificate", first)?;
    cert::check_validity(&parsed, now)?;
    let mut subjects = Vec::new();
    let mut signed = false;
    for der in &cas {
        let ca = cert::parse("CA bundle certificate", der)?;
        if cert::check_signed_by(&parsed, &ca).is_ok() {
            cert::check_ca(&ca)?;
            cert::check_validity(&ca, now)?;
            signed = true;
            break;
        }
        subjects.push(cert::subject(&ca));
    }
    if !signed {
        return Err(CertError::NotSignedBy {
            subject: cert::subject(&parsed),
            issuer: format!("any certificate of the CA bundle ({})", subjects.join("; ")),
        });
    }
    let dns_names: Vec<String> = cert::sans(&parsed)
        .iter()
        .filter_map(|n| n.strip_prefix("DNS:"))
        .map(str::to_string)
        .collect();
    if !dns_names.iter().any(|n| n == dns_name) {
        return Err(CertError::WrongSan {
            expected: format!("DNS:{dns_name}"),
            found: cert::sans(&parsed),
        });
    }
    Ok(ServerCertStatus {
        subject: cert::subject(&parsed),
        dns_names,
        not_after: cert::system_time(parsed.validity().not_after),
    })
}

/// Checks an issuer from its certificates alone, as `weft check` sees it: the first
/// certificate of `cert_pem` (then any further intermediates) is a CA within its validity at
/// `now`, each signed by the next, the last by one of `anchors`, within every CA's
/// pathLenConstraint (as [`Issuer::load`](crate::Issuer::load) checks it). Returns the
/// issuer's subject and the end of its validity.
pub fn check_issuer_cert(
    cert_pem: &str,
    anchors: &crate::TrustAnchors,
    now: SystemTime,
) -> Result<(String, SystemTime), CertError> {
    let chain: Vec<_> = pem::certs_from_pem("issuer certificate", cert_pem)?
        .into_iter()
        .filter(|c| !anchors.contains(c))
        .collect();
    let parsed = chain
        .iter()
        .map(|der| cert::parse("issuer certificate", der))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = parsed.first() else {
        return Err(CertError::Pem {
            what: "issuer certificate".to_string(),
            reason: "holds no certificate besides the trust anchors".to_string(),
        });
    };
    check_issuer_chain(&parsed, anchors, now)?;
    Ok((
        cert::subject(first),
        cert::system_time(first.validity().not_after),
    ))
}
