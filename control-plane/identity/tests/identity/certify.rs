//! Certify served in-process (plaintext here; TLS in `tls.rs`) and called with a real tonic
//! client, over the real token registry and issuer files.

use crate::support::{Pki, Scratch, TD, csr, id, registry_yaml, verify_chain};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tonic::{Code, Status, transport::Channel};
use weft_controller_identity::{
    CertifyService, DEFAULT_LEAF_LIFETIME, IssuerReloader, MAX_REQUEST_BYTES, TokenRegistry,
};
use weft_proto::identity::{CertifyRequest, CertifyResponse, identity_client::IdentityClient};

const WEB: &str = "web.shop.serviceaccount.identity.cluster.local";
const API: &str = "api.shop.serviceaccount.identity.cluster.local";

struct Fixture {
    pki: Pki,
    reloader: IssuerReloader,
    client: IdentityClient<Channel>,
    _tokens: Scratch,
}

/// A Certify server over tokens `t-web` (shop/web) and `t-api` (shop/api).
async fn fixture() -> Fixture {
    let pki = Pki::new();
    let reloader = IssuerReloader::load(pki.files()).unwrap();
    let tokens = Scratch::new();
    let path = tokens.write(
        "tokens.yaml",
        &registry_yaml(&[("t-web", "shop", "web"), ("t-api", "shop", "api")]),
    );
    let service = CertifyService::new(
        TokenRegistry::load(path).unwrap(),
        reloader.subscribe(),
        TD,
        DEFAULT_LEAF_LIFETIME,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let client = IdentityClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Fixture {
        pki,
        reloader,
        client,
        _tokens: tokens,
    }
}

async fn certify(
    client: &mut IdentityClient<Channel>,
    identity: &str,
    token: &str,
    csr: Vec<u8>,
) -> Result<CertifyResponse, Status> {
    client
        .certify(CertifyRequest {
            identity: identity.to_string(),
            token: token.as_bytes().to_vec(),
            certificate_signing_request: csr,
        })
        .await
        .map(|r| r.into_inner())
}

fn assert_code(r: Result<CertifyResponse, Status>, code: Code, contains: &[&str]) -> Status {
    let status = r.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    for text in contains {
        assert!(status.message().contains(text), "{text:?} in {status:?}");
    }
    assert!(
        !status.message().contains("t-web"),
        "the token leaked: {status:?}"
    );
    status
}

#[tokio::test]
async fn a_good_token_gets_a_chain_to_the_root_naming_its_identity() {
    let mut f = fixture().await;
    let (_key, csr) = csr(&id("web", "shop"));
    let before = SystemTime::now();
    let rsp = certify(&mut f.client, WEB, "t-web", csr).await.unwrap();

    assert_eq!(
        weft_certs::identity_of(&rsp.leaf_certificate).unwrap(),
        id("web", "shop")
    );
    assert_eq!(
        rsp.intermediate_certificates,
        vec![f.pki.issuer_der().to_vec()]
    );
    verify_chain(
        &f.pki.anchors(),
        &rsp.leaf_certificate,
        &rsp.intermediate_certificates,
        WEB,
    )
    .unwrap();
    // Valid for the default 24 hours, and valid_until is the certificate's notAfter.
    let valid_until = SystemTime::try_from(rsp.valid_until.unwrap()).unwrap();
    assert_eq!(
        valid_until,
        weft_certs::not_after(&rsp.leaf_certificate).unwrap()
    );
    let life = valid_until.duration_since(before).unwrap();
    assert!(
        // notAfter has whole seconds.
        life <= DEFAULT_LEAF_LIFETIME + Duration::from_secs(1)
            && life > DEFAULT_LEAF_LIFETIME - Duration::from_secs(60),
        "{life:?}"
    );
    // Not valid for another name.
    assert!(
        verify_chain(
            &f.pki.anchors(),
            &rsp.leaf_certificate,
            &rsp.intermediate_certificates,
            API
        )
        .is_err()
    );
}

#[tokio::test]
async fn forged_and_missing_tokens_are_unauthenticated() {
    let mut f = fixture().await;
    let (_key, csr) = csr(&id("web", "shop"));
    assert_code(
        certify(&mut f.client, WEB, "t-web-forged", csr.clone()).await,
        Code::Unauthenticated,
        &["not in the token registry"],
    );
    assert_code(
        certify(&mut f.client, WEB, "", csr.clone()).await,
        Code::Unauthenticated,
        &["no token"],
    );
    let invalid_utf8 = f
        .client
        .certify(CertifyRequest {
            identity: WEB.to_string(),
            token: vec![0xff, 0xfe],
            certificate_signing_request: csr,
        })
        .await;
    assert_eq!(invalid_utf8.unwrap_err().code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_token_asking_for_another_identity_is_denied() {
    let mut f = fixture().await;
    let (_key, csr) = csr(&id("api", "shop"));
    assert_code(
        certify(&mut f.client, API, "t-web", csr).await,
        Code::PermissionDenied,
        &["shop/web", API],
    );
}

#[tokio::test]
async fn a_csr_that_does_not_match_the_identity_is_invalid() {
    let mut f = fixture().await;
    // The right token and identity, a CSR for another identity.
    let (_key, api_csr) = csr(&id("api", "shop"));
    assert_code(
        certify(&mut f.client, WEB, "t-web", api_csr).await,
        Code::InvalidArgument,
        &["api.shop"],
    );
    assert_code(
        certify(&mut f.client, WEB, "t-web", b"not a CSR".to_vec()).await,
        Code::InvalidArgument,
        &["certificate signing request"],
    );
}

#[tokio::test]
async fn identities_outside_the_trust_domain_or_malformed_are_invalid() {
    let mut f = fixture().await;
    let other = weft_certs::ServiceAccountIdentity::new("web", "shop", "example.org").unwrap();
    let (_key, csr) = csr(&other);
    assert_code(
        certify(&mut f.client, &other.dns_name(), "t-web", csr.clone()).await,
        Code::InvalidArgument,
        &["not in trust domain cluster.local"],
    );
    assert_code(
        certify(&mut f.client, "web.shop.svc.cluster.local", "t-web", csr).await,
        Code::InvalidArgument,
        &["not a Weft identity"],
    );
}

#[tokio::test]
async fn an_oversize_request_is_refused_before_decoding() {
    let mut f = fixture().await;
    let status = certify(&mut f.client, WEB, "t-web", vec![0; MAX_REQUEST_BYTES + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    // The connection still serves a normal request.
    let (_key, csr) = csr(&id("web", "shop"));
    certify(&mut f.client, WEB, "t-web", csr).await.unwrap();
}

#[tokio::test]
async fn a_replaced_issuer_signs_the_next_certificate() {
    let mut f = fixture().await;
    let old = f.pki.issuer_der();
    let new = f.pki.rotate_issuer();
    assert!(f.reloader.poll().unwrap(), "the files changed");
    assert!(!f.reloader.poll().unwrap(), "and then did not");

    let (_key, csr) = csr(&id("web", "shop"));
    let rsp = certify(&mut f.client, WEB, "t-web", csr).await.unwrap();
    assert_eq!(rsp.intermediate_certificates, vec![new.to_vec()]);
    assert_ne!(new, old);
    verify_chain(
        &f.pki.anchors(),
        &rsp.leaf_certificate,
        &rsp.intermediate_certificates,
        WEB,
    )
    .unwrap();
    assert_eq!(f.reloader.subscribe().borrow().status.generation, 2);
}

#[tokio::test]
async fn a_bad_new_issuer_is_refused_and_the_old_one_keeps_signing() {
    let mut f = fixture().await;
    let old = f.pki.issuer_der();
    // A certificate with another issuer's key: each file parses, together they do not.
    let stranger = crate::support::new_issuer(&f.pki.root);
    f.pki.dir.write("issuer.key", &stranger.key_pem);
    let err = f.reloader.poll().unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(f.reloader.last_error().lock().is_some());
    // Not retried (nor logged again) until the files change again.
    assert!(!f.reloader.poll().unwrap());

    let (_key, csr) = csr(&id("web", "shop"));
    let rsp = certify(&mut f.client, WEB, "t-web", csr.clone())
        .await
        .unwrap();
    assert_eq!(rsp.intermediate_certificates, vec![old.to_vec()]);

    // Garbage is refused the same way.
    f.pki.dir.write("issuer.crt", "not PEM");
    assert!(f.reloader.poll().is_err());
    let rsp = certify(&mut f.client, WEB, "t-web", csr.clone())
        .await
        .unwrap();
    assert_eq!(rsp.intermediate_certificates, vec![old.to_vec()]);

    // A good pair again is taken, and clears the error.
    let new = f.pki.rotate_issuer();
    assert!(f.reloader.poll().unwrap());
    assert!(f.reloader.last_error().lock().is_none());
    let rsp = certify(&mut f.client, WEB, "t-web", csr).await.unwrap();
    assert_eq!(rsp.intermediate_certificates, vec![new.to_vec()]);
}

#[tokio::test(start_paused = true)]
async fn the_reloader_polls_the_files() {
    let mut pki = Pki::new();
    let reloader = IssuerReloader::load(pki.files()).unwrap();
    let mut issuer = reloader.subscribe();
    tokio::spawn(reloader.run(Duration::from_secs(5)));
    let new = pki.rotate_issuer();
    // The paused clock jumps to each poll; the new issuer shows up within a few of them.
    tokio::time::timeout(Duration::from_secs(60), issuer.changed())
        .await
        .expect("no reload within 60s of polls")
        .unwrap();
    assert_eq!(issuer.borrow().issuer.chain()[0], new);
}
