//! An app that calls another service for every request it gets, forwarding the trace headers
//! as instrumented apps do, so that proxies on both hops join one trace. It keeps the headers
//! of every request it received, so tests can see what the proxies sent it.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
};
use tokio::net::TcpListener;

use weft_cli_local::otlp;

/// Calls `downstream` (a URL, with `host` as its Host header) for every request.
#[derive(Clone, Debug)]
pub struct Chain {
    downstream: String,
    host: String,
    /// The headers of every request received, in order.
    pub received: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Chain {
    /// An app that calls `downstream` with `Host: host`.
    pub fn new(downstream: &str, host: &str) -> Self {
        Self {
            downstream: downstream.to_string(),
            host: host.to_string(),
            received: Arc::default(),
        }
    }

    /// The headers of the requests received so far.
    pub fn received(&self) -> Vec<HeaderMap> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serves on `port` until dropped; answers with the downstream's status.
    pub async fn serve(self, port: u16) {
        let listener = TcpListener::bind(SocketAddr::from(([0u16; 8], port)))
            .await
            .unwrap_or_else(|e| panic!("chain app cannot listen on {port}: {e}"));
        let client: Client<HttpConnector, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (app, client) = (self.clone(), client.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let (app, client) = (app.clone(), client.clone());
                    async move { Ok::<_, Infallible>(app.handle(req, &client).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        client: &Client<HttpConnector, Empty<Bytes>>,
    ) -> Response<Full<Bytes>> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(req.headers().clone());
        let call = otlp::forward_trace_headers(
            req.headers(),
            http::Request::get(&self.downstream).header(http::header::HOST, &self.host),
        );
        let status = match call.body(Empty::new()) {
            Ok(call) => match client.request(call).await {
                Ok(rsp) => {
                    let status = rsp.status();
                    let _ = rsp.into_body().collect().await;
                    status
                }
                Err(_) => StatusCode::BAD_GATEWAY,
            },
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut rsp = Response::new(Full::new(Bytes::from_static(b"chained\n")));
        *rsp.status_mut() = status;
        rsp
    }
}
