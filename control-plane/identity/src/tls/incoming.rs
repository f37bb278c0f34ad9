//! Accepting TLS connections for a tonic server: a stream of handshaken connections for
//! `serve_with_incoming`, where one client's failed or slow handshake never holds up another.

use rustls::ServerConfig;
use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};
use tokio_rustls::server::TlsStream;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::transport::server::Connected;
use weft_certs::ServiceAccountIdentity;

/// A client gets this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server to take them.
const BACKLOG: usize = 64;

/// Accepts TLS with whichever server configuration is current when a client connects.
#[derive(Clone, Debug)]
pub struct TlsAcceptor {
    config: watch::Receiver<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Follows the configurations sent on `config`.
    pub fn new(config: watch::Receiver<Arc<ServerConfig>>) -> Self {
        Self { config }
    }

    /// Always uses `config`.
    pub fn fixed(config: Arc<ServerConfig>) -> Self {
        // A receiver keeps its last value after its sender is dropped.
        Self::new(watch::channel(config).1)
    }

    /// Completes the server side of a handshake on `tcp`.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsConn> {
        let config = self.config.borrow().clone();
        let remote_addr = tcp.peer_addr().ok();
        let local_addr = tcp.local_addr().ok();
        let stream = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
        let client_identity = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| weft_certs::identity_of(leaf).ok());
        Ok(TlsConn {
            stream,
            info: TlsConnectInfo {
                remote_addr,
                local_addr,
                client_identity,
            },
        })
    }
}

/// Accepts on `listener` and yields each connection once its handshake completes. Handshakes
/// run concurrently; a failed one is logged at debug and skipped. Accepting stops when the
/// stream is dropped (the server shut down).
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> impl Stream<Item = Result<TlsConn, io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, usually; back off rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(conn)) => {
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => {
                        tracing::debug!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out")
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// A server-side TLS connection, as tonic serves it.
#[derive(Debug)]
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    info: TlsConnectInfo,
}

/// What a request on a [`TlsConn`] can learn about its connection
/// (`request.extensions().get::<TlsConnectInfo>()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConnectInfo {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The address the client connected to.
    pub local_addr: Option<SocketAddr>,
    /// The mesh identity of the client's certificate, when it presented one that names one.
    pub client_identity: Option<ServiceAccountIdentity>,
}

impl TlsConn {
    /// The connection's addresses and client identity.
    pub fn info(&self) -> &TlsConnectInfo {
        &self.info
    }
}

impl Connected for TlsConn {
    type ConnectInfo = TlsConnectInfo;

    fn connect_info(&self) -> TlsConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
