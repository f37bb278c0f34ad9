//! Pooled upstream HTTP clients, one per target address and version.
//!
//! A transparent proxy must connect to the original destination, not to whatever the `Host`
//! header names, so each client has a connector bound to one address (and, for a meshed
//! endpoint, the identity its TLS certificate must name); hyper's pool then keeps idle
//! keep-alive connections per authority on it.

use super::Version;
use crate::tls::{Conn, MeshTls, TlsError};
use http::Uri;
use hyper_util::{
    client::legacy,
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use std::{
    collections::HashMap,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    sync::Mutex,
    task::{Context, Poll},
    time::Duration,
};
use tokio::net::TcpStream;

/// An upstream client bound to one target.
pub type Client = legacy::Client<Connector, super::ReqBody>;

/// Clients shared by every connection of one direction.
#[derive(Debug)]
pub struct Clients {
    by_target: Mutex<HashMap<(SocketAddr, Version), Pooled>>,
    connect_timeout: Duration,
    tls: Option<MeshTls>,
}

/// A target's client and the identity its connections must prove, if meshed.
type Pooled = (Option<Arc<str>>, Client);

/// Beyond this many targets the map is cleared; targets in use rebuild their entry, and
/// connections in use keep their client, so this only bounds memory held by idle pools.
const MAX_TARGETS: usize = 10_000;

impl Clients {
    /// No clients yet; connections time out after `connect_timeout`; meshed endpoints get
    /// mesh TLS when `tls` is set.
    pub fn new(connect_timeout: Duration, tls: Option<MeshTls>) -> Self {
        Self {
            by_target: Mutex::new(HashMap::new()),
            connect_timeout,
            tls,
        }
    }

    /// The client for `target` speaking `version`, made on first use. `server_id` is the
    /// endpoint's mesh identity, if it is meshed: with mesh TLS on, its connections are TLS
    /// and its certificate must name that identity.
    pub fn get(&self, target: SocketAddr, version: Version, server_id: Option<&str>) -> Client {
        let server_id = server_id.filter(|_| self.tls.is_some());
        // A poisoned lock only means another connection panicked mid-insert; the map is
        // still a valid cache.
        let mut map = self.by_target.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((id, c)) = map.get(&(target, version))
            && id.as_deref() == server_id
        {
            return c.clone();
        }
        if map.len() >= MAX_TARGETS {
            map.clear();
        }
        let server_id: Option<Arc<str>> = server_id.map(Arc::from);
        let connector = Connector {
            addr: target,
            timeout: self.connect_timeout,
            tls: self.tls.clone().zip(server_id.clone()),
        };
        let mut builder = legacy::Client::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90));
        if version == Version::Http2 {
            builder.http2_only(true);
        }
        let client = builder.build(connector);
        map.insert((target, version), (server_id, client.clone()));
        client
    }
}

/// Connects to one fixed address, whatever the request's URI says.
#[derive(Clone, Debug)]
pub struct Connector {
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<(MeshTls, Arc<str>)>,
}

/// Why an upstream connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No answer in time.
    #[error("connect to {addr} timed out after {after:?}")]
    Timeout {
        /// The target.
        addr: SocketAddr,
        /// The connect timeout.
        after: Duration,
    },
    /// The connect failed.
    #[error("connect to {addr} failed: {source}")]
    Io {
        /// The target.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// Mesh TLS to the endpoint failed.
    #[error("mesh TLS to {addr} ({server_id}) failed: {source}")]
    Tls {
        /// The target.
        addr: SocketAddr,
        /// The identity the endpoint had to prove.
        server_id: String,
        /// What went wrong.
        source: TlsError,
    },
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Conn>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let (addr, timeout, tls) = (self.addr, self.timeout, self.tls.clone());
        Box::pin(async move {
            let tls = tls.as_ref().map(|(t, id)| (t, &**id));
            connect_mesh(addr, timeout, tls).await.map(TokioIo::new)
        })
    }
}

/// Connects to `addr`, then opens mesh TLS if `tls` names the identity the endpoint must
/// prove.
pub async fn connect_mesh(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<(&MeshTls, &str)>,
) -> Result<Conn, ConnectError> {
    let tcp = connect(addr, timeout).await?;
    match tls {
        None => Ok(Conn::Plain(tcp)),
        Some((tls, server_id)) => match tls.connect(tcp, server_id).await {
            Ok(io) => Ok(Conn::Tls(Box::new(io))),
            Err(source) => Err(ConnectError::Tls {
                addr,
                server_id: server_id.to_string(),
                source,
            }),
        },
    }
}

/// Opens a TCP connection with Nagle off (the proxy writes whole frames).
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout {
            addr,
            after: timeout,
        })?
        .map_err(|source| ConnectError::Io { addr, source })?;
    tcp.set_nodelay(true)
        .map_err(|source| ConnectError::Io { addr, source })?;
    Ok(tcp)
}
