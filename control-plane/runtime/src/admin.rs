//! The controller's admin server: `/live`, `/ready` (the source has loaded), `/index`
//! (object counts and the files source's invalid documents, as JSON) and `/identity` (the
//! issuer and the controller's own certificate, as JSON).

use crate::{SourceState, Status, identity::IdentityStatus};
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
            json(&body)
        }
        "/identity" => json(&identity(status.identity.as_ref())),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /live, /ready, /index or /identity\n".to_string(),
        ),
    }
}

fn identity(status: Option<&IdentityStatus>) -> serde_json::Value {
    use weft_controller_identity::rfc3339;
    let Some(status) = status else {
        return serde_json::json!({ "enabled": false });
    };
    let issuer = status.issuer.borrow().status.clone();
    let cert = status.server_cert.borrow().clone();
    serde_json::json!({
        "enabled": true,
        "issuer": {
            "subject": issuer.subject,
            "notAfter": rfc3339(issuer.not_after),
            "loadedAt": rfc3339(issuer.loaded_at),
            "generation": issuer.generation,
            "lastReloadError": *status.reload_error.lock(),
        },
        "serverCertificate": {
            "serverName": cert.identity,
            "notAfter": rfc3339(cert.not_after),
            "renewAt": rfc3339(cert.renew_at),
            "generation": cert.generation,
        },
    })
}

fn json(body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut rsp = text(StatusCode::OK, format!("{body:#}\n"));
    rsp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    rsp
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from(body)));
    *rsp.status_mut() = status;
    rsp
}
