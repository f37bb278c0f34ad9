//! Mesh TLS between two proxies' TLS layers, in process: who terminates, who passes through,
//! which identities are proven, and what is refused.

use rustls::{crypto::ring::sign::any_supported_type, sign::CertifiedKey};
use std::{path::PathBuf, sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_certs::{Ca, Issuer, LeafKey, ServiceAccountIdentity, TrustAnchors};
use weft_proxy::{
    config::IdentityConfig,
    identity::Identity,
    tls::{Inbound, MeshTls},
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A trust anchor and an issuer.
struct Pki {
    anchors: TrustAnchors,
    issuer: Issuer,
}

impl Pki {
    fn new() -> Self {
        let root = weft_certs::generate_root("cluster.local", DAY).expect("root");
        let root_ca = Ca::from_pem(&root.cert_pem, &root.key_pem).expect("root loads");
        let issuer = weft_certs::generate_issuer(&root_ca, "cluster.local", DAY).expect("issuer");
        let anchors = TrustAnchors::from_pem(&root.cert_pem).expect("anchors");
        let issuer = Issuer::load(&issuer.cert_pem, &issuer.key_pem, &anchors).expect("issuer");
        Self { anchors, issuer }
    }

    /// The TLS layer of a proxy running as ServiceAccount `sa` in `shop`, certified here.
    fn proxy(&self, sa: &str) -> MeshTls {
        self.proxy_with(sa, sa)
    }

    /// A proxy named for `sa` holding a certificate for `cert_sa`.
    fn proxy_with(&self, sa: &str, cert_sa: &str) -> MeshTls {
        self.proxy_signed(sa, cert_sa, &self.issuer)
    }

    /// A proxy that trusts this PKI's anchors but holds a certificate from `issuer`.
    fn proxy_signed(&self, sa: &str, cert_sa: &str, issuer: &Issuer) -> MeshTls {
        let identity = self.identity(sa, cert_sa, issuer, DAY);
        MeshTls::new(identity, Duration::from_secs(3)).expect("tls config")
    }

    /// An identity named for `sa` holding a certificate for `cert_sa` from `issuer`, valid for
    /// `lifetime`.
    fn identity(
        &self,
        sa: &str,
        cert_sa: &str,
        issuer: &Issuer,
        lifetime: Duration,
    ) -> Arc<Identity> {
        let name = ServiceAccountIdentity::new(sa, "shop", "cluster.local").expect("name");
        let cert_name =
            ServiceAccountIdentity::new(cert_sa, "shop", "cluster.local").expect("name");
        let key = LeafKey::generate().expect("key");
        let csr = key.csr_der(&cert_name).expect("csr");
        let leaf = issuer
            .certify(&csr, &cert_name, lifetime, std::time::SystemTime::now())
            .expect("certify");
        let signer = any_supported_type(&key.private_key_der()).expect("signing key");
        let config = IdentityConfig {
            addr: "127.0.0.1:1".into(),
            name,
            token_file: PathBuf::from("/nonexistent"),
            trust_anchors: self.anchors.certs().to_vec(),
            controller_name: rustls::pki_types::ServerName::try_from(
                "weft-controller.weft-system.serviceaccount.identity.cluster.local",
            )
            .expect("name"),
        };
        Identity::fixed(&config, Arc::new(CertifiedKey::new(leaf.chain, signer)))
    }
}

fn id(sa: &str) -> String {
    ServiceAccountIdentity::new(sa, "shop", "cluster.local")
        .expect("name")
        .dns_name()
}

#[tokio::test]
async fn tls_addressed_to_the_server_is_terminated_and_proves_both_identities() {
    let pki = Pki::new();
    let (client, server) = (pki.proxy("client"), pki.proxy("web"));
    let (c, s) = tokio::io::duplex(64 * 1024);
    let accept = tokio::spawn(async move {
        match server
            .accept(s, bytes::Bytes::new())
            .await
            .expect("accepted")
        {
            Inbound::Mesh { mut io, client_id } => {
                let mut buf = [0u8; 5];
                io.read_exact(&mut buf).await.expect("read");
                io.write_all(b"world").await.expect("write");
                io.flush().await.expect("flush");
                (client_id, buf)
            }
            Inbound::Passthrough(_) => panic!("TLS for the server's identity must be terminated"),
        }
    });
    let mut tls = client.connect(c, &id("web")).await.expect("handshake");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    tls.write_all(b"hello").await.expect("write");
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"world");
    let (client_id, got) = accept.await.expect("server task");
    assert_eq!(
        client_id,
        id("client"),
        "the server learns the client's identity"
    );
    assert_eq!(&got, b"hello");
}

#[tokio::test]
async fn the_client_refuses_a_server_whose_certificate_names_another_identity() {
    let pki = Pki::new();
    // Calls itself web, but holds api's certificate.
    let (client, server) = (pki.proxy("client"), pki.proxy_with("web", "api"));
    let err = handshake(client, server)
        .await
        .expect_err("api's certificate is not web's");
    assert!(
        err.contains("NotValidForName") || err.contains("not valid"),
        "{err}"
    );
}

#[tokio::test]
async fn peers_from_another_trust_anchor_are_refused_both_ways() {
    let (ours, theirs) = (Pki::new(), Pki::new());
    let err = handshake(ours.proxy("client"), theirs.proxy("web"))
        .await
        .expect_err("a server from another root");
    // Both roots are named root.cluster.local: webpki finds the name and fails the signature.
    assert!(
        err.contains("UnknownIssuer") || err.contains("BadSignature"),
        "client side: {err}"
    );
    let pki = Pki::new();
    let server = pki.proxy("web");
    let (c, s) = tokio::io::duplex(64 * 1024);
    let accept = tokio::spawn(async move { server.accept(s, bytes::Bytes::new()).await });
    // The client trusts our root (so it accepts the server) but holds a certificate of theirs.
    let foreign = pki.proxy_signed("client", "client", &theirs.issuer);
    let _ = foreign.connect(c, &id("web")).await;
    let refused = accept.await.expect("task");
    assert!(
        matches!(refused, Err(ref e) if format!("{e:?}").contains("InvalidCertificate") || format!("{e:?}").contains("certificate")),
        "server side: {refused:?}"
    );
}

/// A handshake from `client` to `server` over an in-memory pipe; the client's error text if
/// it fails.
async fn handshake(client: MeshTls, server: MeshTls) -> Result<(), String> {
    let (c, s) = tokio::io::duplex(64 * 1024);
    let name = server.identity().name().to_string();
    let _server = tokio::spawn(async move { server.accept(s, bytes::Bytes::new()).await });
    client
        .connect(c, &name)
        .await
        .map(drop)
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn tls_for_another_name_passes_through_with_every_byte() {
    let pki = Pki::new();
    let (client, server) = (pki.proxy("client"), pki.proxy("web"));
    // A ClientHello for the app's own name, as an app's TLS client would send.
    let (a, mut b) = tokio::io::duplex(64 * 1024);
    let connect = tokio::spawn(async move { client.connect(a, "app.example.com").await });
    let mut hello = vec![0u8; 16 * 1024];
    let n = b.read(&mut hello).await.expect("hello");
    hello.truncate(n);
    connect.abort();

    let (io, _peer) = tokio::io::duplex(1024);
    match server.accept(io, bytes::Bytes::from(hello.clone())).await {
        Ok(Inbound::Passthrough(mut io)) => {
            let mut replay = vec![0u8; hello.len()];
            io.read_exact(&mut replay).await.expect("replayed");
            assert_eq!(
                replay, hello,
                "passthrough replays the ClientHello untouched"
            );
        }
        Ok(Inbound::Mesh { .. }) => panic!("TLS for another name must pass through"),
        Err(e) => panic!("a valid ClientHello is not an error: {e}"),
    }
}

#[tokio::test]
async fn a_client_hello_the_mesh_cannot_read_passes_through_to_the_app() {
    let pki = Pki::new();
    let server = pki.proxy("web");
    let (io, _peer) = tokio::io::duplex(1024);
    let junk = bytes::Bytes::from_static(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);
    match server.accept(io, junk.clone()).await {
        Ok(Inbound::Passthrough(mut io)) => {
            let mut replay = vec![0u8; junk.len()];
            io.read_exact(&mut replay).await.expect("replayed");
            assert_eq!(replay, junk);
        }
        other => panic!("not the mesh's TLS: pass it on, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_that_runs_out_unrenewed_makes_the_proxy_not_ready() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let pki = Pki::new();
    let identity = pki.identity("web", "web", &pki.issuer, Duration::from_secs(2));
    let expires = identity.expires().expect("a certificate");
    let ready = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(identity.clone().track_readiness(ready.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while !ready.load(Ordering::Acquire) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        ready.load(Ordering::Acquire),
        "ready while the certificate is valid"
    );
    // Validity ends on a whole second; allow for it.
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(1500)).await;
    assert!(
        !ready.load(Ordering::Acquire),
        "not ready once the certificate has expired"
    );
    task.abort();
}
