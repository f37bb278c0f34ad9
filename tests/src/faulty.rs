//! Apps that fail on purpose, for the resilience tests: an HTTP server whose paths fail at a
//! rate, always, or slowly, and a gRPC server whose calls fail a set number of times. Each
//! counts every request it receives, so a test can tell how many tries reached the backend.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::net::TcpListener;
use weft_proto::{destination, identity};

/// The response header naming the app that answered.
pub const SERVED_BY: &str = "x-served-by";

/// What an app received, by path (HTTP) or call key (gRPC).
#[derive(Clone, Debug, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    fn add(&self, key: &str) -> u64 {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Requests received for `key`.
    pub fn get(&self, key: &str) -> u64 {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).copied().unwrap_or(0)
    }
}

/// A faulty HTTP app.
#[derive(Clone, Debug)]
pub struct Faulty {
    name: Arc<str>,
    /// Requests received, by path.
    pub counts: Counts,
    /// Bodies received, by path: total bytes.
    pub body_bytes: Counts,
    /// Every request fails with 500 while set.
    pub broken: Arc<AtomicBool>,
}

impl Faulty {
    /// An app that names itself `name` in [`SERVED_BY`].
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            counts: Counts::default(),
            body_bytes: Counts::default(),
            broken: Arc::default(),
        }
    }

    /// Serves HTTP/1.1 and HTTP/2 on `port` (all addresses) until dropped:
    /// - `/flaky?rate=R`: 503 for a share `R` of requests (default 0.3), else 200;
    /// - `/fail...`: 503 after reading the whole body;
    /// - `/slow/MS`: 200 after MS milliseconds;
    /// - anything else: 200.
    pub async fn serve(self, port: u16) {
        let listener = TcpListener::bind(SocketAddr::from(([0u16; 8], port)))
            .await
            .unwrap_or_else(|e| panic!("faulty app cannot listen on {port}: {e}"));
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let app = self.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| app.clone().handle(req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        self.counts.add(&path);
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        let received = body.as_ref().map_or(0, Bytes::len);
        self.add_bytes(&path, received);
        let status = if self.broken.load(Ordering::Acquire) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if path == "/flaky" {
            let rate = query
                .strip_prefix("rate=")
                .and_then(|r| r.parse::<f64>().ok())
                .unwrap_or(0.3);
            if fastrand::f64() < rate {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            }
        } else if path.starts_with("/fail") {
            StatusCode::SERVICE_UNAVAILABLE
        } else if let Some(ms) = path.strip_prefix("/slow/").and_then(|m| m.parse().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK
        } else {
            StatusCode::OK
        };
        let mut rsp = Response::new(Full::new(Bytes::from(format!("{received}\n"))));
        *rsp.status_mut() = status;
        if let Ok(v) = http::HeaderValue::from_str(&self.name) {
            rsp.headers_mut().insert(SERVED_BY, v);
        }
        Ok(rsp)
    }

    fn add_bytes(&self, path: &str, n: usize) {
        let mut map = self.body_bytes.0.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(path.to_string()).or_default() += n as u64;
    }
}

/// A gRPC app: `Identity/Certify` with identity `fail-N-KEY` fails with UNAVAILABLE on the
/// first N calls for KEY, then answers, and with `slow-MS` answers after MS milliseconds;
/// `Destination/Get` streams one update. Each answer
/// names the app in [`SERVED_BY`] metadata; calls are counted by KEY (Certify) and `get`.
#[derive(Clone, Debug)]
pub struct FaultyGrpc {
    name: Arc<str>,
    /// Calls received, by key.
    pub counts: Counts,
}

impl FaultyGrpc {
    /// An app that names itself `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            counts: Counts::default(),
        }
    }

    /// Serves on `port` until dropped.
    pub async fn serve(self, port: u16) {
        let addr = SocketAddr::from(([0u16; 8], port));
        let _ = tonic::transport::Server::builder()
            .add_service(identity::identity_server::IdentityServer::new(self.clone()))
            .add_service(destination::destination_server::DestinationServer::new(
                self,
            ))
            .serve(addr)
            .await;
    }

    fn named<T>(&self, msg: T) -> tonic::Response<T> {
        let mut rsp = tonic::Response::new(msg);
        if let Ok(v) = self.name.parse() {
            rsp.metadata_mut().insert(SERVED_BY, v);
        }
        rsp
    }
}

#[tonic::async_trait]
impl identity::identity_server::Identity for FaultyGrpc {
    async fn certify(
        &self,
        req: tonic::Request<identity::CertifyRequest>,
    ) -> Result<tonic::Response<identity::CertifyResponse>, tonic::Status> {
        let id = req.into_inner().identity;
        if let Some(ms) = id.strip_prefix("slow-").and_then(|m| m.parse().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let (fails, key) = id
            .strip_prefix("fail-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(n, key)| Some((n.parse::<u64>().ok()?, key.to_string())))
            .unwrap_or((0, id.clone()));
        let seen = self.counts.add(&key);
        if seen <= fails {
            return Err(tonic::Status::unavailable(format!(
                "{} fails call {seen} of {key}",
                self.name
            )));
        }
        Ok(self.named(identity::CertifyResponse {
            leaf_certificate: key.into_bytes(),
            ..Default::default()
        }))
    }
}

type Updates = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<destination::Update, tonic::Status>> + Send>,
>;
type Profiles = std::pin::Pin<
    Box<
        dyn futures_util::Stream<Item = Result<destination::DestinationProfile, tonic::Status>>
            + Send,
    >,
>;

#[tonic::async_trait]
impl destination::destination_server::Destination for FaultyGrpc {
    type GetStream = Updates;
    type GetProfileStream = Profiles;

    async fn get(
        &self,
        _: tonic::Request<destination::GetDestination>,
    ) -> Result<tonic::Response<Updates>, tonic::Status> {
        self.counts.add("get");
        let update = destination::Update {
            update: Some(destination::update::Update::NoEndpoints(
                destination::NoEndpoints { exists: true },
            )),
        };
        let stream: Updates = Box::pin(futures_util::stream::iter([Ok(update)]));
        Ok(self.named(stream))
    }

    async fn get_profile(
        &self,
        _: tonic::Request<destination::GetDestination>,
    ) -> Result<tonic::Response<Profiles>, tonic::Status> {
        Err(tonic::Status::unimplemented("not used by the tests"))
    }
}
