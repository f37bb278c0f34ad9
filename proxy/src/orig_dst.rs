//! The original destination of a redirected connection (`SO_ORIGINAL_DST`).

use std::{io, net::SocketAddr};
use tokio::net::TcpStream;

/// Where the client meant to connect before iptables redirected it to the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrigDst(pub SocketAddr);

/// Why a connection has no usable original destination.
#[derive(Debug, thiserror::Error)]
pub enum OrigDstError {
    /// The kernel has no NAT record of this connection.
    #[error(
        "no original destination for the connection from {peer} (SO_ORIGINAL_DST: {source}); was it redirected by weft-init?"
    )]
    Lookup {
        /// The client.
        peer: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// The connection was made to the proxy's own port, not redirected to it; forwarding it
    /// would send it straight back to the proxy.
    #[error(
        "connection from {peer} was made to the proxy port {local} directly, not redirected; refusing to loop it"
    )]
    NotRedirected {
        /// The client.
        peer: SocketAddr,
        /// The proxy's listening address.
        local: SocketAddr,
    },
}

/// Reads the original destination of `tcp`, for IPv4 and IPv6 connections.
pub fn orig_dst(tcp: &TcpStream) -> Result<OrigDst, OrigDstError> {
    let peer = tcp
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let local = tcp
        .local_addr()
        .map_err(|source| OrigDstError::Lookup { peer, source })?;
    let sock = socket2::SockRef::from(tcp);
    let addr = match local {
        SocketAddr::V4(_) => sock.original_dst_v4(),
        SocketAddr::V6(_) => sock.original_dst_v6(),
    }
    .map_err(|source| OrigDstError::Lookup { peer, source })?;
    let addr = addr.as_socket().ok_or_else(|| OrigDstError::Lookup {
        peer,
        source: io::Error::new(io::ErrorKind::InvalidData, "not an IP address"),
    })?;
    // Without NAT, conntrack reports the proxy's own address; forwarding there would loop.
    if addr == local {
        return Err(OrigDstError::NotRedirected { peer, local });
    }
    Ok(OrigDst(addr))
}
