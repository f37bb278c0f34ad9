//! A workload's own key and the CSR it sends to the controller.

use crate::{CertError, ServiceAccountIdentity, issuer::identity_sans};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A workload's private key, made in memory (ECDSA P-256); it never leaves the process.
pub struct LeafKey {
    key: KeyPair,
}

impl std::fmt::Debug for LeafKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafKey").finish_non_exhaustive()
    }
}

impl LeafKey {
    /// Makes a new ECDSA P-256 key.
    pub fn generate() -> Result<LeafKey, CertError> {
        Ok(LeafKey {
            key: KeyPair::generate()?,
        })
    }

    /// A PKCS#10 CSR (DER) naming `identity` (DNS SAN + SPIFFE URI SAN, CN = DNS name).
    pub fn csr_der(&self, identity: &ServiceAccountIdentity) -> Result<Vec<u8>, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, identity.dns_name());
        params.subject_alt_names = identity_sans(identity)?;
        Ok(params.serialize_request(&self.key)?.der().to_vec())
    }

    /// The key as PKCS#8 DER, for rustls.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }

    /// The public key as a DER SubjectPublicKeyInfo, to match against a certificate.
    pub fn public_key_der(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&self.key)
    }
}
