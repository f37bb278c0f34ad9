//! The HTTPS server: `POST /inject` answers AdmissionReviews, `GET /ready` and `GET /live`
//! serve the probes. Every connection and request is bounded in time and size: a client that
//! sends nothing, trickles its body or sends too much gets a timeout or an HTTP error, never a
//! stuck task, and SIGTERM lets requests in flight finish.

use crate::{Namespaces, review};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use parking_lot::RwLock;
use rustls::ServerConfig;
use std::{future::Future, pin::pin, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use weft_injector_patch::Injector;

/// Where AdmissionReviews are posted.
pub const INJECT_PATH: &str = "/inject";

/// How much a client may send and how long it may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest request body; an AdmissionReview of the largest pod etcd stores is well
    /// under it.
    pub max_body: usize,
    /// How long the TLS handshake, the request headers, and the body may each take.
    pub read_timeout: Duration,
    /// How long a request may wait for in-flight work after shutdown starts.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 8 * 1024 * 1024,
            read_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(20),
        }
    }
}

/// The webhook: the injection (replaced when the trust anchors change) and where namespace
/// annotations come from.
pub struct Webhook {
    injector: RwLock<Arc<Injector>>,
    namespaces: Arc<dyn Namespaces>,
    limits: Limits,
}

impl Webhook {
    /// A webhook injecting with `injector`.
    pub fn new(injector: Injector, namespaces: Arc<dyn Namespaces>, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            injector: RwLock::new(Arc::new(injector)),
            namespaces,
            limits,
        })
    }

    /// Injects with `injector` from now on.
    pub fn set_injector(&self, injector: Injector) {
        *self.injector.write() = Arc::new(injector);
    }

    /// The injection in use.
    pub fn injector(&self) -> Arc<Injector> {
        self.injector.read().clone()
    }

    /// Answers one request.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/live") => text(StatusCode::OK, "live\n"),
            (&Method::GET, "/ready") if self.namespaces.ready() => text(StatusCode::OK, "ready\n"),
            (&Method::GET, "/ready") => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "namespaces not listed yet\n",
            ),
            (&Method::POST, INJECT_PATH) => self.admit(req).await,
            (_, "/live" | "/ready" | INJECT_PATH) => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found; AdmissionReviews go to POST /inject\n",
            ),
        }
    }

    async fn admit<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let max = self.limits.max_body;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return too_large(max);
        }
        let body = Limited::new(req.into_body(), max).collect();
        let bytes = match tokio::time::timeout(self.limits.read_timeout, body).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(max),
            Ok(Err(e)) => {
                tracing::warn!("reading an AdmissionReview: {e}");
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read the body: {e}\n"),
                );
            }
            Err(_) => {
                tracing::warn!(
                    "an AdmissionReview body took over {:?}",
                    self.limits.read_timeout
                );
                return text(StatusCode::REQUEST_TIMEOUT, "the body took too long\n");
            }
        };
        let injector = self.injector();
        let review = review::review(&bytes, &*self.namespaces, &injector).await;
        let mut response = Response::new(Full::new(Bytes::from(review)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Serves `webhook` over TLS on `listener` until `shutdown` completes, then lets requests
/// in flight finish for up to the drain time.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    webhook: Arc<Webhook>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let limits = webhook.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .max_concurrent_streams(64);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    tracing::info!(addr = ?listener.local_addr().ok(), "serving admission reviews over HTTPS");
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (acceptor, builder, webhook) = (acceptor.clone(), builder.clone(), webhook.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(limits.read_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let service = hyper::service::service_fn(move |req| {
                let webhook = webhook.clone();
                async move { Ok::<_, std::convert::Infallible>(webhook.handle(req).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, "connection: {e}");
            }
        });
    }
    tracing::info!("stopping: finishing requests in flight");
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after {:?}; stopping anyway",
            limits.drain
        );
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    response
}

fn too_large(max: usize) -> Response<Full<Bytes>> {
    tracing::warn!("refused an AdmissionReview over {max} bytes");
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is over {max} bytes\n"),
    )
}
