//! Reading certificates (x509-parser): validity, CA flag, names, keys and signatures, each
//! check failing with the subject it was about.

use crate::{CertError, ServiceAccountIdentity};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use x509_parser::{
    certificate::X509Certificate,
    extensions::GeneralName,
    oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
        OID_SIG_ED25519,
    },
    prelude::FromDer,
    time::ASN1Time,
    x509::SubjectPublicKeyInfo,
};

/// Parses one DER certificate; `what` names it in the error.
pub(crate) fn parse<'a>(what: &str, der: &'a [u8]) -> Result<X509Certificate<'a>, CertError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Parse {
        what: what.to_string(),
        reason: format!("not an X.509 certificate: {e}"),
    })?;
    if !rest.is_empty() {
        return Err(CertError::Parse {
            what: what.to_string(),
            reason: format!("{} bytes after the certificate", rest.len()),
        });
    }
    Ok(cert)
}

/// The subject, as `CN=...`.
pub(crate) fn subject(cert: &X509Certificate<'_>) -> String {
    cert.subject().to_string()
}

/// An X.509 time as a `SystemTime`.
pub(crate) fn system_time(t: ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    match u64::try_from(secs) {
        Ok(after) => UNIX_EPOCH + Duration::from_secs(after),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    }
}

/// A `SystemTime` as a `time` date, whole seconds; an error past what X.509 can carry.
pub(crate) fn offset_time(t: SystemTime) -> Result<OffsetDateTime, CertError> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .filter(|t| (1950..=9999).contains(&t.year()))
        .ok_or_else(|| CertError::Generate(format!("time {secs} s since 1970 is out of range")))
}

/// A time in RFC 3339, for messages and reports.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    offset_time(t)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{t:?}"))
}

/// Fails unless `now` is within the certificate's validity.
pub(crate) fn check_validity(cert: &X509Certificate<'_>, now: SystemTime) -> Result<(), CertError> {
    let validity = cert.validity();
    let (not_before, not_after) = (
        system_time(validity.not_before),
        system_time(validity.not_after),
    );
    if now > not_after {
        return Err(CertError::Expired {
            subject: subject(cert),
            not_after: rfc3339(not_after),
        });
    }
    if now < not_before {
        return Err(CertError::NotYetValid {
            subject: subject(cert),
            not_before: rfc3339(not_before),
        });
    }
    Ok(())
}

/// Fails unless the certificate has basicConstraints CA:true.
pub(crate) fn check_ca(cert: &X509Certificate<'_>) -> Result<(), CertError> {
    if cert.is_ca() {
        Ok(())
    } else {
        Err(CertError::NotCa {
            subject: subject(cert),
        })
    }
}

/// Fails if the CA's pathLenConstraint forbids `below` intermediate CAs under it.
pub(crate) fn check_path_len(cert: &X509Certificate<'_>, below: usize) -> Result<(), CertError> {
    let limit = match cert.basic_constraints() {
        Ok(Some(bc)) => bc.value.path_len_constraint,
        _ => None,
    };
    match limit {
        Some(path_len) if usize::try_from(path_len).is_ok_and(|l| l < below) => {
            Err(CertError::PathLen {
                subject: subject(cert),
                path_len,
                below,
            })
        }
        _ => Ok(()),
    }
}

/// Fails unless `key` is the key of `cert` (its public key is the certificate's).
pub(crate) fn check_key(
    cert: &X509Certificate<'_>,
    key: &impl rcgen::PublicKeyData,
) -> Result<(), CertError> {
    if key.der_bytes() == cert.public_key().subject_public_key.data.as_ref() {
        Ok(())
    } else {
        Err(CertError::KeyMismatch {
            cert_subject: subject(cert),
        })
    }
}

/// Fails unless `cert`'s signature verifies with `issuer`'s public key.
pub(crate) fn check_signed_by(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), CertError> {
    cert.verify_signature(Some(issuer.public_key()))
        .map_err(|_| CertError::NotSignedBy {
            subject: subject(cert),
            issuer: subject(issuer),
        })
}

/// A subject alternative name as `DNS:...`, `URI:...`, `IP:...` or the parser's form.
pub(crate) fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(s) => format!("DNS:{s}"),
        GeneralName::URI(s) => format!("URI:{s}"),
        GeneralName::RFC822Name(s) => format!("email:{s}"),
        GeneralName::IPAddress(b) => match <[u8; 4]>::try_from(*b) {
            Ok(v4) => format!("IP:{}", std::net::Ipv4Addr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*b) {
                Ok(v6) => format!("IP:{}", std::net::Ipv6Addr::from(v6)),
                Err(_) => name.to_string(),
            },
        },
        other => other.to_string(),
    }
}

/// The certificate's subject alternative names, formatted by [`general_name`].
pub(crate) fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().map(general_name).collect(),
        _ => Vec::new(),
    }
}

/// The mesh identity a certificate names: its DNS SAN that parses as a ServiceAccountIdentity.
pub fn identity_of(cert_der: &[u8]) -> Result<ServiceAccountIdentity, CertError> {
    let cert = parse("certificate", cert_der)?;
    let found = sans(&cert);
    found
        .iter()
        .filter_map(|n| n.strip_prefix("DNS:"))
        .find_map(|dns| ServiceAccountIdentity::parse_dns(dns).ok())
        .ok_or_else(|| CertError::NoIdentity {
            subject: subject(&cert),
            found,
        })
}

/// The subject of a DER certificate, as `CN=...`.
pub fn subject_of(cert_der: &[u8]) -> Result<String, CertError> {
    Ok(subject(&parse("certificate", cert_der)?))
}

/// Validity end of a DER certificate.
pub fn not_after(cert_der: &[u8]) -> Result<SystemTime, CertError> {
    let cert = parse("certificate", cert_der)?;
    Ok(system_time(cert.validity().not_after))
}

/// The algorithm of a public key, as far as Weft cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    /// Anything else, described for messages.
    Other(String),
}

impl KeyAlgorithm {
    /// Classifies a SubjectPublicKeyInfo.
    pub(crate) fn of(spki: &SubjectPublicKeyInfo<'_>) -> Self {
        let alg = &spki.algorithm;
        if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == OID_EC_P256 => Self::EcdsaP256,
                Some(c) if c == OID_NIST_EC_P384 => Self::EcdsaP384,
                Some(c) => Self::Other(format!("ECDSA on curve {c}")),
                None => Self::Other("ECDSA without a named curve".to_string()),
            }
        } else if alg.algorithm == OID_SIG_ED25519 {
            Self::Ed25519
        } else if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
            let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
            Self::Other(format!("RSA {bits} bits"))
        } else {
            Self::Other(format!("OID {}", alg.algorithm))
        }
    }

    /// A name for reports and errors.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::EcdsaP256 => "ECDSA P-256".to_string(),
            Self::EcdsaP384 => "ECDSA P-384".to_string(),
            Self::Ed25519 => "Ed25519".to_string(),
            Self::Other(name) => name.clone(),
        }
    }
}

/// SHA-256 of DER bytes, as colon-separated hex.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
