//! Forwards a request to the connection's target over the pooled client.

use super::{PROXY_ERROR, ProxyBody, ReqBody, client::Client, headers};
use crate::drain::Drain;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header, uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy;
use hyper_util::rt::TokioIo;
use std::{
    convert::Infallible,
    error::Error as _,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

/// The innermost service: sends each request to `target` and streams the response back.
#[derive(Clone, Debug)]
pub struct Forward {
    client: Client,
    target: SocketAddr,
    drain: Drain,
}

impl Forward {
    /// Forwards to `target` through `client`; upgraded tunnels are tracked by `drain`.
    pub fn new(client: Client, target: SocketAddr, drain: Drain) -> Self {
        Self {
            client,
            target,
            drain,
        }
    }
}

impl tower::Service<Request<Incoming>> for Forward {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}

impl Forward {
    async fn forward(self, req: Request<Incoming>) -> Response<ProxyBody> {
        let req = req.map(Either::Left);
        match send(&self.client, self.target, &self.drain, req).await {
            Ok(rsp) => rsp,
            Err(Failed::Request(why)) => error(StatusCode::BAD_REQUEST, why),
            Err(Failed::Upstream(e)) => upstream_error(self.target, &e),
        }
    }
}

/// Why [`send`] got no response.
#[derive(Debug)]
pub enum Failed {
    /// The request cannot be forwarded as it is.
    Request(&'static str),
    /// The upstream failed before answering; `is_connect()` means nothing was sent.
    Upstream(legacy::Error),
}

/// Sends `req` to `target` over `client` and streams the response back: makes the URI
/// absolute, strips hop-by-hop headers both ways, and splices upgraded connections (tracked by
/// `drain`).
pub async fn send(
    client: &Client,
    target: SocketAddr,
    drain: &Drain,
    mut req: Request<ReqBody>,
) -> Result<Response<ProxyBody>, Failed> {
    absolute_uri(&mut req, target).map_err(Failed::Request)?;
    let upgrade = headers::wants_upgrade(req.method(), req.headers());
    headers::strip(req.headers_mut(), upgrade);
    let downstream = upgrade.then(|| hyper::upgrade::on(&mut req));
    let is_connect = req.method() == http::Method::CONNECT;

    let mut rsp = client.request(req).await.map_err(Failed::Upstream)?;
    let switching = rsp.status() == StatusCode::SWITCHING_PROTOCOLS
        || (is_connect && rsp.status().is_success());
    if let (true, Some(downstream)) = (switching, downstream) {
        let upstream = hyper::upgrade::on(&mut rsp);
        drain.spawn(async move {
            match tokio::try_join!(downstream, upstream) {
                Ok((down, up)) => {
                    let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
                        tracing::debug!(%target, error = %e, "upgraded tunnel ended");
                    }
                }
                Err(e) => tracing::debug!(%target, error = %e, "upgrade failed"),
            }
        });
    }
    let keep_upgrade = rsp.status() == StatusCode::SWITCHING_PROTOCOLS;
    headers::strip(rsp.headers_mut(), keep_upgrade);
    Ok(rsp.map(Either::Left))
}

/// hyper's client wants absolute URIs; HTTP/1 servers see origin-form (`/path`). The
/// authority comes from `Host` (so the upstream sees what the client sent), else the target.
fn absolute_uri<B>(req: &mut Request<B>, target: SocketAddr) -> Result<(), &'static str> {
    let uri = req.uri();
    if uri.scheme().is_some() && uri.authority().is_some() {
        return Ok(());
    }
    let authority = match uri.authority() {
        Some(a) => a.clone(),
        None => match req.headers().get(header::HOST) {
            Some(host) => {
                uri::Authority::try_from(host.as_bytes()).map_err(|_| "invalid Host header")?
            }
            None => uri::Authority::try_from(target.to_string().as_str())
                .map_err(|_| "invalid target")?,
        },
    };
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| uri::PathAndQuery::from_static("/"));
    let uri = Uri::builder()
        .scheme(uri::Scheme::HTTP)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|_| "invalid request target")?;
    *req.uri_mut() = uri;
    Ok(())
}

/// The response for an upstream failure: 504 for a connect timeout, else 502.
pub fn upstream_error(
    target: SocketAddr,
    e: &hyper_util::client::legacy::Error,
) -> Response<ProxyBody> {
    let mut cause = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let timeout = e.source().is_some_and(|s| {
        s.downcast_ref::<super::client::ConnectError>()
            .is_some_and(|c| matches!(c, super::client::ConnectError::Timeout { .. }))
    });
    let (status, reason) = if timeout {
        (
            StatusCode::GATEWAY_TIMEOUT,
            format!("connect to {target} timed out"),
        )
    } else if e.is_connect() {
        (
            StatusCode::BAD_GATEWAY,
            format!("connect to {target} failed: {cause}"),
        )
    } else {
        (
            StatusCode::BAD_GATEWAY,
            format!("upstream {target} failed: {cause}"),
        )
    };
    tracing::info!(%target, %status, error = %reason, "request failed");
    error(status, &reason)
}

/// A response made by the proxy, with the reason in `weft-proxy-error`.
pub fn error(status: StatusCode, reason: &str) -> Response<ProxyBody> {
    let mut rsp = Response::new(Either::Right(Full::new(Bytes::from(format!("{reason}\n")))));
    *rsp.status_mut() = status;
    let value =
        HeaderValue::from_str(reason).unwrap_or_else(|_| HeaderValue::from_static("proxy error"));
    rsp.headers_mut().insert(PROXY_ERROR, value);
    rsp
}
