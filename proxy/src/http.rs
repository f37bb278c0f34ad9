//! HTTP/1.1 and HTTP/2 proxying over hyper: streaming bodies, trailers, upgrades and pooled
//! upstream connections.
//!
//! The stack for one HTTP connection, outside in:
//! `server` (hyper h1/h2, drain-aware) → `record::Record` (metrics) → `forward::Forward`
//! (hop-by-hop headers, upgrades, the pooled `client`).

pub mod client;
pub mod deadline;
pub mod forward;
pub mod headers;
pub mod notes;
pub mod observe;
pub mod record;
pub mod replay;
pub mod server;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;

/// A response body: the upstream's, streamed, or one the proxy made itself.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// A request body: the client's, streamed, or a [`replay::Replay`] of it when the request may
/// be sent again (a retry, or a bodiless request re-sent to another endpoint).
pub type ReqBody = Either<Incoming, replay::Replay>;

/// Which HTTP version a connection speaks (upstream uses the same one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.x.
    Http1,
    /// HTTP/2 with prior knowledge.
    Http2,
}

/// The header that marks responses the proxy made itself, with the reason.
pub const PROXY_ERROR: &str = "weft-proxy-error";
