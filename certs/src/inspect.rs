//! A human-readable report of the certificates, CSRs and keys in a PEM text, for
//! `weft certs inspect` and for anyone debugging a trust problem.

use crate::{
    CertError,
    cert::{self, KeyAlgorithm},
    pem,
};
use std::{
    fmt::Write,
    time::{Duration, SystemTime},
};
use x509_parser::{
    certificate::X509Certificate, certification_request::X509CertificationRequest,
    extensions::ParsedExtension, prelude::FromDer,
};

/// A human-readable report of every certificate (or the CSR/key) in a PEM text: subject,
/// issuer, serial, validity (and "EXPIRED"/"not yet valid"), CA or leaf (pathlen), key
/// algorithm, SANs, SHA-256 fingerprint, the mesh identity if any.
///
/// Private keys are described by algorithm and public key fingerprint only.
pub fn inspect(pem: &str) -> Result<String, CertError> {
    let blocks = pem::blocks("PEM text", pem)?;
    let now = SystemTime::now();
    let mut out = String::new();
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let what = format!("block {} of {} ({})", i + 1, blocks.len(), block.tag());
        let report = match block.tag() {
            "CERTIFICATE" => certificate(&what, block.contents(), now)?,
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => request(&what, block.contents())?,
            "PRIVATE KEY" => private_key(&what, block.contents())?,
            "EC PRIVATE KEY" | "RSA PRIVATE KEY" => format!(
                "{what}\n  not a PKCS#8 key; Weft reads -----BEGIN PRIVATE KEY----- (convert with `openssl pkcs8 -topk8 -nocrypt`)\n"
            ),
            _ => format!("{what}\n  not a certificate, request or key; skipped\n"),
        };
        out.push_str(&report);
    }
    Ok(out)
}

/// One line of a report: a padded label and its value.
fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "  {:<14}{value}", format!("{label}:"));
}

fn certificate(what: &str, der: &[u8], now: SystemTime) -> Result<String, CertError> {
    let x = cert::parse(what, der)?;
    let mut out = format!("{what}\n");
    line(&mut out, "Subject", x.subject());
    line(&mut out, "Issuer", x.issuer());
    line(&mut out, "Serial", x.raw_serial_as_string());
    let not_before = cert::system_time(x.validity().not_before);
    let not_after = cert::system_time(x.validity().not_after);
    line(&mut out, "Not before", cert::rfc3339(not_before));
    line(&mut out, "Not after", cert::rfc3339(not_after));
    line(&mut out, "Status", status(not_before, not_after, now));
    line(&mut out, "Type", kind(&x));
    if let Ok(Some(ku)) = x.key_usage() {
        line(&mut out, "Key usage", ku.value);
    }
    if let Ok(Some(eku)) = x.extended_key_usage() {
        let e = eku.value;
        let names = [
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.any, "any"),
            (e.code_signing, "codeSigning"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "ocspSigning"),
        ];
        let mut list: Vec<String> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| n.to_string())
            .collect();
        list.extend(e.other.iter().map(|oid| oid.to_string()));
        line(&mut out, "Ext key usage", list.join(", "));
    }
    line(&mut out, "Key", KeyAlgorithm::of(x.public_key()).name());
    line(
        &mut out,
        "Public key",
        format!("SHA-256 {}", cert::fingerprint(x.public_key().raw)),
    );
    names_and_identity(&mut out, &cert::sans(&x));
    line(&mut out, "SHA-256", cert::fingerprint(der));
    Ok(out)
}

/// Whether `now` is inside the validity, and how far from its ends.
fn status(not_before: SystemTime, not_after: SystemTime, now: SystemTime) -> String {
    if let Ok(ago) = now.duration_since(not_after) {
        format!("EXPIRED {} ago", human(ago))
    } else if let Ok(until) = not_before.duration_since(now) {
        format!("not yet valid, starts in {}", human(until))
    } else {
        let left = not_after.duration_since(now).unwrap_or_default();
        format!("valid, {} left", human(left))
    }
}

/// A duration as days, hours and minutes.
fn human(d: Duration) -> String {
    let m = d.as_secs() / 60;
    let (days, hours, minutes) = (m / (24 * 60), m / 60 % 24, m % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m {}s", d.as_secs() % 60)
    }
}

/// "CA (pathlen 0)", "CA (pathlen unconstrained)" or "leaf (not a CA)".
fn kind(x: &X509Certificate<'_>) -> String {
    match x.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => match bc.value.path_len_constraint {
            Some(n) => format!("CA (pathlen {n})"),
            None => "CA (pathlen unconstrained)".to_string(),
        },
        _ => "leaf (not a CA)".to_string(),
    }
}

/// The SANs line and the mesh identity they name, if any.
fn names_and_identity(out: &mut String, sans: &[String]) {
    line(
        out,
        "SANs",
        if sans.is_empty() {
            "none".to_string()
        } else {
            sans.join(", ")
        },
    );
    let identity = sans
        .iter()
        .filter_map(|n| n.strip_prefix("DNS:"))
        .find_map(|dns| crate::ServiceAccountIdentity::parse_dns(dns).ok());
    match identity {
        Some(id) => line(out, "Identity", format!("{id} ({})", id.spiffe_uri())),
        None => line(
            out,
            "Identity",
            "none (no <sa>.<ns>.serviceaccount.identity.<td> name)",
        ),
    }
}

fn request(what: &str, der: &[u8]) -> Result<String, CertError> {
    let (_, csr) = X509CertificationRequest::from_der(der).map_err(|e| CertError::Parse {
        what: what.to_string(),
        reason: format!("not a PKCS#10 request: {e}"),
    })?;
    let info = &csr.certification_request_info;
    let mut out = format!("{what}\n");
    line(&mut out, "Subject", &info.subject);
    line(&mut out, "Key", KeyAlgorithm::of(&info.subject_pki).name());
    let signature = match csr.verify_signature() {
        Ok(()) => "valid (self-signed by its key)".to_string(),
        Err(e) => format!("INVALID ({e})"),
    };
    line(&mut out, "Signature", signature);
    let sans: Vec<String> = csr
        .requested_extensions()
        .into_iter()
        .flatten()
        .filter_map(|ext| match ext {
            ParsedExtension::SubjectAlternativeName(san) => Some(&san.general_names),
            _ => None,
        })
        .flatten()
        .map(cert::general_name)
        .collect();
    names_and_identity(&mut out, &sans);
    Ok(out)
}

fn private_key(what: &str, der: &[u8]) -> Result<String, CertError> {
    let key = rcgen::KeyPair::try_from(der).map_err(|e| CertError::Parse {
        what: what.to_string(),
        reason: format!("not a PKCS#8 ECDSA P-256, ECDSA P-384, Ed25519 or RSA key ({e})"),
    })?;
    let alg = key.algorithm();
    let name = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        "ECDSA P-256"
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        "ECDSA P-384"
    } else if alg == &rcgen::PKCS_ED25519 {
        "Ed25519"
    } else {
        "RSA"
    };
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
    let mut out = format!("{what}\n");
    line(&mut out, "Key", name);
    line(
        &mut out,
        "Public key",
        format!("SHA-256 {}", cert::fingerprint(&spki)),
    );
    Ok(out)
}
