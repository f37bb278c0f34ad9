//! The demo's sample app: an HTTP server that says who it is, run as a process in its pod.
//! Two paths misbehave on purpose, for the resilience step: `/flaky` fails a share of
//! requests with 503, and `/slow` answers late.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::{convert::Infallible, net::SocketAddr, time::Duration};

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
}

/// The header that names the pod that answered, and the one that repeats the caller's mesh
/// identity as the app's sidecar reported it (`weft-client-id`), or `-`.
pub use weft_cli_local::shop::{CLIENT_ID, SERVED_BY};

/// Serves until killed.
pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr = SocketAddr::from(([0u16; 8], args.port));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let name = HeaderValue::from_str(&args.name)?;
        let body = Bytes::from(format!("hello from {}\n", args.name));
        let (flaky_rate, slow) = (args.flaky_rate, Duration::from_millis(args.slow_ms));
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let (name, body) = (name.clone(), body.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                    let mut rsp = Response::new(Full::new(body.clone()));
                    rsp.headers_mut().insert(SERVED_BY, name.clone());
                    let client = req
                        .headers()
                        .get("weft-client-id")
                        .cloned()
                        .unwrap_or(HeaderValue::from_static("-"));
                    rsp.headers_mut().insert(CLIENT_ID, client);
                    let path = req.uri().path().to_string();
                    async move {
                        match path.as_str() {
                            "/flaky" if fastrand::f64() < flaky_rate => {
                                *rsp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                            }
                            "/slow" => tokio::time::sleep(slow).await,
                            _ => {}
                        }
                        Ok::<_, Infallible>(rsp)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    })
}
