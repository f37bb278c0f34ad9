//! A layer that counts requests and responses and measures time to response headers.

use super::ProxyBody;
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
pub struct RecordLayer(pub HttpMetrics);

/// Records every request through the inner service.
#[derive(Clone, Debug)]
pub struct Record<S> {
    inner: S,
    metrics: HttpMetrics,
}

impl<S> tower::Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            metrics: self.0.clone(),
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

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.metrics.request();
        let start = Instant::now();
        let metrics = self.metrics.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let ms = start.elapsed().as_secs_f64() * 1_000.0;
            match &res {
                Ok(rsp) => {
                    let status = rsp.status();
                    // A trailers-only gRPC error carries grpc-status in the headers.
                    let grpc_failed = rsp
                        .headers()
                        .get("grpc-status")
                        .is_some_and(|v| v.as_bytes() != b"0");
                    metrics.response(status.as_u16(), status.is_server_error() || grpc_failed, ms);
                }
                Err(_) => metrics.response(0, true, ms),
            }
            res
        })
    }
}
