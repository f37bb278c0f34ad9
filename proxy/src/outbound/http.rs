//! The HTTP service of one outbound connection. Each request takes a route; within the route's
//! request timeout (or the call's `grpc-timeout`) it makes one or more attempts, each taking a
//! backend by weight and an endpoint by P2C over peak-EWMA that failure accrual has not
//! ejected, within the route's per-attempt timeout. A failed attempt is retried when the
//! route says so, the request body could be kept, and the service's retry budget allows.

use super::{EndpointSource, Policies, first_available, http_routes};
use crate::{
    balance::{self, Ejected, Endpoint, Pick},
    discover::{Discovery, Endpoints},
    http::{
        ProxyBody, ReqBody, Version,
        client::Client,
        deadline,
        forward::{self, Failed, error, upstream_error},
        headers,
        notes::RequestNotes,
        replay::Replay,
    },
    metrics::{FailFast, ResilienceMetrics},
    policy::{
        self, BackendKind, Distribution, FailureAccrual, HttpRoute, OutboundPolicy, Queue, Retry,
        RetryOn, Rule, Synthetic,
    },
    proxy::Proxy,
    retry,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header, request};
use http_body::Body as _;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::sync::watch;

/// How many other endpoints a bodiless idempotent request may try when an endpoint refuses
/// the connection (a pod that just went away, before discovery says so).
const CONNECT_RETRIES: usize = 2;

/// gRPC codes that mean the server failed (for failure accrual): UNKNOWN, DEADLINE_EXCEEDED,
/// INTERNAL, UNAVAILABLE, DATA_LOSS. The others are answers about the call.
const GRPC_SERVER_FAILURES: [u32; 5] = [2, 4, 13, 14, 15];

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

/// What every attempt of one request shares.
struct Exchange<'a> {
    policy: &'a OutboundPolicy,
    route: &'a HttpRoute,
    rule: &'a Rule,
    accrual: Option<&'a FailureAccrual>,
    /// The request is gRPC: timeouts answer `DEADLINE_EXCEEDED`.
    grpc: bool,
    /// The request may be sent again after it reached the server: its method is idempotent
    /// (RFC 9110), or every match of the rule names it (the route says so).
    repeatable: bool,
    /// The limit on each attempt: the rule's response timeout, tightened by the retry's.
    attempt_limit: Option<Duration>,
    /// Where the outer layers learn the request's backend, endpoint and retries.
    notes: Option<RequestNotes>,
}

/// How one attempt ended.
struct Attempt {
    rsp: Response<ProxyBody>,
    /// The endpoint it went to, if it got that far.
    endpoint: Option<SocketAddr>,
    failure: Option<Failure>,
}

/// Why an attempt got no response from the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The connection failed: nothing was sent.
    Connect,
    /// The upstream failed after the request was (perhaps partly) sent.
    Upstream,
    /// The attempt ran out of time.
    Timeout,
    /// The proxy answered itself (no backend, no endpoints, a filter): retrying cannot help.
    Local,
}

/// Why [`send_within`] got no response.
enum SendError {
    Request(&'static str),
    Upstream(hyper_util::client::legacy::Error),
    Timeout(Duration),
}

// === impl RouteHttp ===

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

    fn resilience(&self) -> &ResilienceMetrics {
        self.proxy.metrics.resilience()
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

// === routing a request ===

impl RouteHttp {
    async fn route(self, req: Request<Incoming>) -> Response<ProxyBody> {
        let policy = self.policies.current();
        let Some(routes) = http_routes(&policy, self.version) else {
            return error(
                StatusCode::BAD_GATEWAY,
                "the target is opaque; HTTP is not routed to it",
            );
        };
        let notes = RequestNotes::of(&req).cloned();
        let (mut parts, body) = req.into_parts();
        let m = routes.select(&parts.method, &parts.uri, &parts.headers);
        if let Some(n) = &notes {
            n.update(|n| {
                n.parent = Some(policy.parent.clone());
                n.route = m.as_ref().map(|m| m.route.name.clone());
            });
        }
        let Some(m) = m else {
            return error(StatusCode::NOT_FOUND, "no route matches the request");
        };
        if let Err(synthetic) = m.apply_request(&mut parts) {
            return respond(synthetic);
        }
        let x = Exchange {
            policy: &policy,
            route: m.route,
            rule: m.rule,
            accrual: routes.failure_accrual.as_ref(),
            grpc: deadline::is_grpc(&parts.headers),
            repeatable: retry::idempotent(&parts.method) || m.rule.names_method(&parts.method),
            attempt_limit: deadline::tighter(
                m.rule.timeouts.response,
                m.rule.retry.as_ref().and_then(|r| r.timeout),
            ),
            notes,
        };
        let limit = deadline::tighter(
            m.rule.timeouts.request,
            deadline::grpc_timeout(&parts.headers),
        );
        let work = self.exchange(&x, parts, body);
        let Some(limit) = limit else {
            return work.await;
        };
        match tokio::time::timeout(limit, work).await {
            Ok(rsp) => rsp,
            Err(_) => {
                self.resilience()
                    .timeout(&policy.parent, &m.route.name, true);
                let mut rsp = deadline::timed_out(x.grpc, "request", limit);
                policy::apply_response(&m.rule.filters, rsp.headers_mut());
                rsp
            }
        }
    }

    /// Every attempt of one request: one, or as many as the route's retry policy and the
    /// service's budget allow.
    async fn exchange(
        &self,
        x: &Exchange<'_>,
        parts: request::Parts,
        body: Incoming,
    ) -> Response<ProxyBody> {
        let Some(retry) = x.retry(&parts) else {
            let req = Request::from_parts(parts, Either::Left(body));
            return self.attempt(x, req, None).await.rsp;
        };
        let budget = self.policies.budget(&self.discovery).clone();
        budget.deposit();
        let head = Head::of(&parts);
        let replay = Replay::new(body, retry.max_request_bytes as usize);
        let mut first = Some(Request::from_parts(parts, Either::Right(replay.clone())));
        let mut retries = 0;
        let mut avoid = None;
        loop {
            let req = first
                .take()
                .unwrap_or_else(|| head.request(Either::Right(replay.clone())));
            let done = self.attempt(x, req, avoid).await;
            let again = done.retryable(&retry.on, x.repeatable)
                && retries < retry.max_retries
                && replay.can_replay();
            if !again {
                return done.rsp;
            }
            if !budget.withdraw() {
                self.resilience()
                    .budget_exhausted(&x.policy.parent, &x.route.name);
                tracing::debug!(parent = %x.policy.parent, route = %x.route.name, "retry budget spent; not retrying");
                return done.rsp;
            }
            self.resilience().retry(&x.policy.parent, &x.route.name);
            if let Some(n) = &x.notes {
                n.update(|n| n.retries += 1);
            }
            if let Some(b) = &retry.backoff {
                tokio::time::sleep(retry::backoff(b, retries, fastrand::f64())).await;
            }
            retries += 1;
            avoid = done.endpoint;
        }
    }

    /// One attempt: a backend by weight, its filters, and an endpoint.
    async fn attempt(
        &self,
        x: &Exchange<'_>,
        req: Request<ReqBody>,
        avoid: Option<SocketAddr>,
    ) -> Attempt {
        let picked = match &x.rule.backends {
            Distribution::FirstAvailable(list) => first_available(self, list).await,
            other => other.pick(),
        };
        let Some(backend) = picked else {
            let why = "the route has no backend with a weight";
            return Attempt::local(error(StatusCode::SERVICE_UNAVAILABLE, why));
        };
        let (mut parts, body) = req.into_parts();
        if let Err(synthetic) = policy::apply_request(&backend.filters, &mut parts) {
            return Attempt::local(respond(synthetic));
        }
        let req = Request::from_parts(parts, body);
        let name = &backend.backend.name;
        if let Some(n) = &x.notes {
            n.update(|n| n.backend = Some(name.clone()));
        }
        let mut done = match &backend.backend.kind {
            BackendKind::Forward { addr, identity } => {
                self.forward(x, *addr, identity.as_ref(), req).await
            }
            BackendKind::Unavailable => Attempt::local(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("backend {name} is unavailable"),
            )),
            BackendKind::Balancer {
                path,
                default_rtt,
                decay,
                queue,
            } => match self.ready(path, *default_rtt, *decay, queue).await {
                Ok(eps) => {
                    self.balance(x, name, path, &eps.endpoints, req, avoid)
                        .await
                }
                Err(why) => self.failfast(name, path, queue, why),
            },
        };
        policy::apply_response(&x.rule.filters, done.rsp.headers_mut());
        policy::apply_response(&backend.filters, done.rsp.headers_mut());
        done
    }

    /// The endpoints of a balanced backend. A backend the controller resolved to no endpoints
    /// is waited for in its bounded queue, up to its fail-fast timeout.
    async fn ready(
        &self,
        path: &str,
        rtt: Duration,
        decay: Duration,
        queue: &Queue,
    ) -> Result<Endpoints, FailFast> {
        let eps = super::endpoints(self, path, rtt, decay).await;
        if !eps.endpoints.is_empty() || !eps.resolved || eps.not_found {
            return Ok(eps);
        }
        let Some(_slot) = QueueSlot::take(self.discovery.queue(path), queue.capacity) else {
            return Err(FailFast::QueueFull);
        };
        let mut rx = self.receiver(path, rtt, decay);
        let wait = rx.wait_for(|e| !e.endpoints.is_empty());
        match tokio::time::timeout(queue.failfast, wait).await {
            Ok(Ok(eps)) => Ok(eps.clone()),
            _ => Err(FailFast::NoEndpoints),
        }
    }

    /// The 503 a backend answers without sending.
    fn failfast(&self, backend: &str, path: &str, queue: &Queue, why: FailFast) -> Attempt {
        self.resilience().failfast(backend, why);
        let reason = match why {
            FailFast::AllEjected => {
                format!("every endpoint of {path} is ejected after consecutive failures")
            }
            FailFast::NoEndpoints => {
                format!("no endpoints for {path} within {:?}", queue.failfast)
            }
            FailFast::QueueFull => format!(
                "{} requests already wait for endpoints of {path}",
                queue.capacity
            ),
        };
        Attempt::local(error(StatusCode::SERVICE_UNAVAILABLE, &reason))
    }

    /// Sends to one address (a Forward backend); a meshed pod named by `server_id` is reached
    /// over mTLS like any balanced endpoint.
    async fn forward(
        &self,
        x: &Exchange<'_>,
        target: SocketAddr,
        server_id: Option<&Arc<str>>,
        req: Request<ReqBody>,
    ) -> Attempt {
        let client = self.client(target, server_id.map(|s| &**s));
        let sent = send_within(&client, target, &self.proxy, req, x.attempt_limit).await;
        self.finish(x, target, server_id, sent)
    }

    /// Sends to an endpoint picked by P2C peak-EWMA among those not ejected, preferring one
    /// other than `avoid` (the previous attempt's). A bodiless idempotent request whose
    /// connection is refused tries up to [`CONNECT_RETRIES`] other endpoints: nothing was
    /// sent, so this is safe, and it hides a pod that died before discovery noticed.
    async fn balance(
        &self,
        x: &Exchange<'_>,
        backend: &str,
        path: &str,
        endpoints: &[Arc<Endpoint>],
        req: Request<ReqBody>,
        avoid: Option<SocketAddr>,
    ) -> Attempt {
        let resend = resendable(&req).then(|| Head::of_request(&req));
        let mut req = Some(req);
        let mut refused: Vec<SocketAddr> = Vec::new();
        loop {
            let candidates: Vec<Arc<Endpoint>>;
            let pool = if refused.is_empty() && avoid.is_none() {
                endpoints
            } else {
                candidates = endpoints
                    .iter()
                    .filter(|e| !refused.contains(&e.addr) && Some(e.addr) != avoid)
                    .cloned()
                    .collect();
                match (candidates.is_empty(), refused.is_empty()) {
                    // Only the endpoint to avoid is left: it is better than none.
                    (true, true) => endpoints,
                    _ => &candidates[..],
                }
            };
            let (ep, admit) = match balance::p2c_available(pool) {
                Pick::Endpoint(ep, admit) => (ep.clone(), admit),
                Pick::AllEjected => {
                    let queue = Queue::default();
                    return self.failfast(backend, path, &queue, FailFast::AllEjected);
                }
                Pick::Empty => {
                    let why = format!("no endpoints for {path}");
                    return Attempt::local(error(StatusCode::SERVICE_UNAVAILABLE, &why));
                }
            };
            let resent = || {
                resend
                    .as_ref()
                    .map(|h| h.request(Either::Right(Replay::empty())))
            };
            let Some(this_req) = req.take().or_else(resent) else {
                return Attempt::local(error(StatusCode::BAD_GATEWAY, "request cannot be retried"));
            };
            let in_flight = ep.start_as(admit);
            let client = self.client(ep.addr, ep.identity.as_deref());
            let sent = send_within(&client, ep.addr, &self.proxy, this_req, x.attempt_limit).await;
            let success = sent.as_ref().is_ok_and(|rsp| !failed(rsp));
            if !matches!(sent, Err(SendError::Request(_)))
                && let Some(ejected) = in_flight.finish(success, x.accrual)
            {
                self.ejected(backend, ep.addr, ejected);
            }
            if let Err(SendError::Upstream(e)) = &sent
                && e.is_connect()
                && resend.is_some()
                && refused.len() < CONNECT_RETRIES
            {
                tracing::debug!(endpoint = %ep.addr, %path, error = %e, "endpoint refused; trying another");
                refused.push(ep.addr);
                continue;
            }
            return self.finish(x, ep.addr, ep.identity.as_ref(), sent);
        }
    }

    /// The attempt for what [`send_within`] returned.
    fn finish(
        &self,
        x: &Exchange<'_>,
        target: SocketAddr,
        server_id: Option<&Arc<str>>,
        sent: Result<Response<ProxyBody>, SendError>,
    ) -> Attempt {
        if let Some(n) = &x.notes {
            n.update(|n| {
                n.endpoint = Some(target);
                n.server_id = server_id.cloned();
            });
        }
        let (rsp, failure) = match sent {
            Ok(rsp) => (rsp, None),
            Err(SendError::Request(why)) => {
                (error(StatusCode::BAD_REQUEST, why), Some(Failure::Local))
            }
            Err(SendError::Upstream(e)) => {
                let failure = if e.is_connect() {
                    Failure::Connect
                } else {
                    Failure::Upstream
                };
                (upstream_error(target, &e), Some(failure))
            }
            Err(SendError::Timeout(after)) => {
                self.resilience()
                    .timeout(&x.policy.parent, &x.route.name, false);
                (
                    deadline::timed_out(x.grpc, "response", after),
                    Some(Failure::Timeout),
                )
            }
        };
        Attempt {
            rsp,
            endpoint: Some(target),
            failure,
        }
    }

    fn ejected(&self, backend: &str, endpoint: SocketAddr, ejected: Ejected) {
        self.resilience().ejection(backend, endpoint);
        tracing::info!(%endpoint, %backend, for_ = ?ejected.for_, "endpoint ejected after consecutive failures");
    }
}

/// Sends `req` within `limit` (to response headers).
async fn send_within(
    client: &Client,
    target: SocketAddr,
    proxy: &Proxy,
    req: Request<ReqBody>,
    limit: Option<Duration>,
) -> Result<Response<ProxyBody>, SendError> {
    let send = forward::send(client, target, &proxy.drain, req);
    let sent = match limit {
        None => send.await,
        Some(limit) => match tokio::time::timeout(limit, send).await {
            Ok(sent) => sent,
            Err(_) => return Err(SendError::Timeout(limit)),
        },
    };
    sent.map_err(|e| match e {
        Failed::Request(why) => SendError::Request(why),
        Failed::Upstream(e) => SendError::Upstream(e),
    })
}

/// Whether a response counts as the endpoint failing: a 5xx, or a trailers-only gRPC answer
/// whose code means the server failed.
fn failed(rsp: &Response<ProxyBody>) -> bool {
    rsp.status().is_server_error()
        || retry::grpc_status(rsp.headers()).is_some_and(|c| GRPC_SERVER_FAILURES.contains(&c))
}

// === impl Exchange ===

impl Exchange<'_> {
    /// The rule's retry policy, if this request may be retried under it: not an upgrade; an
    /// idempotent method, a method every match of the rule names (the route says so), or a
    /// gRPC route (whose retry policy covers every call); and no body known to be over the
    /// limit.
    fn retry(&self, parts: &request::Parts) -> Option<&Retry> {
        let r = self.rule.retry.as_ref().filter(|r| r.max_retries > 0)?;
        if headers::wants_upgrade(&parts.method, &parts.headers) {
            return None;
        }
        if !(self.repeatable || matches!(r.on, RetryOn::GrpcCodes(_))) {
            return None;
        }
        let too_long =
            content_length(&parts.headers).is_some_and(|n| n > u64::from(r.max_request_bytes));
        (!too_long).then_some(r)
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

// === impl Attempt ===

impl Attempt {
    fn local(rsp: Response<ProxyBody>) -> Self {
        Self {
            rsp,
            endpoint: None,
            failure: Some(Failure::Local),
        }
    }

    /// Whether the route's retry policy retries this outcome. A connection that failed sent
    /// nothing, so it is always retried; a request that may have reached the server only if
    /// it may be sent again (see [`Exchange::repeatable`]).
    fn retryable(&self, on: &RetryOn, repeatable: bool) -> bool {
        match self.failure {
            None => retry::retryable_response(on, self.rsp.status(), self.rsp.headers()),
            Some(Failure::Connect) => true,
            Some(Failure::Upstream | Failure::Timeout) => repeatable,
            Some(Failure::Local) => false,
        }
    }
}

// === a request's head, to send it again ===

#[derive(Debug)]
struct Head {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    headers: HeaderMap,
}

impl Head {
    fn of(parts: &request::Parts) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
        }
    }

    fn of_request<B>(req: &Request<B>) -> Self {
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        }
    }

    fn request(&self, body: ReqBody) -> Request<ReqBody> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// A request that may be sent again after a refused connection: idempotent, without a body,
/// and not an upgrade.
fn resendable(req: &Request<ReqBody>) -> bool {
    retry::idempotent(req.method())
        && req.body().is_end_stream()
        && !req.headers().contains_key(header::UPGRADE)
}

/// A place in a backend's queue of requests waiting for endpoints; dropping it leaves.
struct QueueSlot(Arc<AtomicUsize>);

impl QueueSlot {
    fn take(waiting: Arc<AtomicUsize>, capacity: usize) -> Option<Self> {
        if waiting.fetch_add(1, Ordering::AcqRel) >= capacity {
            waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(waiting))
    }
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
        Synthetic::GrpcFailure { code, message } => deadline::grpc_error(code, &message),
    }
}
