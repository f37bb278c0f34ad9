//! The proxy's identity (`weft_proxy::identity`) against an in-process fake controller: an
//! `identity.Identity` server over TLS 1.3 that signs CSRs with a real `weft_certs::Issuer`
//! and a short lifetime. The proxy gets a certificate naming its identity, `/ready` turns true
//! only after that, it renews before expiry (and the gauge moves), it keeps its certificate
//! while the controller fails, it reads the token file on every attempt, it refuses a
//! controller certificate it cannot verify, and discovery reaches the controller over mTLS only
//! once certified.
//!
//! Lifetimes are a few seconds of real time: the TLS and gRPC IO does not mix with paused tokio
//! time. Every wait is bounded; a test fails when the proxy does not act within the limit.

use futures_util::{StreamExt, stream};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    service::TowerToHyperService,
};
use rustls::{ServerConfig, server::WebPkiClientVerifier};
use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tonic::{Request, Response, Status};
use weft_certs::{Issuer, Leaf, LeafKey, ServiceAccountIdentity, TrustAnchors};
use weft_proto::{
    destination::{
        self as dst,
        destination_server::{Destination, DestinationServer},
    },
    identity::{
        CertifyRequest, CertifyResponse,
        identity_server::{Identity as IdentityService, IdentityServer},
    },
};
use weft_proxy::{
    config::{Config, IdentityConfig},
    discover::Discovery,
    identity::{self, Identity},
    metrics::Metrics,
};

/// How long the proxy may take to do what a test expects (a few retries or a renewal).
const LIMIT: Duration = Duration::from_secs(15);
/// A leaf lifetime short enough to see renewals.
const SHORT: Duration = Duration::from_secs(3);
/// A lifetime no test outlives.
const LONG: Duration = Duration::from_secs(3600);

const NAME: &str = "web.shop.serviceaccount.identity.cluster.local";
const CONTROLLER: &str = "weft-controller.weft-system.serviceaccount.identity.cluster.local";

// === certify ===

#[tokio::test]
async fn the_proxy_gets_a_certificate_naming_its_identity() {
    logs();
    let pki = Pki::new();
    let ctl = FakeIdentity::start(&pki, pki.server(CONTROLLER), LONG).await;
    let token = TokenFile::new("first", "token-1");
    let metrics = Metrics::new();
    let identity = identity::spawn(pki.config(ctl.addr, &token), metrics.clone());
    assert_eq!(identity.name(), NAME);

    within(LIMIT, "the first certificate", identity.certified()).await;
    let current = identity.current().expect("certified");
    let issued = ctl.issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(
        current.cert, issued[0].chain,
        "the leaf and the issuer, as issued"
    );
    let named = weft_certs::identity_of(&current.cert[0]).expect("an identity");
    assert_eq!(named.dns_name(), NAME);
    assert_eq!(ctl.requests()[0].identity, NAME);
    assert_eq!(ctl.requests()[0].token, b"token-1");
    assert_eq!(gauge(&metrics), Some(unix(issued[0].not_after)));
}

#[tokio::test]
async fn ready_turns_true_only_once_certified() {
    logs();
    let pki = Pki::new();
    let ctl = FakeIdentity::start(&pki, pki.server(CONTROLLER), LONG).await;
    ctl.fail(true);
    let token = TokenFile::new("ready", "token-1");
    let config = Config::from_strings(&env(&[
        ("INBOUND_ADDR", "127.0.0.1:0".into()),
        ("OUTBOUND_ADDR", "127.0.0.1:0".into()),
        ("ADMIN_ADDR", "127.0.0.1:0".into()),
        ("IDENTITY_ADDR", ctl.addr.to_string()),
        ("IDENTITY_NAME", NAME.into()),
        ("TOKEN_FILE", token.path.display().to_string()),
        ("TRUST_ANCHORS", pki.root_pem.clone()),
    ]))
    .expect("a valid configuration");
    let bound = weft_proxy::Bound::bind(&config).await.expect("bind");
    let admin = bound.local_addrs()[2][0];
    let proxy = tokio::spawn(weft_proxy::run(config, bound));

    // The controller refused the first attempt: the proxy serves but is not ready.
    eventually(LIMIT, "a Certify call", || ctl.calls() >= 1).await;
    assert_eq!(get(admin, "/live").await.0, 200);
    assert_eq!(get(admin, "/ready").await.0, 503);
    assert!(gauge_text(&get(admin, "/metrics").await.1) == Some(0));

    ctl.fail(false);
    eventually_async(LIMIT, "/ready", || async {
        get(admin, "/ready").await.0 == 200
    })
    .await;
    let not_after = unix(ctl.issued()[0].not_after);
    assert_eq!(gauge_text(&get(admin, "/metrics").await.1), Some(not_after));
    proxy.abort();
}

#[tokio::test]
async fn the_certificate_is_renewed_before_it_expires_and_the_gauge_moves() {
    logs();
    let pki = Pki::new();
    let ctl = FakeIdentity::start(&pki, pki.server(CONTROLLER), SHORT).await;
    let token = TokenFile::new("renew", "token-1");
    let metrics = Metrics::new();
    let identity = identity::spawn(pki.config(ctl.addr, &token), metrics.clone());
    within(LIMIT, "the first certificate", identity.certified()).await;
    let first = leaf(&identity);
    let first_expiry = gauge(&metrics).expect("the gauge");

    eventually(LIMIT, "a renewed certificate", || leaf(&identity) != first).await;
    let issued = ctl.issued();
    let times = ctl.times();
    assert!(
        times[1] < issued[0].not_after,
        "renewed at {:?}, after the first certificate expired at {:?}",
        times[1],
        issued[0].not_after
    );
    assert_eq!(leaf(&identity), issued[1].chain[0].to_vec());
    let second_expiry = gauge(&metrics).expect("the gauge");
    assert!(
        second_expiry > first_expiry,
        "{second_expiry} <= {first_expiry}"
    );
    assert_eq!(second_expiry, unix(issued[1].not_after));
}

#[tokio::test]
async fn a_failing_controller_is_retried_while_the_old_certificate_is_kept() {
    logs();
    let pki = Pki::new();
    let ctl = FakeIdentity::start(&pki, pki.server(CONTROLLER), SHORT).await;
    let token = TokenFile::new("retry", "token-1");
    let identity = identity::spawn(pki.config(ctl.addr, &token), Metrics::new());
    within(LIMIT, "the first certificate", identity.certified()).await;
    let first = identity.current().expect("certified");

    ctl.fail(true);
    eventually(LIMIT, "two failed renewals", || ctl.calls() >= 3).await;
    let kept = identity.current().expect("the old certificate is kept");
    assert!(
        Arc::ptr_eq(&kept, &first),
        "the certificate changed while every renewal failed"
    );
    assert_eq!(ctl.issued().len(), 1);

    ctl.fail(false);
    eventually(LIMIT, "a certificate once the controller is back", || {
        identity.current().is_some_and(|c| !Arc::ptr_eq(&c, &first))
    })
    .await;
    assert_eq!(ctl.issued().len(), 2);
}

#[tokio::test]
async fn the_token_file_is_read_on_every_attempt() {
    logs();
    let pki = Pki::new();
    let ctl = FakeIdentity::start(&pki, pki.server(CONTROLLER), SHORT).await;
    let token = TokenFile::new("rotate", "token-1\n");
    let identity = identity::spawn(pki.config(ctl.addr, &token), Metrics::new());
    within(LIMIT, "the first certificate", identity.certified()).await;

    token.write("token-2");
    eventually(LIMIT, "a renewal", || ctl.calls() >= 2).await;
    let tokens: Vec<Vec<u8>> = ctl.requests().into_iter().map(|r| r.token).collect();
    assert_eq!(tokens[..2], [b"token-1".to_vec(), b"token-2".to_vec()]);
}

#[tokio::test]
async fn a_controller_certificate_the_proxy_cannot_verify_is_refused() {
    logs();
    let pki = Pki::new();
    let other = Pki::new();
    let wrong_name = "weft-destination.weft.serviceaccount.identity.cluster.local";
    for (what, tls) in [
        ("a certificate from another root", other.server(CONTROLLER)),
        ("a certificate for another name", pki.server(wrong_name)),
    ] {
        let ctl = FakeIdentity::start(&pki, tls, LONG).await;
        let token = TokenFile::new("refuse", "token-1");
        let identity = identity::spawn(pki.config(ctl.addr, &token), Metrics::new());
        eventually(LIMIT, "two refused handshakes", || {
            ctl.stats.failed.load(Ordering::SeqCst) >= 2
        })
        .await;
        assert!(!identity.is_certified(), "certified through {what}");
        assert_eq!(ctl.calls(), 0, "Certify was sent to {what}");
    }
}

// === discovery over mTLS ===

#[tokio::test]
async fn discovery_waits_for_the_certificate_then_presents_it() {
    logs();
    let pki = Pki::new();
    let ctl = FakeIdentity::start(&pki, pki.server(CONTROLLER), LONG).await;
    ctl.fail(true);
    let token = TokenFile::new("discovery", "token-1");
    let identity = identity::spawn(pki.config(ctl.addr, &token), Metrics::new());

    // The destination service accepts only clients with a mesh certificate.
    let verifier = WebPkiClientVerifier::builder_with_provider(
        identity.roots(),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("a client verifier");
    let dst_tls = pki.server_with(CONTROLLER, |b| b.with_client_cert_verifier(verifier));
    let dst_stats = Arc::new(Stats::default());
    let dst_addr = serve_tls(
        dst_tls,
        DestinationServer::new(Endpoints),
        dst_stats.clone(),
    )
    .await;
    let discovery = Discovery::with_identity(
        &dst_addr.to_string(),
        "shop/web-0".into(),
        Duration::from_secs(1),
        Metrics::new(),
        Some(identity.clone()),
    )
    .expect("a valid address");
    let mut rx = discovery.endpoints(
        "web.shop.svc.cluster.local:80",
        Duration::from_millis(30),
        Duration::from_secs(10),
    );

    eventually(LIMIT, "a refused Certify call", || ctl.calls() >= 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        dst_stats.accepted.load(Ordering::SeqCst) + dst_stats.failed.load(Ordering::SeqCst),
        0,
        "discovery connected before the proxy had a certificate"
    );

    ctl.fail(false);
    let endpoints = within(LIMIT, "endpoints", rx.wait_for(|e| e.resolved))
        .await
        .expect("discovery is running")
        .clone();
    let addrs: Vec<String> = endpoints
        .endpoints
        .iter()
        .map(|e| e.addr.to_string())
        .collect();
    assert_eq!(addrs, ["10.42.0.7:8080"]);
    assert_eq!(
        dst_stats.peers(),
        [NAME.to_string()],
        "the client certificate's identity"
    );
}

// === helpers ===

/// A root, an issuer signed by it, and server certificates for fake controllers.
struct Pki {
    root_pem: String,
    anchors: TrustAnchors,
    issuer: Arc<Issuer>,
}

impl Pki {
    fn new() -> Self {
        let td = "cluster.local";
        let root = weft_certs::generate_root(td, LONG).expect("a root");
        let ca = weft_certs::Ca::from_pem(&root.cert_pem, &root.key_pem).expect("the root");
        let files = weft_certs::generate_issuer(&ca, td, LONG).expect("an issuer");
        let anchors = TrustAnchors::from_pem(&root.cert_pem).expect("anchors");
        let issuer = Issuer::load(&files.cert_pem, &files.key_pem, &anchors).expect("the issuer");
        Self {
            root_pem: root.cert_pem,
            anchors,
            issuer: Arc::new(issuer),
        }
    }

    /// The proxy's identity settings against a controller at `addr`.
    fn config(&self, addr: SocketAddr, token: &TokenFile) -> IdentityConfig {
        IdentityConfig {
            addr: addr.to_string(),
            name: ServiceAccountIdentity::parse_dns(NAME).expect("a name"),
            token_file: token.path.clone(),
            trust_anchors: self.anchors.certs().to_vec(),
            controller_name: CONTROLLER.try_into().expect("a DNS name"),
        }
    }

    /// TLS 1.3 server settings with a certificate for `name`, no client certificate.
    fn server(&self, name: &str) -> Arc<ServerConfig> {
        self.server_with(name, |b| b.with_no_client_auth())
    }

    fn server_with(
        &self,
        name: &str,
        auth: impl FnOnce(
            rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>,
        )
            -> rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    ) -> Arc<ServerConfig> {
        let id = ServiceAccountIdentity::parse_dns(name).expect("a name");
        let key = LeafKey::generate().expect("a key");
        let csr = key.csr_der(&id).expect("a CSR");
        let leaf = self
            .issuer
            .certify(&csr, &id, LONG, SystemTime::now())
            .expect("a leaf");
        let builder =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3");
        let mut config = auth(builder)
            .with_single_cert(leaf.chain, key.private_key_der())
            .expect("a server certificate");
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }
}

/// What a TLS server saw.
#[derive(Default)]
struct Stats {
    accepted: AtomicUsize,
    failed: AtomicUsize,
    peers: Mutex<Vec<String>>,
}

impl Stats {
    fn peers(&self) -> Vec<String> {
        self.peers.lock().expect("not poisoned").clone()
    }
}

/// Serves gRPC `svc` over TLS on a fresh port until the test's runtime ends.
async fn serve_tls<S>(tls: Arc<ServerConfig>, svc: S, stats: Arc<Stats>) -> SocketAddr
where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, svc, stats) = (acceptor.clone(), svc.clone(), stats.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    stats.failed.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                stats.accepted.fetch_add(1, Ordering::SeqCst);
                if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                    let id = weft_certs::identity_of(cert)
                        .map_or_else(|e| e.to_string(), |i| i.dns_name());
                    stats.peers.lock().expect("not poisoned").push(id);
                }
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(svc))
                    .await;
            });
        }
    });
    addr
}

/// A fake `identity.Identity` service signing with the test issuer.
struct FakeIdentity {
    addr: SocketAddr,
    state: Arc<State>,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Log {
    requests: Vec<CertifyRequest>,
    times: Vec<SystemTime>,
    issued: Vec<Leaf>,
}

struct State {
    issuer: Arc<Issuer>,
    lifetime: Duration,
    failing: AtomicBool,
    log: Mutex<Log>,
}

#[derive(Clone)]
struct Certifier(Arc<State>);

impl FakeIdentity {
    async fn start(pki: &Pki, tls: Arc<ServerConfig>, lifetime: Duration) -> Self {
        let state = Arc::new(State {
            issuer: pki.issuer.clone(),
            lifetime,
            failing: AtomicBool::new(false),
            log: Mutex::default(),
        });
        let stats = Arc::new(Stats::default());
        let svc = IdentityServer::new(Certifier(state.clone()));
        let addr = serve_tls(tls, svc, stats.clone()).await;
        Self { addr, state, stats }
    }

    fn fail(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.state.log.lock().expect("not poisoned")
    }

    fn calls(&self) -> usize {
        self.log().requests.len()
    }

    fn requests(&self) -> Vec<CertifyRequest> {
        self.log().requests.clone()
    }

    fn times(&self) -> Vec<SystemTime> {
        self.log().times.clone()
    }

    fn issued(&self) -> Vec<Leaf> {
        self.log().issued.clone()
    }
}

#[tonic::async_trait]
impl IdentityService for Certifier {
    async fn certify(
        &self,
        req: Request<CertifyRequest>,
    ) -> Result<Response<CertifyResponse>, Status> {
        let req = req.into_inner();
        let now = SystemTime::now();
        let mut log = self.0.log.lock().expect("not poisoned");
        log.requests.push(req.clone());
        log.times.push(now);
        if self.0.failing.load(Ordering::SeqCst) {
            return Err(Status::unavailable("the test's issuer is offline"));
        }
        let id = ServiceAccountIdentity::parse_dns(&req.identity)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let leaf = self
            .0
            .issuer
            .certify(&req.certificate_signing_request, &id, self.0.lifetime, now)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        log.issued.push(leaf.clone());
        let mut rsp = CertifyResponse {
            leaf_certificate: leaf.chain[0].to_vec(),
            intermediate_certificates: leaf.chain[1..].iter().map(|c| c.to_vec()).collect(),
            valid_until: Some(Default::default()),
        };
        if let Some(t) = rsp.valid_until.as_mut() {
            t.seconds = i64::try_from(unix(leaf.not_after)).expect("a timestamp");
        }
        Ok(Response::new(rsp))
    }
}

/// A destination service that answers every `Get` with one endpoint and keeps the stream open.
#[derive(Clone)]
struct Endpoints;

type Updates<M> = Pin<Box<dyn futures_util::Stream<Item = Result<M, Status>> + Send>>;

#[tonic::async_trait]
impl Destination for Endpoints {
    type GetStream = Updates<dst::Update>;

    async fn get(
        &self,
        _: Request<dst::GetDestination>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let add = dst::Update {
            update: Some(dst::update::Update::Add(dst::WeightedAddrSet {
                addrs: vec![dst::WeightedAddr {
                    addr: Some(
                        "10.42.0.7:8080"
                            .parse::<SocketAddr>()
                            .expect("an address")
                            .into(),
                    ),
                    weight: 10_000,
                    ..Default::default()
                }],
                metric_labels: Default::default(),
            })),
        };
        Ok(Response::new(Box::pin(
            stream::iter([Ok(add)]).chain(stream::pending()),
        )))
    }

    type GetProfileStream = Updates<dst::DestinationProfile>;

    async fn get_profile(
        &self,
        _: Request<dst::GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        Err(Status::unimplemented("the proxy does not use profiles"))
    }
}

/// A token file in the temp directory, removed when dropped.
struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    fn new(test: &str, token: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "weft-proxy-identity-{test}-{}.token",
            std::process::id()
        ));
        let file = Self { path };
        file.write(token);
        file
    }

    fn write(&self, token: &str) {
        std::fs::write(&self.path, token).expect("write the token");
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn env(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("WEFT_PROXY_{k}"), v.clone()))
        .collect()
}

fn leaf(identity: &Identity) -> Vec<u8> {
    identity.current().expect("certified").cert[0].to_vec()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn gauge(metrics: &Metrics) -> Option<u64> {
    gauge_text(&metrics.encode())
}

fn gauge_text(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("identity_cert_expiration_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
}

/// A GET on the admin server: the status and the body.
async fn get(admin: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(admin)
        .await
        .expect("connect to the admin server");
    let req = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut rsp = String::new();
    within(LIMIT, "an admin response", tcp.read_to_string(&mut rsp))
        .await
        .expect("read");
    let status = rsp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {rsp:?}"));
    (status, rsp)
}

/// The proxy's logs in the test output (shown for failing tests), to see why it did what it did.
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("weft_proxy=debug")
        .with_test_writer()
        .try_init();
}

async fn within<F: std::future::Future>(limit: Duration, what: &str, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {limit:?}"))
}

/// Waits until `f` holds, checking every 20 ms, failing after `limit`.
async fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    eventually_async(limit, what, || std::future::ready(f())).await;
}

async fn eventually_async<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(limit, what, async {
        while !f().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
