//! Per-request authorization in front of the service that forwards to the app.

#[cfg(test)]
mod tests;

use super::{ConnMeta, NO_ROUTE_NAME, PortPolicy, authorize};
use crate::http::{ProxyBody, forward::error, notes::RequestNotes};
use bytes::Bytes;
use futures_util::future::{Either, Ready, ready};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use std::{
    sync::Arc,
    task::{Context, Poll},
};

/// The header that tells the app the meshed client's identity. The proxy removes any the
/// client sent, so only the proxy can set it.
pub const CLIENT_ID: HeaderName = HeaderName::from_static("weft-client-id");

/// Routes and authorizes each request of one connection before `S` forwards it.
///
/// Per request, with the port's latest policy: select the route (when the server has routes;
/// none matching is 404 `no route`), authorize the client against the route's authorizations
/// (or the server's when it has no routes; none admitting is 403 `unauthorized: ...`), apply
/// the route's filters, and set `weft-client-id` for a meshed client. A refused request never
/// reaches `S`.
#[derive(Clone, Debug)]
pub struct AuthorizeHttp<S> {
    inner: S,
    conn: Arc<Conn>,
}

#[derive(Debug)]
struct Conn {
    port: PortPolicy,
    meta: ConnMeta,
    /// `weft-client-id` for a meshed client, made once per connection.
    client_id: Option<HeaderValue>,
    /// The route label of requests on a server without routes.
    no_route: Arc<str>,
}

impl<S> AuthorizeHttp<S> {
    /// Authorizes `meta`'s requests by `port`'s policy before `inner` sees them.
    pub fn new(port: PortPolicy, meta: ConnMeta, inner: S) -> Self {
        let client_id = meta.tls.client_id().and_then(|id| {
            HeaderValue::from_str(id)
                .inspect_err(|_| {
                    tracing::warn!(
                        client_id = id,
                        "client identity is not a valid header value; not passing it on"
                    )
                })
                .ok()
        });
        Self {
            inner,
            conn: Arc::new(Conn {
                port,
                meta,
                client_id,
                no_route: Arc::from(NO_ROUTE_NAME),
            }),
        }
    }
}

impl<S, B> tower::Service<Request<B>> for AuthorizeHttp<S>
where
    S: tower::Service<Request<B>, Response = Response<ProxyBody>>,
{
    type Response = Response<ProxyBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<ProxyBody>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match self.conn.check(req) {
            Checked::Forward(req) => Either::Right(self.inner.call(req)),
            Checked::Refuse(rsp) => Either::Left(ready(Ok(rsp))),
        }
    }
}

/// What becomes of a request.
enum Checked<B> {
    /// On to the app.
    Forward(Request<B>),
    /// Answered by the proxy: no route, unauthorized, or a route filter's response.
    Refuse(Response<ProxyBody>),
}

impl Conn {
    /// The request to forward, or the response that refuses it.
    fn check<B>(&self, req: Request<B>) -> Checked<B> {
        let policy = self.port.current();
        let notes = RequestNotes::of(&req).cloned();
        let (mut parts, body) = req.into_parts();
        // Before anything else, so neither a filter nor the app ever sees a forged one.
        parts.headers.remove(&CLIENT_ID);

        let (route, authzs, matched) = if policy.http_routes.is_empty() {
            (&self.no_route, &policy.authorizations[..], None)
        } else {
            let Some(m) = policy
                .http_routes
                .select(&parts.method, &parts.uri, &parts.headers)
            else {
                tracing::debug!(server = %policy.name, method = %parts.method, path = parts.uri.path(), "no inbound route matches");
                return Checked::Refuse(refuse(&parts, Refusal::NoRoute, "no route"));
            };
            (m.name, m.authorizations, Some(m.matched))
        };

        if let Some(n) = &notes {
            n.update(|n| {
                n.parent = Some(policy.name.clone());
                n.route = Some(route.clone());
            });
        }
        let tls = self.meta.tls.is_mesh();
        let metrics = self.port.metrics().inbound_authz();
        match authorize(&policy, authzs, &self.meta) {
            Ok(authz) => metrics.http_allow(&policy.name, route, &authz.name, tls),
            Err(denied) => {
                metrics.http_deny(&policy.name, route, tls);
                let denied = match matched {
                    Some(_) => denied.on_route(route.clone()),
                    None => denied,
                };
                tracing::debug!(peer = %self.meta.peer, method = %parts.method, path = parts.uri.path(), error = %denied, "request denied");
                return Checked::Refuse(refuse(&parts, Refusal::Unauthorized, &denied.to_string()));
            }
        }

        if let Some(m) = matched
            && let Err(synthetic) = m.apply_request(&mut parts)
        {
            let rsp = synthetic.to_response();
            return Checked::Refuse(
                rsp.map(|()| http_body_util::Either::Right(Full::new(Bytes::new()))),
            );
        }
        if let Some(id) = &self.client_id {
            parts.headers.insert(CLIENT_ID, id.clone());
        }
        Checked::Forward(Request::from_parts(parts, body))
    }
}

/// Why the proxy refused a request itself.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    NoRoute,
    Unauthorized,
}

/// The refusal in the caller's protocol: 404/403 with `weft-proxy-error`, or for a gRPC
/// request a trailers-only response with `grpc-status` UNIMPLEMENTED (12) or
/// PERMISSION_DENIED (7), which gRPC clients report as such rather than as a transport error.
fn refuse(req: &http::request::Parts, why: Refusal, reason: &str) -> Response<ProxyBody> {
    let (status, grpc_status) = match why {
        Refusal::NoRoute => (StatusCode::NOT_FOUND, "12"),
        Refusal::Unauthorized => (StatusCode::FORBIDDEN, "7"),
    };
    let grpc = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    let mut rsp = error(status, reason);
    if grpc {
        *rsp.status_mut() = StatusCode::OK;
        *rsp.body_mut() = http_body_util::Either::Right(Full::new(Bytes::new()));
        let h = rsp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        h.insert("grpc-status", HeaderValue::from_static(grpc_status));
        if let Ok(v) = HeaderValue::from_str(reason) {
            h.insert("grpc-message", v);
        }
    }
    rsp
}
