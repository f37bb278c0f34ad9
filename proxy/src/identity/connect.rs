//! TLS 1.3 to the controller, for the identity and the discovery gRPC channels: a tower
//! connector that tonic drives (`Endpoint::connect_with_connector_lazy`), doing TCP, then the
//! handshake against the trust anchors for the controller's name.

use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore, client::ResolvesClientCert};
use rustls_pki_types::ServerName;
use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};
use tonic::transport::Uri;

/// Why a connection to the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URI tonic asked for has no host or port.
    #[error("{uri} names no host and port")]
    NoAddr {
        /// The URI.
        uri: Uri,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Tcp {
        /// `host:port`.
        addr: String,
        /// The socket error.
        source: io::Error,
    },
    /// The TLS handshake failed, e.g. the controller's certificate does not chain to the trust
    /// anchors or does not name the controller.
    #[error("TLS handshake with {addr} (expecting {name}) failed: {source}")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// The name the controller's certificate must carry.
        name: String,
        /// The TLS error.
        source: io::Error,
    },
}

/// TLS 1.3 client settings over `roots`, with `client_cert` as the client certificate if given.
/// ALPN offers `h2`: gRPC is HTTP/2.
pub fn client_config(
    roots: Arc<RootCertStore>,
    client_cert: Option<Arc<dyn ResolvesClientCert>>,
) -> Arc<ClientConfig> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("the ring provider supports TLS 1.3")
            .with_root_certificates(roots);
    let mut config = match client_cert {
        Some(resolver) => builder.with_client_cert_resolver(resolver),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Connects to the URI's `host:port` and completes a TLS 1.3 handshake, verifying the peer
/// for `server_name` (not for the URI's host, which may be a Service address or an IP).
#[derive(Clone)]
pub struct TlsConnect {
    tls: TlsConnector,
    server_name: ServerName<'static>,
}

impl TlsConnect {
    /// A connector with `config` that expects the peer to be `server_name`.
    pub fn new(config: Arc<ClientConfig>, server_name: ServerName<'static>) -> Self {
        Self {
            tls: TlsConnector::from(config),
            server_name,
        }
    }

    /// Connects to `addr` (`host:port`).
    pub async fn connect(&self, addr: &str) -> Result<TlsStream<TcpStream>, ConnectError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ConnectError::Tcp {
                addr: addr.to_string(),
                source,
            })?;
        // gRPC messages are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        self.tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| ConnectError::Handshake {
                addr: addr.to_string(),
                name: self.server_name.to_str().into_owned(),
                source,
            })
    }
}

impl std::fmt::Debug for TlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnect")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl tower::Service<Uri> for TlsConnect {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let addr = match (uri.host(), uri.port_u16()) {
                // An IPv6 host keeps its brackets, as `connect` wants.
                (Some(host), Some(port)) => format!("{host}:{port}"),
                _ => return Err(ConnectError::NoAddr { uri }),
            };
            this.connect(&addr).await.map(TokioIo::new)
        })
    }
}
