//! A layer that makes each request visible: an OpenTelemetry span joined to the caller's trace
//! (server span inbound, client span outbound), whose context goes on in the forwarded
//! request's headers, and an access log line. Installed only when one of them is on, so a
//! proxy with neither pays nothing for it.

mod access;
mod span;

pub use access::{AccessLogger, Line};

use super::{ProxyBody, notes::RequestNotes};
use crate::{metrics::Direction, trace::Tracing};
use http::{Request, Response};
use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};
use tokio::time::Instant;

/// What the observe layer does, for the whole proxy.
#[derive(Clone, Debug, Default)]
pub struct Observe {
    /// Spans, when a collector is configured.
    pub tracing: Option<Arc<Tracing>>,
    /// Access log lines, when asked for.
    pub access_log: Option<AccessLogger>,
}

impl Observe {
    /// Whether anything is on: otherwise the layer is left out.
    pub fn is_on(&self) -> bool {
        self.tracing.is_some() || self.access_log.is_some()
    }

    /// The layer for one connection.
    pub fn layer(&self, conn: ConnInfo) -> ObserveLayer {
        ObserveLayer {
            observe: self.clone(),
            conn: Arc::new(conn),
        }
    }
}

/// What a connection's requests share.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// inbound | outbound.
    pub direction: Direction,
    /// The client's address.
    pub peer: SocketAddr,
    /// Where the connection was going (its original destination).
    pub target: SocketAddr,
    /// Inbound: the meshed client's identity.
    pub client_id: Option<Arc<str>>,
}

/// Wraps a service with [`ObserveService`].
#[derive(Clone, Debug)]
pub struct ObserveLayer {
    observe: Observe,
    conn: Arc<ConnInfo>,
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> ObserveService<S> {
        ObserveService {
            inner,
            observe: self.observe.clone(),
            conn: self.conn.clone(),
        }
    }
}

/// Spans and access-logs every request through the inner service.
#[derive(Clone, Debug)]
pub struct ObserveService<S> {
    inner: S,
    observe: Observe,
    conn: Arc<ConnInfo>,
}

impl<S, B> tower::Service<Request<B>> for ObserveService<S>
where
    S: tower::Service<Request<B>, Response = Response<ProxyBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let started = (Instant::now(), SystemTime::now());
        let notes = RequestNotes::of(&req).cloned().unwrap_or_default();
        let span = self
            .observe
            .tracing
            .as_ref()
            .map(|t| span::RequestSpan::start(t, &self.conn, &mut req));
        let line = self
            .observe
            .access_log
            .as_ref()
            .map(|log| (log.clone(), Line::of(&req, &self.conn, started.1)));
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let took = started.0.elapsed();
            let notes = notes.get();
            let rsp = res.as_ref().ok();
            if let Some(span) = span {
                span.end(rsp, &notes);
            }
            if let Some((log, line)) = line {
                log.write(line.finish(rsp, &notes, took));
            }
            res
        })
    }
}
