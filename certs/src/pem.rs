//! PEM text in and out: certificate blocks, PKCS#8 private keys, and errors that say which
//! block was found when another was expected.

use crate::{CertError, cert};
use rcgen::KeyPair;
use rustls_pki_types::CertificateDer;

/// The label of certificate blocks.
const CERTIFICATE: &str = "CERTIFICATE";
/// The label of PKCS#8 private key blocks.
const PRIVATE_KEY: &str = "PRIVATE KEY";

/// All PEM blocks of `text`; an error when there is none or one does not decode.
pub(crate) fn blocks(what: &str, text: &str) -> Result<Vec<::pem::Pem>, CertError> {
    let blocks = ::pem::parse_many(text).map_err(|e| CertError::Pem {
        what: what.to_string(),
        reason: format!("malformed PEM: {e}"),
    })?;
    if blocks.is_empty() {
        let reason = if text.trim().is_empty() {
            "is empty; expected PEM text (-----BEGIN ...-----)".to_string()
        } else {
            "no PEM block found; expected text with -----BEGIN ...----- and -----END ...----- lines"
                .to_string()
        };
        return Err(CertError::Pem {
            what: what.to_string(),
            reason,
        });
    }
    Ok(blocks)
}

/// The labels of `blocks`, for messages.
fn labels(blocks: &[::pem::Pem]) -> String {
    blocks
        .iter()
        .map(|b| b.tag().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// All CERTIFICATE blocks of a PEM text (error names `what` and says what was found instead).
///
/// Other blocks are skipped; each certificate must parse as X.509.
pub fn certs_from_pem(what: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let blocks = blocks(what, pem)?;
    let certs: Vec<CertificateDer<'static>> = blocks
        .iter()
        .filter(|b| b.tag() == CERTIFICATE)
        .map(|b| CertificateDer::from(b.contents().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(CertError::Pem {
            what: what.to_string(),
            reason: format!("no CERTIFICATE block; found {} instead", labels(&blocks)),
        });
    }
    for (i, der) in certs.iter().enumerate() {
        cert::parse(
            &format!("{what} (certificate {} of {})", i + 1, certs.len()),
            der,
        )?;
    }
    Ok(certs)
}

/// The PEM text of one certificate.
pub fn cert_to_pem(der: &CertificateDer<'_>) -> String {
    let block = ::pem::Pem::new(CERTIFICATE, der.as_ref().to_vec());
    ::pem::encode_config(
        &block,
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

/// The PEM text of a chain of certificates, in order.
pub fn chain_to_pem(chain: &[CertificateDer<'_>]) -> String {
    chain.iter().map(cert_to_pem).collect()
}

/// The one PKCS#8 private key of a PEM text.
pub(crate) fn key_from_pem(what: &str, pem: &str) -> Result<KeyPair, CertError> {
    let blocks = blocks(what, pem)?;
    let mut keys = blocks.iter().filter(|b| b.tag() == PRIVATE_KEY);
    let Some(key) = keys.next() else {
        return Err(CertError::Pem {
            what: what.to_string(),
            reason: no_private_key(&blocks),
        });
    };
    if keys.next().is_some() {
        return Err(CertError::Pem {
            what: what.to_string(),
            reason: "holds more than one PRIVATE KEY block; expected exactly one".to_string(),
        });
    }
    KeyPair::try_from(key.contents()).map_err(|e| CertError::Parse {
        what: what.to_string(),
        reason: format!("not a PKCS#8 ECDSA P-256, ECDSA P-384, Ed25519 or RSA private key ({e})"),
    })
}

/// Why a text without a PKCS#8 key block was refused, naming what it held instead.
fn no_private_key(blocks: &[::pem::Pem]) -> String {
    let legacy = blocks
        .iter()
        .map(|b| b.tag())
        .find(|t| matches!(*t, "EC PRIVATE KEY" | "RSA PRIVATE KEY"));
    if let Some(label) = legacy {
        return format!(
            "found an {label} block; Weft reads PKCS#8 keys (-----BEGIN PRIVATE KEY-----), convert it with `openssl pkcs8 -topk8 -nocrypt`"
        );
    }
    if blocks.iter().any(|b| b.tag() == "ENCRYPTED PRIVATE KEY") {
        return "found an ENCRYPTED PRIVATE KEY block; Weft reads unencrypted PKCS#8 keys (-----BEGIN PRIVATE KEY-----)".to_string();
    }
    format!("no PRIVATE KEY block; found {} instead", labels(blocks))
}
