//! `inspect` reports what a person debugging trust needs to see.

use super::*;
use rcgen::{CertificateParams, KeyPair, date_time_ymd};
use weft_certs::{CertError, chain_to_pem, inspect};

#[test]
fn reports_a_chain() {
    let pki = pki();
    let (_, csr) = csr_for(&web());
    let leaf = pki
        .issuer
        .certify(&csr, &web(), DAY, SystemTime::now())
        .unwrap();
    let text = format!("{}{}", chain_to_pem(&leaf.chain), pki.root.cert_pem);
    let report = inspect(&text).unwrap();

    for want in [
        "block 1 of 3 (CERTIFICATE)",
        "Subject:      CN=web.shop.serviceaccount.identity.cluster.local",
        "Issuer:       CN=issuer.cluster.local",
        "leaf (not a CA)",
        "serverAuth, clientAuth",
        "DNS:web.shop.serviceaccount.identity.cluster.local, URI:spiffe://cluster.local/ns/shop/sa/web",
        "Identity:     web.shop.serviceaccount.identity.cluster.local (spiffe://cluster.local/ns/shop/sa/web)",
        "CA (pathlen 0)",
        "Subject:      CN=root.cluster.local",
        "CA (pathlen unconstrained)",
        "Identity:     none",
        "Key:          ECDSA P-256",
        "Status:       valid, ",
    ] {
        assert!(report.contains(want), "{want:?} missing from:\n{report}");
    }
    assert_eq!(report.matches("SHA-256:").count(), 3);
    assert!(!report.contains("EXPIRED"));
}

#[test]
fn reports_expiry_requests_and_keys_without_secrets() {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["old.example".to_string()]).unwrap();
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2001, 1, 1);
    let old = params.self_signed(&key).unwrap();
    let report = inspect(&old.pem()).unwrap();
    assert!(report.contains("EXPIRED"), "{report}");
    assert!(report.contains("2001-01-01T00:00:00Z"), "{report}");

    let mut params = CertificateParams::new(vec!["new.example".to_string()]).unwrap();
    params.not_before = date_time_ymd(2999, 1, 1);
    let report = inspect(&params.self_signed(&key).unwrap().pem()).unwrap();
    assert!(report.contains("not yet valid"), "{report}");

    let (_, csr) = csr_for(&web());
    let report = inspect(&pem_block("CERTIFICATE REQUEST", &csr)).unwrap();
    assert!(report.contains("Signature:    valid"), "{report}");
    assert!(report.contains("Identity:     web.shop"), "{report}");

    let mut tampered = csr.clone();
    let at = tampered.len() - 5;
    tampered[at] ^= 0x55;
    let report = inspect(&pem_block("CERTIFICATE REQUEST", &tampered)).unwrap();
    assert!(report.contains("Signature:    INVALID"), "{report}");

    // A key is described by its public half: the fingerprint matches its certificate's.
    let pki = pki();
    let key_report = inspect(&pki.root.key_pem).unwrap();
    let cert_report = inspect(&pki.root.cert_pem).unwrap();
    let public = |r: &str| {
        r.lines()
            .find(|l| l.contains("Public key:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(public(&key_report), public(&cert_report));
    let secret_b64: String = pki.root.key_pem.lines().nth(1).unwrap().to_string();
    assert!(!key_report.contains(&secret_b64));
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(inspect(""), Err(CertError::Pem { .. })));
    assert!(matches!(inspect("not pem"), Err(CertError::Pem { .. })));
    let err = inspect(&pem_block("CERTIFICATE", b"junk")).unwrap_err();
    assert!(matches!(err, CertError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("block 1 of 1"), "{err}");
}
