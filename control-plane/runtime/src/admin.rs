//! The controller's admin server: `/live`, `/ready` (the source has loaded), and `/index`
//! (object counts and the files source's invalid documents, as JSON).

use crate::{SourceState, Status};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::{convert::Infallible, net::SocketAddr};
use tokio::net::TcpListener;

pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (admin): {e}"))
}

pub(crate) async fn serve(listener: TcpListener, status: Status) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let status = status.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let status = status.clone();
                async move { Ok::<_, Infallible>(handle(&status, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

fn handle(status: &Status, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let state = status.source.borrow().clone();
    match req.uri().path() {
        "/live" => text(StatusCode::OK, "live\n".to_string()),
        "/ready" => match state {
            SourceState::Files(_) | SourceState::Kube => {
                text(StatusCode::OK, "ready\n".to_string())
            }
            SourceState::Starting => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "source not loaded yet\n".to_string(),
            ),
            SourceState::Failed(e) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("source failed: {e}\n"),
            ),
        },
        "/index" => {
            let counts = status.index.write().counts();
            let (generation, errors) = match &state {
                SourceState::Files(r) => (
                    r.generation,
                    r.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                ),
                _ => (0, vec![]),
            };
            let body = serde_json::json!({
                "counts": counts,
                "files": { "generation": generation, "invalid": errors },
            });
            let mut rsp = text(StatusCode::OK, format!("{body:#}\n"));
            rsp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            rsp
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /live, /ready or /index\n".to_string(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from(body)));
    *rsp.status_mut() = status;
    rsp
}
