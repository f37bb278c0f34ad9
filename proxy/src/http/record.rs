//! The outermost layer of every HTTP connection: it counts requests and responses and measures
//! the time to response headers, and — when spans or access logs are on — observes each
//! request too (see [`super::observe`]). It attaches the request's [`RequestNotes`], which the
//! layers inside fill in, and labels the metrics, span and log line with what they say.

use super::{ProxyBody, notes::RequestNotes, observe::Observer};
use crate::metrics::HttpMetrics;
use http::{Request, Response};
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};
use tokio::time::Instant;

/// Wraps a service with [`Record`].
#[derive(Clone, Debug)]
pub struct RecordLayer {
    metrics: HttpMetrics,
    observer: Option<Observer>,
}

impl RecordLayer {
    /// Records into `metrics`, and observes with `observer` when spans or access logs are on.
    pub fn new(metrics: HttpMetrics, observer: Option<Observer>) -> Self {
        Self { metrics, observer }
    }
}

/// Records every request through the inner service.
#[derive(Clone, Debug)]
pub struct Record<S> {
    inner: S,
    layer: RecordLayer,
}

impl<S> tower::Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            layer: self.clone(),
        }
    }
}

impl<S, B> tower::Service<Request<B>> for Record<S>
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
        let start = Instant::now();
        let notes = RequestNotes::default();
        req.extensions_mut().insert(notes.clone());
        let observation = self.layer.observer.as_ref().map(|o| o.start(&mut req));
        let metrics = self.layer.metrics.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let took = start.elapsed();
            let ms = took.as_secs_f64() * 1_000.0;
            let notes = notes.get();
            let rsp = res.as_ref().ok();
            match rsp {
                Some(rsp) => {
                    let status = rsp.status();
                    let failed = status.is_server_error() || grpc_failed(rsp.headers());
                    metrics.response(&notes, status.as_u16(), failed, ms);
                }
                None => metrics.response(&notes, 0, true, ms),
            }
            if let Some(o) = observation {
                o.finish(rsp, &notes, took);
            }
            res
        })
    }
}

/// Whether a trailers-only gRPC answer carries an error status in its headers.
pub fn grpc_failed(headers: &http::HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() != b"0")
}
