//! Every bad input gets its own error, and its message says what and where.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, date_time_ymd};
use weft_certs::{CertError, certs_from_pem, identity_of};

/// Asserts `result` failed with `pattern`, and that the message mentions each of `words`.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(, $word:expr)* $(,)?) => {{
        let err = $result.err().expect("expected an error");
        assert!(matches!(err, $pattern), "unexpected error: {err:?}");
        #[allow(unused_variables)]
        let msg = err.to_string();
        $( assert!(msg.contains($word), "{msg:?} does not mention {:?}", $word); )*
    }};
}

#[test]
fn bad_pem_says_what_was_found() {
    let pki = pki();
    assert_err!(
        certs_from_pem("ca.crt", &pki.root.key_pem),
        CertError::Pem { .. },
        "ca.crt",
        "found PRIVATE KEY instead"
    );
    assert_err!(
        certs_from_pem("ca.crt", "hello, world\n"),
        CertError::Pem { .. },
        "ca.crt",
        "no PEM block"
    );
    assert_err!(
        certs_from_pem("ca.crt", " \n"),
        CertError::Pem { .. },
        "ca.crt",
        "empty"
    );
    assert_err!(
        certs_from_pem(
            "ca.crt",
            "-----BEGIN CERTIFICATE-----\n!!!*\n-----END CERTIFICATE-----\n"
        ),
        CertError::Pem { .. },
        "ca.crt",
        "malformed"
    );
    // A CERTIFICATE block that holds no certificate.
    assert_err!(
        certs_from_pem("ca.crt", &pem_block("CERTIFICATE", b"not der")),
        CertError::Parse { .. },
        "ca.crt"
    );
    // Keys: a certificate where the key belongs, and a SEC1 key.
    assert_err!(
        Ca::from_pem(&pki.root.cert_pem, &pki.root.cert_pem),
        CertError::Pem { .. },
        "CA private key",
        "found CERTIFICATE instead"
    );
    assert_err!(
        Ca::from_pem(&pki.root.cert_pem, &pem_block("EC PRIVATE KEY", b"sec1")),
        CertError::Pem { .. },
        "openssl pkcs8 -topk8"
    );
    assert_err!(
        Ca::from_pem(&pki.root.cert_pem, &pem_block("PRIVATE KEY", b"junk")),
        CertError::Parse { .. },
        "CA private key"
    );
}

#[test]
fn a_key_that_does_not_match_its_certificate() {
    let pki = pki();
    assert_err!(
        Ca::from_pem(&pki.root.cert_pem, &pki.issuer_files.key_pem),
        CertError::KeyMismatch { .. },
        "CN=root.cluster.local"
    );
    assert_err!(
        Issuer::load(&pki.issuer_files.cert_pem, &pki.root.key_pem, &pki.anchors),
        CertError::KeyMismatch { .. },
        "CN=issuer.cluster.local"
    );
}

/// An issuer with `params`' validity and CA flag, signed by `pki`'s root: (cert PEM, key PEM).
fn signed_by_root(pki: &Pki, params: &CertificateParams) -> (String, String) {
    let root_key = KeyPair::from_pem(&pki.root.key_pem).unwrap();
    let root = rcgen::Issuer::from_ca_cert_pem(&pki.root.cert_pem, root_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &root).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
}

#[test]
fn an_expired_issuer() {
    let pki = pki();
    let mut params = ca_params("old-issuer");
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2001, 1, 1);
    let (cert, key) = signed_by_root(&pki, &params);
    assert_err!(
        Issuer::load(&cert, &key, &pki.anchors),
        CertError::Expired { .. },
        "old-issuer",
        "2001-01-01"
    );

    let mut params = ca_params("future-issuer");
    params.not_before = date_time_ymd(2999, 1, 1);
    let (cert, key) = signed_by_root(&pki, &params);
    assert_err!(
        Issuer::load(&cert, &key, &pki.anchors),
        CertError::NotYetValid { .. },
        "future-issuer"
    );

    // A loaded issuer refuses to sign once its validity has passed.
    let (_, csr) = csr_for(&web());
    let later = pki.issuer.not_after() + HOUR;
    assert_err!(
        pki.issuer.certify(&csr, &web(), DAY, later),
        CertError::Expired { .. },
        "issuer.cluster.local"
    );
}

#[test]
fn a_leaf_used_as_a_ca() {
    let pki = pki();
    let (key, csr) = csr_for(&web());
    let leaf = pki
        .issuer
        .certify(&csr, &web(), DAY, SystemTime::now())
        .unwrap();
    let cert_pem = weft_certs::chain_to_pem(&leaf.chain);
    let key_pem = pem_block("PRIVATE KEY", key.private_key_der().secret_der());
    let subject = "web.shop.serviceaccount.identity.cluster.local";
    assert_err!(
        Ca::from_pem(&cert_pem, &key_pem),
        CertError::NotCa { .. },
        subject
    );
    assert_err!(
        Issuer::load(&cert_pem, &key_pem, &pki.anchors),
        CertError::NotCa { .. },
        subject
    );
    assert_err!(
        TrustAnchors::from_pem(&cert_pem),
        CertError::NotCa { .. },
        subject
    );

    // Not a CA by default in rcgen either: no basicConstraints at all.
    let (cert, key) = signed_by_root(
        &pki,
        &CertificateParams::new(vec!["x.example".to_string()]).unwrap(),
    );
    assert_err!(
        Issuer::load(&cert, &key, &pki.anchors),
        CertError::NotCa { .. }
    );
}

#[test]
fn an_issuer_not_signed_by_the_anchors() {
    let pki = pki();
    let other = pki_with(YEAR, DAY);
    assert_err!(
        Issuer::load(
            &other.issuer_files.cert_pem,
            &other.issuer_files.key_pem,
            &pki.anchors
        ),
        CertError::NotSignedBy { .. },
        "CN=issuer.cluster.local",
        "trust anchor"
    );
    // Trusting both roots is enough.
    let both =
        TrustAnchors::from_pem(&format!("{}{}", pki.root.cert_pem, other.root.cert_pem)).unwrap();
    assert_eq!(both.certs().len(), 2);
    Issuer::load(
        &other.issuer_files.cert_pem,
        &other.issuer_files.key_pem,
        &both,
    )
    .unwrap();
    // The root alone is not an issuer.
    assert_err!(
        Issuer::load(&pki.root.cert_pem, &pki.root.key_pem, &pki.anchors),
        CertError::Pem { .. },
        "intermediate"
    );
    assert_err!(
        TrustAnchors::from_pem(&pki.root.key_pem),
        CertError::Pem { .. },
        "trust anchors"
    );
}

#[test]
fn csrs_for_other_names() {
    let pki = pki();
    let now = SystemTime::now();
    let api = ServiceAccountIdentity::new("api", "shop", "cluster.local").unwrap();
    let (_, csr) = csr_for(&api);
    assert_err!(
        pki.issuer.certify(&csr, &web(), DAY, now),
        CertError::WrongSan { .. },
        "DNS:api.shop.serviceaccount.identity.cluster.local",
        "DNS:web.shop.serviceaccount.identity.cluster.local"
    );

    let key = KeyPair::generate().unwrap();
    let extra = vec![web().dns_name(), "evil.example.com".to_string()];
    let csr = CertificateParams::new(extra)
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    assert_err!(
        pki.issuer.certify(csr.der(), &web(), DAY, now),
        CertError::WrongSan { .. },
        "DNS:evil.example.com"
    );

    // No names at all.
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .unwrap();
    assert_err!(
        pki.issuer.certify(csr.der(), &web(), DAY, now),
        CertError::WrongSan { .. }
    );
}

#[test]
fn tampered_and_garbage_csrs() {
    let pki = pki();
    let now = SystemTime::now();
    let (_, csr) = csr_for(&web());
    // Change one byte of the subject's common name: still a CSR, but the signature breaks.
    let cn = b"web.shop.serviceaccount";
    let at = csr.windows(cn.len()).position(|w| w == cn).unwrap();
    let mut tampered = csr.clone();
    tampered[at] = b'x';
    assert_err!(
        pki.issuer.certify(&tampered, &web(), DAY, now),
        CertError::Csr { .. },
        "signature"
    );

    assert_err!(
        pki.issuer.certify(b"garbage", &web(), DAY, now),
        CertError::Csr { .. },
        "PKCS#10"
    );
    assert_err!(
        pki.issuer.certify(&[], &web(), DAY, now),
        CertError::Csr { .. }
    );
}

#[test]
fn an_rsa_csr_is_refused() {
    // Made with `openssl req -newkey rsa:2048` (ring cannot make RSA keys), for web.shop.
    let text = include_str!("../data/rsa-web.csr.pem");
    let der = pem::parse(text).unwrap().into_contents();
    let pki = pki();
    assert_err!(
        pki.issuer.certify(&der, &web(), DAY, SystemTime::now()),
        CertError::UnsupportedKey { .. },
        "RSA 2048",
        "ECDSA P-256"
    );
}

#[test]
fn identity_of_a_certificate_without_one() {
    let pki = pki();
    assert_err!(
        identity_of(&pki.anchors.certs()[0]),
        CertError::NoIdentity { .. },
        "CN=root.cluster.local"
    );
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["web.shop.svc.cluster.local".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    assert_err!(
        identity_of(cert.der()),
        CertError::NoIdentity { .. },
        "DNS:web.shop.svc.cluster.local"
    );
    assert_err!(identity_of(b"junk"), CertError::Parse { .. });
}

#[test]
fn bad_trust_domains_are_refused() {
    assert!(matches!(
        generate_root("Cluster.Local", YEAR),
        Err(CertError::Name(weft_certs::NameError::TrustDomain(_)))
    ));
}
