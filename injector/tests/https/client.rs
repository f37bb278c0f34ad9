//! A webhook on 127.0.0.1 with fresh certificates in a directory of its own, and an HTTPS
//! client (HTTP/1.1 or HTTP/2) that trusts its CA.

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::net::TcpStream;
use weft_certs::{Ca, CaFiles, generate_ca, generate_server_cert};
use weft_injector::{CertFiles, InjectFlags, Limits, Reloader, StaticNamespaces, Webhook};
use weft_injector_patch::Injector;

pub const NAME: &str = "weft-injector.weft-system.svc";

pub struct Server {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub reloader: Reloader,
    pub anchors: String,
    ca: CaFiles,
    _stop: tokio::sync::oneshot::Sender<()>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Server {
    pub async fn start(namespaces: StaticNamespaces, limits: Limits) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "weft-injector-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = generate_ca("weft-injector-test-ca", Duration::from_secs(3600)).unwrap();
        let anchors = super::support::anchors();
        std::fs::write(dir.join("anchors.pem"), &anchors).unwrap();
        let mut flags = flags();
        flags.trust_anchors = Some(dir.join("anchors.pem"));
        let this_ca = ca.clone();
        write_cert(&dir, &this_ca);
        let certs = Arc::new(CertFiles::load(&dir.join("tls.crt"), &dir.join("tls.key")).unwrap());
        let injector = Injector::new(flags.config().unwrap());
        let webhook = Webhook::new(injector, Arc::new(namespaces), limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(weft_injector::serve(
            listener,
            certs.server_config(),
            webhook.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            reloader: Reloader {
                certs,
                flags,
                webhook,
            },
            dir,
            anchors,
            ca,
            _stop: stop,
        }
    }

    /// Writes a new certificate (same CA) over the files.
    pub fn rotate_cert(&self) {
        write_cert(&self.dir, &self.ca);
    }

    /// The certificate the files hold now.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        let pem = std::fs::read_to_string(self.dir.join("tls.crt")).unwrap();
        weft_certs::certs_from_pem("tls.crt", &pem)
            .unwrap()
            .remove(0)
    }

    fn tls(&self, http2: bool) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                weft_certs::certs_from_pem("ca", &self.ca.cert_pem)
                    .unwrap()
                    .remove(0),
            )
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![if http2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// A TLS connection, handshake done.
    pub async fn tls_stream(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        self.tls(false)
            .connect(ServerName::try_from(NAME).unwrap(), tcp)
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The injection flags with their defaults.
pub fn flags() -> InjectFlags {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        flags: InjectFlags,
    }
    Wrap::parse_from(["test"]).flags
}

fn write_cert(dir: &std::path::Path, ca: &CaFiles) {
    let signer = Ca::from_pem(&ca.cert_pem, &ca.key_pem).unwrap();
    let server = generate_server_cert(&signer, &[NAME], Duration::from_secs(3600)).unwrap();
    std::fs::write(dir.join("tls.key"), &server.key_pem).unwrap();
    std::fs::write(dir.join("tls.crt"), &server.cert_pem).unwrap();
}

enum Sender {
    Http1(tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

pub struct Client {
    sender: Sender,
    pub peer_cert: CertificateDer<'static>,
}

impl Client {
    pub async fn connect(server: &Server, http2: bool) -> Self {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let tls = server
            .tls(http2)
            .connect(ServerName::try_from(NAME).unwrap(), tcp)
            .await
            .unwrap();
        let peer_cert = tls.get_ref().1.peer_certificates().unwrap()[0]
            .clone()
            .into_owned();
        let io = TokioIo::new(tls);
        let sender = if http2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Sender::Http2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Sender::Http1(tokio::sync::Mutex::new(sender))
        };
        Self { sender, peer_cert }
    }

    pub async fn get(&self, path: &str) -> (u16, HeaderMap, Bytes) {
        self.send("GET", path, Vec::new()).await
    }

    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, HeaderMap, Bytes) {
        self.send("POST", path, body).await
    }

    async fn send(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, HeaderMap, Bytes) {
        let req = Request::builder()
            .method(method)
            .uri(format!("https://{NAME}{path}"))
            .header("host", NAME)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = match &self.sender {
            Sender::Http1(sender) => sender.lock().await.send_request(req).await.unwrap(),
            Sender::Http2(sender) => sender.clone().send_request(req).await.unwrap(),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }
}
