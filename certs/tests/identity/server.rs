//! Webhook serving certificates: a private CA, a server certificate for a Service's DNS names,
//! the checks `weft check` runs on them, and the issuer checked from its certificate alone.

use super::*;
use weft_certs::{
    CertError, ServerCredentials, certs_from_pem, check_issuer_cert, check_server_cert,
    generate_ca, generate_server_cert,
};
use x509_parser::prelude::*;

const NAMES: [&str; 2] = [
    "weft-injector.weft-system.svc",
    "weft-injector.weft-system.svc.cluster.local",
];

fn webhook_pki() -> (CaFiles, CaFiles) {
    let ca = generate_ca("weft-injector-ca", YEAR).unwrap();
    let signer = Ca::from_pem(&ca.cert_pem, &ca.key_pem).unwrap();
    let server = generate_server_cert(&signer, &NAMES, 90 * DAY).unwrap();
    (ca, server)
}

#[test]
fn server_cert_names_the_service_and_is_no_ca() {
    let (ca, server) = webhook_pki();
    let der = &certs_from_pem("server", &server.cert_pem).unwrap()[0];
    let (_, x) = X509Certificate::from_der(der).unwrap();
    assert!(!x.is_ca());
    assert_eq!(x.subject().to_string(), format!("CN={}", NAMES[0]));
    let eku = x.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    let status =
        check_server_cert(&server.cert_pem, &ca.cert_pem, NAMES[1], SystemTime::now()).unwrap();
    assert_eq!(status.dns_names, NAMES);
    let life = secs(status.not_after) - secs(SystemTime::now());
    assert!((89 * 86_400..=90 * 86_400).contains(&life), "{life}");

    let credentials = ServerCredentials::from_pem(&server.cert_pem, &server.key_pem).unwrap();
    assert_eq!(credentials.chain.len(), 1);
}

#[test]
fn server_cert_checks_fail_with_what_was_wrong() {
    let (ca, server) = webhook_pki();
    let (other_ca, other) = webhook_pki();
    let now = SystemTime::now();
    let err = check_server_cert(&server.cert_pem, &other_ca.cert_pem, NAMES[0], now).unwrap_err();
    assert!(matches!(err, CertError::NotSignedBy { .. }), "{err}");
    let err = check_server_cert(&server.cert_pem, &ca.cert_pem, "web.shop.svc", now).unwrap_err();
    assert!(err.to_string().contains("DNS:web.shop.svc"), "{err}");
    let later = now + 91 * DAY;
    let err = check_server_cert(&server.cert_pem, &ca.cert_pem, NAMES[0], later).unwrap_err();
    assert!(matches!(err, CertError::Expired { .. }), "{err}");

    let err = ServerCredentials::from_pem(&server.cert_pem, &other.key_pem).unwrap_err();
    assert!(matches!(err, CertError::KeyMismatch { .. }), "{err}");
    let err = ServerCredentials::from_pem("not pem", &server.key_pem).unwrap_err();
    assert!(err.to_string().contains("server certificate"), "{err}");
    assert!(
        generate_server_cert(&Ca::from_pem(&ca.cert_pem, &ca.key_pem).unwrap(), &[], DAY).is_err()
    );
}

#[test]
fn server_cert_never_outlives_its_ca() {
    let ca = generate_ca("short-ca", DAY).unwrap();
    let signer = Ca::from_pem(&ca.cert_pem, &ca.key_pem).unwrap();
    let server = generate_server_cert(&signer, &NAMES, YEAR).unwrap();
    let status =
        check_server_cert(&server.cert_pem, &ca.cert_pem, NAMES[0], SystemTime::now()).unwrap();
    assert!(status.not_after <= signer.not_after());
}

#[test]
fn issuer_is_checked_from_its_certificate_alone() {
    let pki = pki();
    let now = SystemTime::now();
    let (subject, not_after) =
        check_issuer_cert(&pki.issuer_files.cert_pem, &pki.anchors, now).unwrap();
    assert_eq!(subject, "CN=issuer.cluster.local");
    assert_eq!(not_after, pki.issuer.not_after());

    let other = pki_with(YEAR, DAY);
    let err = check_issuer_cert(&other.issuer_files.cert_pem, &pki.anchors, now).unwrap_err();
    assert!(matches!(err, CertError::NotSignedBy { .. }), "{err}");
    let err = check_issuer_cert(&pki.root.cert_pem, &pki.anchors, now).unwrap_err();
    assert!(err.to_string().contains("no certificate besides"), "{err}");
    let err =
        check_issuer_cert(&pki.issuer_files.cert_pem, &pki.anchors, now + 2 * YEAR).unwrap_err();
    assert!(matches!(err, CertError::Expired { .. }), "{err}");

    // An issuer below the standard one (pathlen 0) is refused, as the controller refuses it.
    let issuer_ca = Ca::from_pem(&pki.issuer_files.cert_pem, &pki.issuer_files.key_pem).unwrap();
    let too_deep = generate_issuer(&issuer_ca, "cluster.local", DAY).unwrap();
    let bundle = format!("{}{}", too_deep.cert_pem, pki.issuer_files.cert_pem);
    let err = check_issuer_cert(&bundle, &pki.anchors, now).unwrap_err();
    assert!(
        matches!(
            err,
            CertError::PathLen {
                path_len: 0,
                below: 1,
                ..
            }
        ),
        "{err:?}"
    );
}
