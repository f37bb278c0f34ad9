//! The admin server (port 4191): `/live`, `/ready`, `/metrics`, `/shutdown`.

use crate::{drain::Starter, metrics::Metrics};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};
use tokio::net::TcpListener;

/// What the admin endpoints read and do.
#[derive(Clone, Debug)]
pub struct Admin {
    /// Exported at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Set once the proxy can serve traffic; `/ready` answers 503 until then.
    pub ready: Arc<AtomicBool>,
    /// `/shutdown` starts the drain.
    pub shutdown: Starter,
}

impl Admin {
    /// Serves admin connections until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admin = self.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.handle(peer, req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(tcp), svc);
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "admin connection failed");
                }
            });
        }
    }

    /// Answers one admin request.
    pub fn handle(&self, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/live") => text(StatusCode::OK, "live\n"),
            (&Method::GET, "/ready") if self.ready.load(Ordering::Acquire) => {
                text(StatusCode::OK, "ready\n")
            }
            (&Method::GET, "/ready") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
            (&Method::GET, "/metrics") => {
                let mut rsp = Response::new(Full::new(Bytes::from(self.metrics.encode())));
                rsp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                rsp
            }
            // Only a process in the pod may stop the proxy (a Job's app when it finishes).
            (&Method::POST, "/shutdown") if is_local(peer) => {
                tracing::info!(%peer, "shutdown requested through the admin server");
                self.shutdown.start();
                text(StatusCode::OK, "shutting down\n")
            }
            (&Method::POST, "/shutdown") => text(
                StatusCode::FORBIDDEN,
                "shutdown is only accepted from localhost\n",
            ),
            (_, "/live" | "/ready" | "/metrics") => {
                text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n")
            }
            (_, "/shutdown") => text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
            _ => text(
                StatusCode::NOT_FOUND,
                "not found; try /live, /ready, /metrics or POST /shutdown\n",
            ),
        }
    }
}

fn is_local(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *rsp.status_mut() = status;
    rsp
}
