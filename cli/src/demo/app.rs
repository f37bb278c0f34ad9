//! The demo's sample app: an HTTP server that says who it is, run as a process in its pod.
//! Two paths misbehave on purpose, for the resilience step: `/flaky` fails a share of
//! requests with 503, and `/slow` answers late. `/checkout` calls a backend service by name
//! and passes the trace headers on, as an instrumented app does, for the tracing step.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};
use weft_cli_local::otlp;

/// `weft demo-app` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The name it answers with (e.g. `web-v1`).
    #[arg(long)]
    pub name: String,
    /// The port to listen on (all addresses, IPv4 and IPv6).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The share of `/flaky` requests answered with 503.
    #[arg(long, default_value_t = 0.3)]
    pub flaky_rate: f64,
    /// How long `/slow` takes to answer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub slow_ms: u64,
    /// What `/checkout` calls, e.g. `http://web-v2.shop.svc.cluster.local:8080/` (names are
    /// resolved as the pod resolves them); without it `/checkout` answers 404.
    #[arg(long)]
    pub backend: Option<Uri>,
}

/// The header that names the pod that answered, and the one that repeats the caller's mesh
/// identity as the app's sidecar reported it (`weft-client-id`), or `-`.
pub use weft_cli_local::shop::{CLIENT_ID, SERVED_BY};

/// The header `/checkout` answers with the trace id it was called in (`-` without one).
pub const TRACE_ID: &str = "x-weft-demo-trace-id";

#[cfg(test)]
mod tests;

/// How long `/checkout` waits for its backend.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection's handler shares.
struct App {
    name: HeaderValue,
    body: Bytes,
    flaky_rate: f64,
    slow: Duration,
    backend: Option<Uri>,
    /// Resolves with `getaddrinfo`, so through the pod's `/etc/hosts`.
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// Serves until killed.
pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr = SocketAddr::from(([0u16; 8], args.port));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let app = Arc::new(App {
            name: HeaderValue::from_str(&args.name)?,
            body: Bytes::from(format!("hello from {}\n", args.name)),
            flaky_rate: args.flaky_rate,
            slow: Duration::from_millis(args.slow_ms),
            backend: args.backend,
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let app = app.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<_>| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(req.uri().path(), req.headers()).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    })
}

// === impl App ===

impl App {
    async fn handle(&self, path: &str, headers: &HeaderMap) -> Response<Full<Bytes>> {
        let (status, body) = match path {
            "/flaky" if fastrand::f64() < self.flaky_rate => {
                (StatusCode::SERVICE_UNAVAILABLE, self.body.clone())
            }
            "/slow" => {
                tokio::time::sleep(self.slow).await;
                (StatusCode::OK, self.body.clone())
            }
            "/checkout" => self.checkout(headers).await,
            _ => (StatusCode::OK, self.body.clone()),
        };
        let mut rsp = Response::new(Full::new(body));
        *rsp.status_mut() = status;
        rsp.headers_mut().insert(SERVED_BY, self.name.clone());
        let client = headers
            .get("weft-client-id")
            .cloned()
            .unwrap_or(HeaderValue::from_static("-"));
        rsp.headers_mut().insert(CLIENT_ID, client);
        if path == "/checkout" {
            let trace_id = otlp::trace_id(headers).unwrap_or_else(|| "-".to_string());
            if let Ok(value) = HeaderValue::from_str(&trace_id) {
                rsp.headers_mut().insert(TRACE_ID, value);
            }
        }
        rsp
    }

    /// Calls the backend with the caller's trace headers and answers with what it said.
    async fn checkout(&self, headers: &HeaderMap) -> (StatusCode, Bytes) {
        let Some(backend) = &self.backend else {
            return (
                StatusCode::NOT_FOUND,
                "no backend to check out with\n".into(),
            );
        };
        let call = otlp::forward_trace_headers(headers, Request::get(backend.clone()));
        let answer = match call.body(Empty::new()) {
            Ok(call) => tokio::time::timeout(BACKEND_TIMEOUT, async {
                let rsp = self
                    .client
                    .request(call)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                let status = rsp.status();
                let body = rsp.into_body().collect().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((status, body.to_bytes()))
            })
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {BACKEND_TIMEOUT:?}"))),
            Err(e) => Err(e.to_string()),
        };
        let name = self.name.to_str().unwrap_or("the app");
        match answer {
            Ok((status, body)) if status.is_success() => (
                StatusCode::OK,
                format!(
                    "{name} checked out with {backend}: {}",
                    String::from_utf8_lossy(&body)
                )
                .into(),
            ),
            Ok((status, _)) => (
                StatusCode::BAD_GATEWAY,
                format!("{name}: {backend} answered {status}\n").into(),
            ),
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                format!("{name}: cannot call {backend}: {e}\n").into(),
            ),
        }
    }
}
