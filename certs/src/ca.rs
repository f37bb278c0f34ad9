//! Certificate authorities: making a root and an intermediate issuer (rcgen), and loading a
//! signing CA from PEM with every check a misconfigured file could fail.

use crate::{CertError, cert, name::check_trust_domain, pem};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use std::time::{Duration, SystemTime};

/// How far back certificates' validity starts, for peers whose clocks run behind.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// PEM text of a certificate (or chain) and its private key.
#[derive(Clone)]
pub struct CaFiles {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its PKCS#8 private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for CaFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFiles")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[secret]")
            .finish()
    }
}

/// A signing CA loaded from PEM: checks the cert parses, is a CA (basicConstraints CA:true),
/// is within validity now, and that the key matches the certificate's public key.
pub struct Ca {
    cert_der: CertificateDer<'static>,
    subject: String,
    not_before: SystemTime,
    not_after: SystemTime,
    signer: rcgen::Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("subject", &self.subject)
            .field("not_after", &cert::rfc3339(self.not_after))
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Loads a CA from its certificate (the first CERTIFICATE block) and PKCS#8 key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, CertError> {
        let certs = pem::certs_from_pem("CA certificate", cert_pem)?;
        let key = pem::key_from_pem("CA private key", key_pem)?;
        let first = certs.into_iter().next().ok_or_else(|| CertError::Pem {
            what: "CA certificate".to_string(),
            reason: "no CERTIFICATE block".to_string(),
        })?;
        Self::load("CA certificate", first, key, SystemTime::now())
    }

    /// Checks and keeps a CA certificate with its key.
    pub(crate) fn load(
        what: &str,
        cert_der: CertificateDer<'static>,
        key: KeyPair,
        now: SystemTime,
    ) -> Result<Ca, CertError> {
        let parsed = cert::parse(what, &cert_der)?;
        cert::check_ca(&parsed)?;
        cert::check_validity(&parsed, now)?;
        cert::check_key(&parsed, &key)?;
        let subject = cert::subject(&parsed);
        let validity = parsed.validity();
        let (not_before, not_after) = (
            cert::system_time(validity.not_before),
            cert::system_time(validity.not_after),
        );
        let signer =
            rcgen::Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| CertError::Parse {
                what: what.to_string(),
                reason: format!("cannot sign with it: {e}"),
            })?;
        Ok(Ca {
            cert_der,
            subject,
            not_before,
            not_after,
            signer,
        })
    }

    /// The CA's certificate.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The end of the CA's validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The start of the CA's validity.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// The CA's subject, as `CN=...`.
    pub fn subject(&self) -> String {
        self.subject.clone()
    }

    /// Signs a certificate for `public_key` with this CA.
    pub(crate) fn sign(
        &self,
        params: &CertificateParams,
        public_key: &impl PublicKeyData,
    ) -> Result<CertificateDer<'static>, CertError> {
        Ok(params.signed_by(public_key, &self.signer)?.into())
    }
}

/// A self-signed trust anchor (root CA), ECDSA P-256, CN "root.<trust_domain>", CA with
/// pathlen unconstrained, key usage keyCertSign+cRLSign. `lifetime` from now (backdated 60 s).
pub fn generate_root(trust_domain: &str, lifetime: Duration) -> Result<CaFiles, CertError> {
    check_trust_domain(trust_domain)?;
    self_signed(
        &format!("root.{trust_domain}"),
        BasicConstraints::Unconstrained,
        lifetime,
    )
}

/// A self-signed CA certificate named `common_name`, ECDSA P-256, valid for `lifetime` from
/// now (backdated 60 s).
pub(crate) fn self_signed(
    common_name: &str,
    constraints: BasicConstraints,
    lifetime: Duration,
) -> Result<CaFiles, CertError> {
    let now = SystemTime::now();
    let params = ca_params(common_name, constraints, now, until(now, lifetime)?)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(CaFiles {
        cert_pem: pem::cert_to_pem(cert.der()),
        key_pem: key.serialize_pem(),
    })
}

/// An intermediate issuer signed by `root` (loaded with `Ca::from_pem`), ECDSA P-256,
/// CN "issuer.<trust_domain>", CA pathlen 0. Its not_after is capped at the root's.
pub fn generate_issuer(
    root: &Ca,
    trust_domain: &str,
    lifetime: Duration,
) -> Result<CaFiles, CertError> {
    check_trust_domain(trust_domain)?;
    let now = SystemTime::now();
    let mut params = ca_params(
        &format!("issuer.{trust_domain}"),
        BasicConstraints::Constrained(0),
        now,
        until(now, lifetime)?.min(root.not_after),
    )?;
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = root.sign(&params, &key)?;
    Ok(CaFiles {
        cert_pem: pem::cert_to_pem(&cert),
        key_pem: key.serialize_pem(),
    })
}

/// `now + lifetime`, or an error when that is not a time.
pub(crate) fn until(now: SystemTime, lifetime: Duration) -> Result<SystemTime, CertError> {
    now.checked_add(lifetime)
        .ok_or_else(|| CertError::Generate(format!("lifetime {lifetime:?} is too long")))
}

/// Parameters of a CA certificate valid from `now` - [`CLOCK_SKEW`] to `not_after`.
fn ca_params(
    common_name: &str,
    constraints: BasicConstraints,
    now: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = cert::offset_time(now - CLOCK_SKEW)?;
    params.not_after = cert::offset_time(not_after)?;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// Parameters of an end-entity certificate named `common_name` and `sans`, for `ekus`, with key
/// usage digitalSignature, valid from `now` - [`CLOCK_SKEW`] to `not_after`.
pub(crate) fn leaf_params(
    common_name: &str,
    sans: Vec<SanType>,
    ekus: Vec<ExtendedKeyUsagePurpose>,
    now: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = ekus;
    params.use_authority_key_identifier_extension = true;
    params.not_before = cert::offset_time(now - CLOCK_SKEW)?;
    params.not_after = cert::offset_time(not_after)?;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// A random positive 128-bit serial number.
fn random_serial() -> Result<SerialNumber, CertError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CertError::Generate("no randomness for a serial number".to_string()))?;
    // Positive (high bit clear) and full length (next bit set), so it encodes in 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}
