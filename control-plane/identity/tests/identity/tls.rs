//! The controller's TLS: Certify over TLS with the controller's own certificate, verified by
//! rustls clients with the trust anchors; mTLS refusing clients without a mesh certificate;
//! the certificate re-signed when the issuer changes and at 70% of its life.

use crate::support::{Pki, Scratch, TD, csr, id, provider, registry_yaml, roots};
use rustls::{
    ClientConfig,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
};
use tonic::transport::{Channel, Endpoint};
use weft_certs::{ServiceAccountIdentity, TrustAnchors};
use weft_controller_identity::{
    CertifyService, ControllerTls, DEFAULT_LEAF_LIFETIME, IssuerReloader, TlsAcceptor,
    TokenRegistry, controller_identity,
};
use weft_proto::identity::{CertifyRequest, identity_client::IdentityClient};

const CONTROLLER: &str = "weft-controller.weft-system.serviceaccount.identity.cluster.local";

/// The controller's side: issuer, its own certificate, and the Certify service on a TLS
/// listener (`mtls` picks the acceptor).
struct Controller {
    pki: Pki,
    reloader: IssuerReloader,
    tls: Option<ControllerTls>,
    addr: SocketAddr,
    _tokens: Scratch,
}

async fn controller(mtls: bool) -> Controller {
    assert_eq!(controller_identity(TD), CONTROLLER);
    let pki = Pki::new();
    let reloader = IssuerReloader::load(pki.files()).unwrap();
    let own = ServiceAccountIdentity::parse_dns(CONTROLLER).unwrap();
    let tls = ControllerTls::new(own, DEFAULT_LEAF_LIFETIME, reloader.subscribe()).unwrap();
    let tokens = Scratch::new();
    let path = tokens.write("tokens.yaml", &registry_yaml(&[("t-web", "shop", "web")]));
    let service = CertifyService::new(
        TokenRegistry::load(path).unwrap(),
        reloader.subscribe(),
        TD,
        DEFAULT_LEAF_LIFETIME,
    );
    let acceptor = if mtls {
        tls.mtls_acceptor()
    } else {
        tls.acceptor()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(weft_controller_identity::serve(
        listener,
        acceptor,
        service,
        std::future::pending(),
    ));
    Controller {
        pki,
        reloader,
        tls: Some(tls),
        addr,
        _tokens: tokens,
    }
}

type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_config(anchors: &TrustAnchors, cert: Option<ClientCert>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(anchors));
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A certificate for `web` from the controller's issuer, as a proxy would hold.
fn proxy_cert(c: &Controller) -> ClientCert {
    let reloader = c.reloader.subscribe();
    let issuer = &reloader.borrow().issuer;
    let (key, csr) = csr(&id("web", "shop"));
    let leaf = issuer
        .certify(
            &csr,
            &id("web", "shop"),
            DEFAULT_LEAF_LIFETIME,
            std::time::SystemTime::now(),
        )
        .unwrap();
    (leaf.chain, key.private_key_der())
}

async fn handshake(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(CONTROLLER).unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// A tonic client that dials `addr` over TLS with `config` and SNI = the controller identity.
async fn grpc_client(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<IdentityClient<Channel>, tonic::transport::Error> {
    let connector = tower::service_fn(move |_: http::Uri| {
        let config = config.clone();
        async move {
            let tls = handshake(addr, config).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let channel = Endpoint::from_static("http://weft-controller")
        .connect_with_connector(connector)
        .await?;
    Ok(IdentityClient::new(channel))
}

fn request() -> CertifyRequest {
    let (_key, csr) = csr(&id("web", "shop"));
    CertifyRequest {
        identity: "web.shop.serviceaccount.identity.cluster.local".into(),
        token: b"t-web".to_vec(),
        certificate_signing_request: csr,
    }
}

#[tokio::test]
async fn proxies_verify_the_controller_and_certify_over_tls() {
    let c = controller(false).await;
    let config = client_config(&c.pki.anchors(), None);

    // The controller presents its own identity, chained through the issuer.
    let tls = handshake(c.addr, config.clone()).await.unwrap();
    let (_, session) = tls.get_ref();
    let chain = session.peer_certificates().unwrap();
    assert_eq!(
        weft_certs::identity_of(&chain[0]).unwrap().dns_name(),
        CONTROLLER
    );
    assert_eq!(chain[1], c.pki.issuer_der());
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    drop(tls);

    let mut client = grpc_client(c.addr, config).await.unwrap();
    let rsp = client.certify(request()).await.unwrap().into_inner();
    assert_eq!(
        weft_certs::identity_of(&rsp.leaf_certificate).unwrap(),
        id("web", "shop")
    );
}

#[tokio::test]
async fn a_client_trusting_another_root_fails_and_the_server_carries_on() {
    let c = controller(false).await;
    let stranger = Pki::new();
    let err = handshake(c.addr, client_config(&stranger.anchors(), None))
        .await
        .unwrap_err();
    // Both roots are named root.cluster.local: the chain is refused on its signature.
    let refused = ["BadSignature", "UnknownIssuer"];
    assert!(refused.iter().any(|r| err.to_string().contains(r)), "{err}");
    // Nor does a client expecting another name get through.
    let tcp = TcpStream::connect(c.addr).await.unwrap();
    let err = tokio_rustls::TlsConnector::from(client_config(&c.pki.anchors(), None))
        .connect(
            ServerName::try_from("web.shop.serviceaccount.identity.cluster.local").unwrap(),
            tcp,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
    // A client that sends garbage instead of a ClientHello.
    let mut tcp = TcpStream::connect(c.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let _ = tcp.read(&mut [0; 64]).await;

    let mut client = grpc_client(c.addr, client_config(&c.pki.anchors(), None))
        .await
        .unwrap();
    client.certify(request()).await.unwrap();
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_mesh_certificate() {
    let c = controller(true).await;
    let anchors = c.pki.anchors();

    // No certificate: TLS 1.3 clients learn it from the server's alert on their first read.
    let mut tls = handshake(c.addr, client_config(&anchors, None))
        .await
        .unwrap();
    let err = tls.read(&mut [0; 64]).await.unwrap_err();
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
    let refused = match grpc_client(c.addr, client_config(&anchors, None)).await {
        Err(_) => true,
        Ok(mut client) => client.certify(request()).await.is_err(),
    };
    assert!(refused, "a client without a certificate got an answer");

    // A certificate from another mesh's root.
    let stranger = Pki::new();
    let reloader = IssuerReloader::load(stranger.files()).unwrap();
    let (key, csr) = csr(&id("web", "shop"));
    let leaf = reloader
        .subscribe()
        .borrow()
        .issuer
        .certify(
            &csr,
            &id("web", "shop"),
            DEFAULT_LEAF_LIFETIME,
            std::time::SystemTime::now(),
        )
        .unwrap();
    let mut tls = handshake(
        c.addr,
        client_config(&anchors, Some((leaf.chain, key.private_key_der()))),
    )
    .await
    .unwrap();
    let err = tls.read(&mut [0; 64]).await.unwrap_err();
    // Same root name, other key: the server refuses the signature (decrypt_error).
    let refused = ["DecryptError", "UnknownCA", "BadCertificate"];
    assert!(refused.iter().any(|r| err.to_string().contains(r)), "{err}");

    // A proxy's certificate from this mesh gets through.
    let mut client = grpc_client(c.addr, client_config(&anchors, Some(proxy_cert(&c))))
        .await
        .unwrap();
    client.certify(request()).await.unwrap();
}

#[tokio::test]
async fn the_acceptor_reports_the_client_identity() {
    let c = controller(true).await;
    let acceptor: TlsAcceptor = c.tls.as_ref().unwrap().mtls_acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = client_config(&c.pki.anchors(), Some(proxy_cert(&c)));
    let client = tokio::spawn(async move { handshake(addr, config).await.unwrap() });
    let (tcp, _) = listener.accept().await.unwrap();
    let conn = acceptor.accept(tcp).await.unwrap();
    assert_eq!(conn.info().client_identity, Some(id("web", "shop")));
    assert_eq!(conn.info().local_addr, Some(addr));
    drop(client.await.unwrap());
}

#[tokio::test]
async fn a_new_issuer_re_signs_the_controller_certificate() {
    let mut c = controller(false).await;
    let tls = c.tls.take().unwrap();
    let mut info = tls.info();
    assert_eq!(info.borrow().generation, 1);
    assert_eq!(info.borrow().identity, CONTROLLER);
    tokio::spawn(tls.run());

    let new = c.pki.rotate_issuer();
    assert!(c.reloader.poll().unwrap());
    tokio::time::timeout(Duration::from_secs(30), info.changed())
        .await
        .expect("not re-signed")
        .unwrap();
    assert_eq!(info.borrow().generation, 2);

    let tls = handshake(c.addr, client_config(&c.pki.anchors(), None))
        .await
        .unwrap();
    let chain = tls.get_ref().1.peer_certificates().unwrap();
    assert_eq!(chain[1], new);
}

#[tokio::test(start_paused = true)]
async fn the_controller_certificate_is_renewed_at_70_percent_of_its_life() {
    let pki = Pki::new();
    let reloader = IssuerReloader::load(pki.files()).unwrap();
    let own = ServiceAccountIdentity::parse_dns(CONTROLLER).unwrap();
    let tls = ControllerTls::new(own, Duration::from_secs(100), reloader.subscribe()).unwrap();
    let info = tls.info();
    tokio::spawn(tls.run());

    tokio::time::sleep(Duration::from_secs(69)).await;
    assert_eq!(info.borrow().generation, 1, "renewed before 70%");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(info.borrow().generation, 2, "not renewed at 70%");
    drop(reloader);
}
