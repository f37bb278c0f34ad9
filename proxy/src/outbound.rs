//! Outbound routing: each connection follows the policy of its original destination; each
//! HTTP request takes a route, a backend by weight (the traffic split), and an endpoint by
//! power-of-two-choices over peak-EWMA load; each opaque connection takes a backend by weight
//! and the endpoint with fewer open connections.

mod http;

pub use self::http::RouteHttp;

use crate::{
    balance::{self, ConnGuard},
    discover::{Discovery, Endpoints},
    http::Version,
    policy::{
        self, BackendKind, Distribution, HttpRoutes, OpaqueRoutes, OutboundPolicy, Protocol,
        RouteBackend,
    },
    retry::Budget,
};
use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};
use tokio::sync::watch;

/// The policy a connection follows: the controller's latest, or forwarding to the original
/// destination until (unless) the controller answers.
#[derive(Debug)]
pub struct Policies {
    orig: SocketAddr,
    rx: watch::Receiver<Option<Arc<OutboundPolicy>>>,
    fallback: Arc<OutboundPolicy>,
    budget: OnceLock<Arc<Budget>>,
}

impl Policies {
    /// Looks up `orig`, waiting up to the discovery timeout for a first answer.
    pub async fn resolve(discovery: &Discovery, orig: SocketAddr) -> Self {
        let mut rx = discovery.outbound(orig);
        if rx.borrow().is_none() {
            let wait = tokio::time::timeout(discovery.timeout, rx.wait_for(Option::is_some)).await;
            if wait.is_err() {
                tracing::info!(%orig, after = ?discovery.timeout, "no policy from the controller in time; forwarding to the original destination");
            }
        }
        Self {
            orig,
            rx,
            fallback: Arc::new(OutboundPolicy::forward(orig)),
            budget: OnceLock::new(),
        }
    }

    /// The retry budget of the service this connection calls, looked up on first use.
    pub fn budget(&self, discovery: &Discovery) -> &Arc<Budget> {
        self.budget.get_or_init(|| discovery.budget(self.orig))
    }

    /// The policy now.
    pub fn current(&self) -> Arc<OutboundPolicy> {
        self.rx
            .borrow()
            .clone()
            .unwrap_or_else(|| self.fallback.clone())
    }
}

/// The routes for `version` in `policy`, or `None` if the policy says the target is opaque.
pub fn http_routes(policy: &OutboundPolicy, version: Version) -> Option<&HttpRoutes> {
    match (&policy.protocol, version) {
        (Protocol::Detect { http1, .. }, Version::Http1) => Some(http1),
        (Protocol::Detect { http2, .. }, Version::Http2) => Some(http2),
        (Protocol::Http1(r) | Protocol::Http2(r) | Protocol::Grpc(r), _) => Some(r),
        (Protocol::Opaque(_), _) => None,
    }
}

/// The opaque routes of `policy`, if it has any.
pub fn opaque_routes(policy: &OutboundPolicy) -> Option<&OpaqueRoutes> {
    match &policy.protocol {
        Protocol::Detect { opaque, .. } | Protocol::Opaque(opaque) => Some(opaque),
        _ => None,
    }
}

/// Where an opaque connection goes.
#[derive(Debug)]
pub struct OpaqueTarget {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// The identity a meshed endpoint must prove.
    pub server_id: Option<Arc<str>>,
    /// Counts the connection against the endpoint while it is open.
    pub guard: Option<ConnGuard>,
}

impl OpaqueTarget {
    /// Straight to `addr`, in plaintext.
    pub fn direct(addr: SocketAddr) -> Self {
        Self {
            addr,
            server_id: None,
            guard: None,
        }
    }
}

/// Where an opaque connection goes.
pub async fn opaque_target(
    discovery: &Discovery,
    routes: &OpaqueRoutes,
) -> Result<OpaqueTarget, String> {
    if policy::denied(&routes.filters).is_some() {
        return Err(format!("route {} forbids this connection", routes.name));
    }
    let picked = match &routes.distribution {
        Distribution::FirstAvailable(list) => first_available(discovery, list).await,
        other => other.pick(),
    };
    let backend = picked.ok_or_else(|| format!("route {} has no backends", routes.name))?;
    match &backend.backend.kind {
        BackendKind::Forward { addr, identity } => Ok(OpaqueTarget {
            addr: *addr,
            server_id: identity.clone(),
            guard: None,
        }),
        BackendKind::Unavailable => Err(format!("backend {} is unavailable", backend.backend.name)),
        BackendKind::Balancer {
            path,
            default_rtt,
            decay,
            ..
        } => {
            let eps = endpoints(discovery, path, *default_rtt, *decay).await;
            let ep = balance::p2c_least_connections(&eps.endpoints)
                .ok_or_else(|| format!("no endpoints for {path}"))?;
            Ok(OpaqueTarget {
                addr: ep.addr,
                server_id: ep.identity.clone(),
                guard: Some(ep.open_connection()),
            })
        }
    }
}

/// The endpoints of a balanced backend, waiting up to the discovery timeout for the first
/// answer.
async fn endpoints(
    source: &impl EndpointSource,
    path: &str,
    rtt: std::time::Duration,
    decay: std::time::Duration,
) -> Endpoints {
    let mut rx = source.receiver(path, rtt, decay);
    if !rx.borrow().resolved {
        let _ = tokio::time::timeout(source.timeout(), rx.wait_for(|e| e.resolved)).await;
    }
    rx.borrow().clone()
}

/// Where backends' endpoint channels come from: the proxy-wide discovery cache (once per
/// opaque connection), or an HTTP connection's own cache of it (per request, without the
/// shared lock).
trait EndpointSource {
    fn receiver(&self, path: &str, rtt: Duration, decay: Duration) -> watch::Receiver<Endpoints>;
    fn timeout(&self) -> Duration;
}

impl EndpointSource for Discovery {
    fn receiver(&self, path: &str, rtt: Duration, decay: Duration) -> watch::Receiver<Endpoints> {
        self.endpoints(path, rtt, decay)
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The first backend that can take a request: one that forwards, or a balancer with
/// endpoints. If none can, the first (whose failure the client then sees).
async fn first_available<'a>(
    source: &impl EndpointSource,
    list: &'a [RouteBackend],
) -> Option<&'a RouteBackend> {
    for rb in list {
        match &rb.backend.kind {
            BackendKind::Forward { .. } => return Some(rb),
            BackendKind::Balancer {
                path,
                default_rtt,
                decay,
                ..
            } => {
                if !endpoints(source, path, *default_rtt, *decay)
                    .await
                    .endpoints
                    .is_empty()
                {
                    return Some(rb);
                }
            }
            BackendKind::Unavailable => {}
        }
    }
    list.first()
}

#[cfg(test)]
mod tests;
