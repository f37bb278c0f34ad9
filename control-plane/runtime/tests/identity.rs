//! The controller with identity, as the binary runs it: files source, issuer files and a token
//! registry. A proxy's first steps end to end: verify the controller's TLS, Certify with a
//! token, then read discovery over mTLS with the certificate it got; a client without one is
//! refused; the admin server shows the issuer.

// Helpers outside `#[test]` functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName},
};
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tonic::transport::{Channel, Endpoint};
use weft_certs::{LeafKey, ServiceAccountIdentity, TrustAnchors};
use weft_controller_runtime::{Config, IdentityConfig, IssuerFiles, Source};
use weft_proto::{
    destination::{GetDestination, destination_client::DestinationClient},
    identity::{CertifyRequest, identity_client::IdentityClient},
};

const CONTROLLER: &str = "weft-controller.weft-system.serviceaccount.identity.cluster.local";

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("weft-runtime-identity-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("objects")).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nothing listens on right now.
async fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn wait_listening(addr: SocketAddr) {
    for _ in 0..500 {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nothing listens on {addr}");
}

fn client_config(
    anchors: &TrustAnchors,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in anchors.certs() {
        roots.add(c.clone()).unwrap();
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

async fn handshake(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from(CONTROLLER).unwrap(), tcp)
        .await
}

async fn channel(addr: SocketAddr, config: Arc<ClientConfig>) -> Channel {
    let connector = tower::service_fn(move |_: http::Uri| {
        let config = config.clone();
        async move {
            let tls = handshake(addr, config).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    Endpoint::from_static("http://weft-controller")
        .connect_with_connector(connector)
        .await
        .unwrap()
}

async fn admin_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut rsp = String::new();
    tcp.read_to_string(&mut rsp).await.unwrap();
    rsp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_certifies_then_reads_discovery_over_mtls() {
    let dir = Scratch::new();
    let root =
        weft_certs::generate_root("cluster.local", Duration::from_secs(86400 * 365)).unwrap();
    let root_ca = weft_certs::Ca::from_pem(&root.cert_pem, &root.key_pem).unwrap();
    let issuer =
        weft_certs::generate_issuer(&root_ca, "cluster.local", Duration::from_secs(86400 * 30))
            .unwrap();
    let anchors = TrustAnchors::from_pem(&root.cert_pem).unwrap();
    let (grpc, admin, identity) = (free_addr().await, free_addr().await, free_addr().await);
    let config = Config {
        source: Source::Files(dir.0.join("objects")),
        grpc_addr: grpc,
        admin_addr: admin,
        cluster_domain: "cluster.local".into(),
        trust_domain: "cluster.local".into(),
        default_policy: "all-unauthenticated".parse().unwrap(),
        cluster_networks: vec![],
        identity: Some(IdentityConfig {
            addr: identity,
            issuer: IssuerFiles {
                trust_anchors: dir.write("ca.crt", &root.cert_pem),
                cert: dir.write("issuer.crt", &issuer.cert_pem),
                key: dir.write("issuer.key", &issuer.key_pem),
            },
            token_registry: Some(dir.write(
                "tokens.yaml",
                "tokens:\n  - token: t-web\n    namespace: shop\n    serviceAccount: web\n",
            )),
            leaf_lifetime: Duration::from_secs(3600),
            controller_identity: weft_controller_runtime::controller_identity("cluster.local"),
        }),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(weft_controller_runtime::run(config, async move {
        let _ = stop_rx.await;
    }));
    wait_listening(identity).await;
    wait_listening(grpc).await;

    // Certify over TLS, verifying the controller as the proxy does.
    let web = ServiceAccountIdentity::new("web", "shop", "cluster.local").unwrap();
    let key = LeafKey::generate().unwrap();
    let rsp = IdentityClient::new(channel(identity, client_config(&anchors, None)).await)
        .certify(CertifyRequest {
            identity: web.dns_name(),
            token: b"t-web".to_vec(),
            certificate_signing_request: key.csr_der(&web).unwrap(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut chain = vec![CertificateDer::from(rsp.leaf_certificate)];
    chain.extend(
        rsp.intermediate_certificates
            .into_iter()
            .map(CertificateDer::from),
    );

    // Discovery without a client certificate: refused in the handshake.
    let mut tls = handshake(grpc, client_config(&anchors, None))
        .await
        .unwrap();
    let err = tls.read(&mut [0; 64]).await.unwrap_err();
    assert!(err.to_string().contains("CertificateRequired"), "{err}");

    // With the certificate Certify returned: Destination.Get answers with its first update.
    let mtls = client_config(&anchors, Some((chain, key.private_key_der())));
    let mut updates = DestinationClient::new(channel(grpc, mtls).await)
        .get(GetDestination {
            path: "web.shop.svc.cluster.local:80".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(updates.message().await.unwrap().is_some());

    let body = admin_get(admin, "/identity").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"enabled\": true"), "{body}");
    assert!(body.contains("CN=issuer.cluster.local"), "{body}");
    assert!(body.contains(CONTROLLER), "{body}");

    drop(updates);
    stop_tx.send(()).unwrap();
    controller.await.unwrap().unwrap();
}
