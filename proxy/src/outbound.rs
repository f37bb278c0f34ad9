//! Outbound routing: each connection follows the policy of its original destination; each
//! HTTP request takes a route, a backend by weight (the traffic split), and an endpoint by
//! power-of-two-choices over peak-EWMA load; each opaque connection takes a backend by weight
//! and the endpoint with fewer open connections.

use crate::{
    balance::{self, ConnGuard, Endpoint},
    discover::{Discovery, Endpoints},
    http::{
        ProxyBody, ReqBody, Version,
        client::Client,
        forward::{self, Failed, error, upstream_error},
    },
    policy::{
        self, BackendKind, Distribution, HttpRoutes, OpaqueRoutes, OutboundPolicy, Protocol,
        RouteBackend, Synthetic,
    },
    proxy::Proxy,
};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::{Either, Empty, Full};
use hyper::body::Incoming;
use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};
use tokio::sync::watch;

/// How many other endpoints a bodiless idempotent request may try when an endpoint refuses
/// the connection (a pod that just went away, before discovery says so).
const CONNECT_RETRIES: usize = 2;

/// The policy a connection follows: the controller's latest, or forwarding to the original
/// destination until (unless) the controller answers.
#[derive(Debug)]
pub struct Policies {
    rx: watch::Receiver<Option<Arc<OutboundPolicy>>>,
    fallback: Arc<OutboundPolicy>,
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
            rx,
            fallback: Arc::new(OutboundPolicy::forward(orig)),
        }
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
    pub server_id: Option<String>,
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

/// The HTTP service of one outbound connection.
#[derive(Clone, Debug)]
pub struct RouteHttp {
    proxy: Arc<Proxy>,
    discovery: Arc<Discovery>,
    policies: Arc<Policies>,
    version: Version,
    cache: Arc<Mutex<ConnCache>>,
}

/// What a connection's requests look up again and again, resolved once per connection: the
/// endpoint channels of its backends and the pooled client of each endpoint.
#[derive(Debug, Default)]
struct ConnCache {
    endpoints: HashMap<String, watch::Receiver<Endpoints>>,
    clients: HashMap<SocketAddr, (Option<String>, Client)>,
}

impl RouteHttp {
    /// Routes the requests of a connection that follows `policies`.
    pub fn new(
        proxy: Arc<Proxy>,
        discovery: Arc<Discovery>,
        policies: Arc<Policies>,
        version: Version,
    ) -> Self {
        Self {
            proxy,
            discovery,
            policies,
            version,
            cache: Arc::default(),
        }
    }

    fn cache(&self) -> MutexGuard<'_, ConnCache> {
        // Poisoned only if a request panicked mid-insert; the maps are still valid caches.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pooled client for `target`, which must prove `server_id` if it is meshed.
    fn client(&self, target: SocketAddr, server_id: Option<&str>) -> Client {
        let mut cache = self.cache();
        if let Some((id, c)) = cache.clients.get(&target)
            && id.as_deref() == server_id
        {
            return c.clone();
        }
        let client = self.proxy.clients.get(target, self.version, server_id);
        cache
            .clients
            .insert(target, (server_id.map(str::to_string), client.clone()));
        client
    }
}

impl EndpointSource for RouteHttp {
    fn receiver(&self, path: &str, rtt: Duration, decay: Duration) -> watch::Receiver<Endpoints> {
        let mut cache = self.cache();
        if let Some(rx) = cache.endpoints.get(path) {
            return rx.clone();
        }
        let rx = self.discovery.endpoints(path, rtt, decay);
        cache.endpoints.insert(path.to_string(), rx.clone());
        rx
    }

    fn timeout(&self) -> Duration {
        self.discovery.timeout
    }
}

impl tower::Service<Request<Incoming>> for RouteHttp {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.route(req).await) })
    }
}

impl RouteHttp {
    async fn route(self, req: Request<Incoming>) -> Response<ProxyBody> {
        let policy = self.policies.current();
        let Some(routes) = http_routes(&policy, self.version) else {
            return error(
                StatusCode::BAD_GATEWAY,
                "the target is opaque; HTTP is not routed to it",
            );
        };
        let (mut parts, body) = req.into_parts();
        let Some(m) = routes.select(&parts.method, &parts.uri, &parts.headers) else {
            return error(StatusCode::NOT_FOUND, "no route matches the request");
        };
        if let Err(synthetic) = m.apply_request(&mut parts) {
            return respond(synthetic);
        }
        let picked = match &m.rule.backends {
            Distribution::FirstAvailable(list) => first_available(&self, list).await,
            other => other.pick(),
        };
        let Some(backend) = picked else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the route has no backend with a weight",
            );
        };
        if let Err(synthetic) = policy::apply_request(&backend.filters, &mut parts) {
            return respond(synthetic);
        }
        let req = Request::from_parts(parts, body);
        let mut rsp = match &backend.backend.kind {
            BackendKind::Forward { addr, identity } => {
                self.send(*addr, identity.as_deref(), req.map(Either::Left))
                    .await
            }
            BackendKind::Unavailable => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("backend {} is unavailable", backend.backend.name),
            ),
            BackendKind::Balancer {
                path,
                default_rtt,
                decay,
            } => {
                let eps = endpoints(&self, path, *default_rtt, *decay).await;
                self.balance(path, &eps.endpoints, req).await
            }
        };
        policy::apply_response(&m.rule.filters, rsp.headers_mut());
        policy::apply_response(&backend.filters, rsp.headers_mut());
        rsp
    }

    /// Sends to one address (a Forward backend); a meshed pod named by `server_id` is reached
    /// over mTLS like any balanced endpoint.
    async fn send(
        &self,
        target: SocketAddr,
        server_id: Option<&str>,
        req: Request<ReqBody>,
    ) -> Response<ProxyBody> {
        let client = self.client(target, server_id);
        match forward::send(&client, target, &self.proxy.drain, req).await {
            Ok(rsp) => rsp,
            Err(Failed::Request(why)) => error(StatusCode::BAD_REQUEST, why),
            Err(Failed::Upstream(e)) => upstream_error(target, &e),
        }
    }

    /// Sends to an endpoint picked by P2C peak-EWMA. A bodiless idempotent request whose
    /// connection is refused tries up to [`CONNECT_RETRIES`] other endpoints: nothing was sent,
    /// so this is safe, and it hides a pod that died before discovery noticed.
    async fn balance(
        &self,
        path: &str,
        endpoints: &[Arc<Endpoint>],
        req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let retry = retryable(&req).then(|| copy_head(&req));
        let mut req = Some(req.map(Either::Left));
        let mut failed: Vec<SocketAddr> = Vec::new();
        loop {
            let candidates: Vec<Arc<Endpoint>>;
            let pool = if failed.is_empty() {
                endpoints
            } else {
                candidates = endpoints
                    .iter()
                    .filter(|e| !failed.contains(&e.addr))
                    .cloned()
                    .collect();
                &candidates[..]
            };
            let Some(ep) = balance::p2c_peak_ewma(pool).cloned() else {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("no endpoints for {path}"),
                );
            };
            let Some(this_req) = req.take().or_else(|| retry.as_ref().map(rebuild)) else {
                return error(StatusCode::BAD_GATEWAY, "request cannot be retried");
            };
            let in_flight = ep.start();
            let client = self.client(ep.addr, ep.identity.as_deref());
            match forward::send(&client, ep.addr, &self.proxy.drain, this_req).await {
                Ok(rsp) => {
                    if rsp.status().is_server_error() {
                        drop(in_flight);
                    } else {
                        in_flight.complete();
                    }
                    return rsp;
                }
                Err(Failed::Request(why)) => return error(StatusCode::BAD_REQUEST, why),
                Err(Failed::Upstream(e)) => {
                    drop(in_flight);
                    let can_retry =
                        e.is_connect() && retry.is_some() && failed.len() < CONNECT_RETRIES;
                    if !can_retry {
                        return upstream_error(ep.addr, &e);
                    }
                    tracing::debug!(endpoint = %ep.addr, %path, error = %e, "endpoint refused; trying another");
                    failed.push(ep.addr);
                }
            }
        }
    }
}

/// A request that may be sent again after a refused connection: idempotent, without a body,
/// and not an upgrade.
fn retryable(req: &Request<Incoming>) -> bool {
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    idempotent && req.body().is_end_stream() && !req.headers().contains_key(header::UPGRADE)
}

#[derive(Debug)]
struct Head {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
}

fn copy_head<B>(req: &Request<B>) -> Head {
    Head {
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
        headers: req.headers().clone(),
    }
}

fn rebuild(head: &Head) -> Request<ReqBody> {
    let mut req = Request::new(Either::Right(Empty::<Bytes>::new()));
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = head.uri.clone();
    *req.version_mut() = head.version;
    *req.headers_mut() = head.headers.clone();
    req
}

/// A response the route's filters asked for.
fn respond(synthetic: Synthetic) -> Response<ProxyBody> {
    match synthetic {
        Synthetic::Redirect { status, location } => {
            let mut rsp = Response::new(Either::Right(Full::new(Bytes::new())));
            *rsp.status_mut() = status;
            if let Ok(v) = HeaderValue::from_str(&location.to_string()) {
                rsp.headers_mut().insert(header::LOCATION, v);
            }
            rsp
        }
        Synthetic::Failure { status, message } => error(status, &message),
        Synthetic::GrpcFailure { code, message } => {
            let mut rsp = Response::new(Either::Right(Full::new(Bytes::new())));
            let h = rsp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert("grpc-status", HeaderValue::from(code));
            if let Ok(v) = HeaderValue::from_str(&message) {
                h.insert("grpc-message", v);
            }
            rsp
        }
    }
}

#[cfg(test)]
mod tests;
