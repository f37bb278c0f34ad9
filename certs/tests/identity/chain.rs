//! The happy path: root → issuer → leaf, through PEM, checked with x509-parser.

use super::*;
use weft_certs::{cert_to_pem, certs_from_pem, identity_of, not_after};
use x509_parser::{extensions::GeneralName, prelude::*};

#[test]
fn root_issuer_leaf_round_trip_through_pem() {
    let pki = pki();
    let (key, csr) = csr_for(&web());
    let now = SystemTime::now();
    let leaf = pki.issuer.certify(&csr, &web(), DAY, now).unwrap();

    // Leaf first, then the issuer; never the root.
    assert_eq!(leaf.chain.len(), 2);
    let root_der = &pki.anchors.certs()[0];
    assert!(leaf.chain.iter().all(|c| c != root_der));
    assert_eq!(pki.issuer.chain(), &leaf.chain[1..]);

    // Every certificate survives PEM both ways.
    let text: String = leaf.chain.iter().map(cert_to_pem).collect();
    assert_eq!(certs_from_pem("chain", &text).unwrap(), leaf.chain);

    let (_, leaf_x) = X509Certificate::from_der(&leaf.chain[0]).unwrap();
    let (_, issuer_x) = X509Certificate::from_der(&leaf.chain[1]).unwrap();
    let (_, root_x) = X509Certificate::from_der(root_der).unwrap();

    // Signatures: leaf by issuer, issuer by root, root by itself; names chain byte for byte.
    leaf_x
        .verify_signature(Some(issuer_x.public_key()))
        .unwrap();
    issuer_x
        .verify_signature(Some(root_x.public_key()))
        .unwrap();
    root_x.verify_signature(None).unwrap();
    assert!(leaf_x.verify_signature(Some(root_x.public_key())).is_err());
    assert_eq!(leaf_x.issuer().as_raw(), issuer_x.subject().as_raw());
    assert_eq!(issuer_x.issuer().as_raw(), root_x.subject().as_raw());

    // The leaf's key is the workload's.
    assert_eq!(leaf_x.public_key().raw, key.public_key_der());
    assert!(matches!(
        key.private_key_der(),
        weft_certs::PrivateKeyDer::Pkcs8(_)
    ));

    // Validity: backdated 60 s, `lifetime` long.
    assert_eq!(
        secs(
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(leaf_x.validity().not_before.timestamp() as u64)
        ),
        secs(now) - 60
    );
    assert_eq!(secs(leaf.not_after), secs(now) + DAY.as_secs());
    assert_eq!(not_after(&leaf.chain[0]).unwrap(), leaf.not_after);

    assert_eq!(identity_of(&leaf.chain[0]).unwrap(), web());
}

#[test]
fn leaf_names_the_identity_and_is_not_a_ca() {
    let pki = pki();
    let (_, csr) = csr_for(&web());
    let leaf = pki
        .issuer
        .certify(&csr, &web(), DAY, SystemTime::now())
        .unwrap();
    let (_, x) = X509Certificate::from_der(&leaf.chain[0]).unwrap();

    let sans = &x
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert_eq!(
        sans,
        &vec![
            GeneralName::DNSName("web.shop.serviceaccount.identity.cluster.local"),
            GeneralName::URI("spiffe://cluster.local/ns/shop/sa/web"),
        ]
    );
    let cn: Vec<_> = x
        .subject()
        .iter_common_name()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cn, ["web.shop.serviceaccount.identity.cluster.local"]);

    assert!(!x.is_ca());
    let bc = x.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca);
    let ku = x.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    let eku = x.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth && !eku.any);

    // Two leaves for one identity get different serials.
    let (_, csr2) = csr_for(&web());
    let leaf2 = pki
        .issuer
        .certify(&csr2, &web(), DAY, SystemTime::now())
        .unwrap();
    let (_, x2) = X509Certificate::from_der(&leaf2.chain[0]).unwrap();
    assert_ne!(x.raw_serial(), x2.raw_serial());
}

#[test]
fn root_and_issuer_follow_the_design() {
    let pki = pki();
    let (_, root) = X509Certificate::from_der(&pki.anchors.certs()[0]).unwrap();
    let (_, issuer) = X509Certificate::from_der(&pki.issuer.chain()[0]).unwrap();

    assert_eq!(root.subject().to_string(), "CN=root.cluster.local");
    assert_eq!(
        root.basic_constraints()
            .unwrap()
            .unwrap()
            .value
            .path_len_constraint,
        None
    );
    assert!(root.is_ca());
    let ku = root.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());

    assert_eq!(issuer.subject().to_string(), "CN=issuer.cluster.local");
    let bc = issuer.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));

    let ca = Ca::from_pem(&pki.issuer_files.cert_pem, &pki.issuer_files.key_pem).unwrap();
    assert_eq!(ca.subject(), "CN=issuer.cluster.local");
    assert_eq!(ca.cert_der(), &pki.issuer.chain()[0]);
    assert_eq!(ca.not_after(), pki.issuer.not_after());
}

#[test]
fn lifetimes_are_capped_by_the_signer() {
    // The issuer cannot outlive the root.
    let pki = pki_with(2 * HOUR, YEAR);
    let root = Ca::from_pem(&pki.root.cert_pem, &pki.root.key_pem).unwrap();
    assert_eq!(pki.issuer.not_after(), root.not_after());

    // A leaf cannot outlive the issuer.
    let (_, csr) = csr_for(&web());
    let leaf = pki
        .issuer
        .certify(&csr, &web(), DAY, SystemTime::now())
        .unwrap();
    assert_eq!(leaf.not_after, pki.issuer.not_after());
    assert_eq!(not_after(&leaf.chain[0]).unwrap(), pki.issuer.not_after());
}

#[test]
fn other_workload_key_types_are_accepted() {
    let pki = pki();
    for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let csr = rcgen::CertificateParams::new(vec![web().dns_name()])
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let leaf = pki
            .issuer
            .certify(csr.der(), &web(), DAY, SystemTime::now())
            .unwrap();
        let (_, x) = X509Certificate::from_der(&leaf.chain[0]).unwrap();
        assert_eq!(
            x.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
    }
}

#[test]
fn an_issuer_may_carry_further_intermediates() {
    let pki = pki();
    // root → mid (pathlen 1) → issuer, loaded with mid (and a copy of the root) in its PEM.
    let root_key = rcgen::KeyPair::from_pem(&pki.root.key_pem).unwrap();
    let root = rcgen::Issuer::from_ca_cert_pem(&pki.root.cert_pem, root_key).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mid");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(1));
    let mid_key = rcgen::KeyPair::generate().unwrap();
    let mid_pem = params.signed_by(&mid_key, &root).unwrap().pem();
    let mid = Ca::from_pem(&mid_pem, &mid_key.serialize_pem()).unwrap();
    let below_mid = generate_issuer(&mid, "cluster.local", DAY).unwrap();

    let bundle = format!("{}{}{}", below_mid.cert_pem, mid_pem, pki.root.cert_pem);
    let issuer = Issuer::load(&bundle, &below_mid.key_pem, &pki.anchors).unwrap();
    assert_eq!(issuer.chain().len(), 2, "the root copy is dropped");
    assert_eq!(issuer.chain()[1], mid.cert_der().clone());

    let (_, csr) = csr_for(&web());
    let leaf = issuer
        .certify(&csr, &web(), DAY, SystemTime::now())
        .unwrap();
    assert_eq!(leaf.chain.len(), 3);
    let (_, leaf_x) = X509Certificate::from_der(&leaf.chain[0]).unwrap();
    let (_, issuer_x) = X509Certificate::from_der(&leaf.chain[1]).unwrap();
    leaf_x
        .verify_signature(Some(issuer_x.public_key()))
        .unwrap();

    // Out of order, the chain does not verify.
    let swapped = format!("{}{}", mid_pem, below_mid.cert_pem);
    assert!(Issuer::load(&swapped, &mid_key.serialize_pem(), &pki.anchors).is_err());

    // The standard issuer has pathlen 0: an issuer below it would be refused by every peer.
    let issuer_ca = Ca::from_pem(&pki.issuer_files.cert_pem, &pki.issuer_files.key_pem).unwrap();
    let too_deep = generate_issuer(&issuer_ca, "cluster.local", DAY).unwrap();
    let bundle = format!("{}{}", too_deep.cert_pem, pki.issuer_files.cert_pem);
    let err = Issuer::load(&bundle, &too_deep.key_pem, &pki.anchors).unwrap_err();
    assert!(
        matches!(
            err,
            weft_certs::CertError::PathLen {
                path_len: 0,
                below: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("CN=issuer.cluster.local"), "{err}");
}
