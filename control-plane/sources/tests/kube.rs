//! The `kube` source against a fake API server: a `tower_test` mock behind a real
//! `kube::Client`. Every request kube sends is checked (method, path, every query parameter)
//! and answered with the JSON a real API server sends: lists with `metadata.resourceVersion`
//! and untyped items, watch bodies of newline-delimited events, `Status` errors.
//!
//! Time is paused, so kube's backoff costs nothing and a missing request fails at once.

// Helpers outside `#[test]` functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use http::{Method, Request, Response, StatusCode};
use ipnet::IpNet;
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::{Api, client::Body};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    num::NonZeroU16,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;
use tower_test::mock;
use weft_controller_core::{
    Authentication, DiscoverEndpoints, DiscoverInboundServer, DiscoverOutboundPolicy, Network,
    OutboundTarget, ServicePort, ServiceRef, outbound::ResourceRef,
};
use weft_controller_index::{Config, IndexResource, SharedIndex};
use weft_controller_sources::kube as source;

type Handle = mock::Handle<Request<Body>, Response<Body>>;
type Respond = mock::SendResponse<Response<Body>>;
type Shared<T> = Arc<Mutex<Vec<T>>>;

/// Polls `$cond` on the (paused) tokio clock until it holds, or panics after 60s of it.
macro_rules! assert_eventually {
    ($cond:expr, $($msg:tt)+) => {{
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if $cond {
                break;
            }
            if Instant::now() >= deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }};
}

// === the fake API server ===

fn mock_client() -> (kube::Client, Handle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), handle)
}

fn query_of(req: &Request<Body>) -> BTreeMap<String, String> {
    let query = req.uri().query().unwrap_or_default();
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What kube's watcher sends to list a kind: a quorum read (no `resourceVersion`) in pages
/// of 500.
fn list_query() -> BTreeMap<String, String> {
    params(&[("limit", "500")])
}

/// What kube's watcher sends to watch from `rv`.
fn watch_query(rv: &str) -> BTreeMap<String, String> {
    params(&[
        ("watch", "true"),
        ("timeoutSeconds", "290"),
        ("allowWatchBookmarks", "true"),
        ("resourceVersion", rv),
    ])
}

/// Waits for kube's next request and checks it is `GET path?query`, nothing more or less.
async fn next(api: &mut Handle, path: &str, query: BTreeMap<String, String>) -> Respond {
    let (req, respond) = tokio::time::timeout(Duration::from_secs(60), api.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request for {path} within 60s"))
        .expect("the client is gone");
    assert_eq!(req.method(), Method::GET, "{}", req.uri());
    assert_eq!(req.uri().path(), path, "{}", req.uri());
    assert_eq!(query_of(&req), query, "{}", req.uri());
    respond
}

fn send_json(respond: Respond, status: StatusCode, body: &Value) {
    let body = serde_json::to_vec(body).unwrap();
    respond.send_response(
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap(),
    );
}

/// A watch response: one event per line, as the API server streams them. The body ends after
/// the last one; kube then watches again from the last version it saw.
fn send_events(respond: Respond, events: &[Value]) {
    let mut body = Vec::new();
    for event in events {
        serde_json::to_writer(&mut body, event).unwrap();
        body.push(b'\n');
    }
    respond.send_response(
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("transfer-encoding", "chunked")
            .body(Body::from(body))
            .unwrap(),
    );
}

// === objects, as the API server writes them ===

fn uid(name: &str) -> String {
    let n = name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    format!("5f3c2a10-7b4e-4d2a-9c1e-{:012x}", n & 0xffff_ffff_ffff)
}

fn meta(name: &str, rv: &str) -> Value {
    json!({
        "name": name,
        "namespace": "shop",
        "uid": uid(name),
        "resourceVersion": rv,
        "creationTimestamp": "2025-03-01T10:00:00Z",
    })
}

/// A list item: the API server leaves `apiVersion` and `kind` out of built-in kinds' items.
fn service(name: &str, ip: &str, port: u16, rv: &str) -> Value {
    json!({
        "metadata": meta(name, rv),
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": 8080}],
            "selector": {"app": name},
            "clusterIP": ip,
            "clusterIPs": [ip],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    })
}

fn endpoint(ip: &str, pod: &str, ready: bool, terminating: bool) -> Value {
    json!({
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": ready || terminating, "terminating": terminating},
        "nodeName": "node-a",
        "zone": "zone-a",
        "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod, "uid": uid(pod)},
    })
}

fn endpoint_slice(name: &str, rv: &str, endpoints: Vec<Value>) -> Value {
    let mut metadata = meta(name, rv);
    metadata["generateName"] = json!("web-");
    metadata["labels"] = json!({
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    });
    metadata["ownerReferences"] = json!([{
        "apiVersion": "v1", "kind": "Service", "name": "web", "uid": uid("web"),
        "controller": true, "blockOwnerDeletion": true,
    }]);
    json!({
        "metadata": metadata,
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
    })
}

/// The object as a watch event (or a custom resource list) carries it.
fn typed(api_version: &str, kind: &str, mut object: Value) -> Value {
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    object
}

fn list(kind: &str, api_version: &str, rv: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv}, "items": items})
}

fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

fn bookmark(api_version: &str, kind: &str, rv: &str) -> Value {
    event(
        "BOOKMARK",
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": rv, "creationTimestamp": null}}),
    )
}

fn gone() -> Value {
    event(
        "ERROR",
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "too old resource version: 100 (150)", "reason": "Expired", "code": 410}),
    )
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "the server could not find the requested resource",
           "reason": "NotFound", "details": {}, "code": 404})
}

// === reading the index ===

fn port(name: &str, port: u16) -> ServicePort {
    ServicePort::new(
        ServiceRef::new("shop", name),
        NonZeroU16::new(port).unwrap(),
    )
}

fn addr(ip: &str, port: u16) -> OutboundTarget {
    OutboundTarget::Addr(SocketAddr::new(ip.parse().unwrap(), port))
}

/// The service port the index routes `ip:port` to.
fn routed(index: &SharedIndex, ip: &str, p: u16) -> Option<ServicePort> {
    let policy = index.outbound_policy(&addr(ip, p))?;
    let parent = policy.borrow().parent.clone();
    Some(parent)
}

fn count(index: &SharedIndex, kind: &str) -> usize {
    index.write().counts()[kind]
}

fn endpoint_addrs(index: &SharedIndex, target: &ServicePort) -> Vec<String> {
    let set = index.endpoints(target).borrow().clone();
    set.endpoints.keys().map(ToString::to_string).collect()
}

// === scenarios ===

#[tokio::test(start_paused = true)]
async fn follows_a_list_then_each_watch_event() {
    let (client, mut api) = mock_client();
    let index = SharedIndex::new(Config::default());
    let watcher = tokio::spawn(source::watch(Api::<Service>::all(client), index.clone()));

    let respond = next(&mut api, "/api/v1/services", list_query()).await;
    let web = service("web", "10.96.0.10", 8080, "90");
    send_json(
        respond,
        StatusCode::OK,
        &list("ServiceList", "v1", "100", vec![web]),
    );
    // kube watches from the list's version.
    let respond = next(&mut api, "/api/v1/services", watch_query("100")).await;
    assert_eventually!(
        routed(&index, "10.96.0.10", 8080) == Some(port("web", 8080)),
        "the listed service was not indexed"
    );
    assert_eq!(count(&index, "services"), 1);

    let moved = typed("v1", "Service", service("web", "10.96.0.10", 9090, "110"));
    send_events(
        respond,
        &[
            event("MODIFIED", moved.clone()),
            bookmark("v1", "Service", "120"),
        ],
    );
    // The body ended: kube resumes from the bookmark, the last version it saw.
    let respond = next(&mut api, "/api/v1/services", watch_query("120")).await;
    assert_eventually!(
        routed(&index, "10.96.0.10", 9090) == Some(port("web", 9090))
            && routed(&index, "10.96.0.10", 8080).is_none(),
        "the MODIFIED port was not indexed"
    );

    let mut deleted = moved;
    deleted["metadata"]["resourceVersion"] = json!("130");
    send_events(respond, &[event("DELETED", deleted)]);
    let _respond = next(&mut api, "/api/v1/services", watch_query("130")).await;
    assert_eventually!(
        count(&index, "services") == 0 && routed(&index, "10.96.0.10", 9090).is_none(),
        "the DELETED service is still indexed"
    );
    assert!(!watcher.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_410_gone_relists_and_the_new_list_replaces_the_kind() {
    let (client, mut api) = mock_client();
    let index = SharedIndex::new(Config::default());
    let _watcher = tokio::spawn(source::watch(Api::<Service>::all(client), index.clone()));

    let respond = next(&mut api, "/api/v1/services", list_query()).await;
    let first = vec![
        service("a", "10.96.0.1", 80, "91"),
        service("b", "10.96.0.2", 80, "92"),
    ];
    send_json(
        respond,
        StatusCode::OK,
        &list("ServiceList", "v1", "100", first),
    );
    let respond = next(&mut api, "/api/v1/services", watch_query("100")).await;
    assert_eventually!(
        count(&index, "services") == 2,
        "the first list was not indexed"
    );
    let a_policy = index.outbound_policy(&addr("10.96.0.1", 80)).unwrap();
    let b_policy = index.outbound_policy(&addr("10.96.0.2", 80)).unwrap();

    let expired = Instant::now();
    send_events(respond, &[gone()]);
    // After a backoff, kube lists again from scratch: the same quorum read as the first time.
    let respond = next(&mut api, "/api/v1/services", list_query()).await;
    assert!(
        expired.elapsed() >= Duration::from_millis(800),
        "relisted after {:?}, without backoff",
        expired.elapsed()
    );
    assert_eq!(
        count(&index, "services"),
        2,
        "the index changed before the relist"
    );
    let second = vec![
        service("b", "10.96.0.2", 80, "92"),
        service("c", "10.96.0.3", 80, "195"),
    ];
    send_json(
        respond,
        StatusCode::OK,
        &list("ServiceList", "v1", "200", second),
    );
    let _respond = next(&mut api, "/api/v1/services", watch_query("200")).await;

    assert_eventually!(
        routed(&index, "10.96.0.3", 80) == Some(port("c", 80)),
        "the relisted service c was not indexed"
    );
    assert_eq!(
        routed(&index, "10.96.0.1", 80),
        None,
        "a survived the relist"
    );
    assert_eq!(routed(&index, "10.96.0.2", 80), Some(port("b", 80)));
    assert_eq!(count(&index, "services"), 2);
    // `a`'s subscribers saw it go; `b` was never removed on the way.
    assert!(a_policy.has_changed().is_err());
    assert!(b_policy.has_changed().is_ok());
}

#[tokio::test(start_paused = true)]
async fn endpoint_slices_give_the_ready_addresses_of_their_service() {
    let (client, mut api) = mock_client();
    let index = SharedIndex::new(Config::default());
    let web: Service = serde_json::from_value(typed(
        "v1",
        "Service",
        service("web", "10.96.0.10", 80, "5"),
    ))
    .unwrap();
    index.write().apply(web);
    let web80 = port("web", 80);
    let endpoints = index.endpoints(&web80);
    assert!(endpoints.borrow().exists && endpoints.borrow().endpoints.is_empty());
    let _watcher = tokio::spawn(source::watch(
        Api::<EndpointSlice>::all(client),
        index.clone(),
    ));

    const PATH: &str = "/apis/discovery.k8s.io/v1/endpointslices";
    let respond = next(&mut api, PATH, list_query()).await;
    let slice = endpoint_slice(
        "web-x7k2p",
        "290",
        vec![
            endpoint("10.42.0.3", "web-1", true, false),
            endpoint("10.42.1.4", "web-2", true, false),
            // Terminating: only used when nothing is ready.
            endpoint("10.42.2.5", "web-3", false, true),
        ],
    );
    let slices = list(
        "EndpointSliceList",
        "discovery.k8s.io/v1",
        "300",
        vec![slice],
    );
    send_json(respond, StatusCode::OK, &slices);
    let respond = next(&mut api, PATH, watch_query("300")).await;
    assert_eventually!(
        endpoint_addrs(&index, &web80) == ["10.42.0.3:8080", "10.42.1.4:8080"],
        "endpoints: {:?}",
        endpoint_addrs(&index, &web80)
    );
    let set = endpoints.borrow().clone();
    let first = &set.endpoints[&"10.42.0.3:8080".parse().unwrap()];
    assert_eq!(first.pod, Some(("shop".to_string(), "web-1".to_string())));
    assert_eq!(count(&index, "endpointslices"), 1);

    // web-1 is gone and web-2 terminating: the terminating but serving pods are used.
    let slice = endpoint_slice(
        "web-x7k2p",
        "310",
        vec![
            endpoint("10.42.1.4", "web-2", false, true),
            endpoint("10.42.2.5", "web-3", false, true),
        ],
    );
    let slice = typed("discovery.k8s.io/v1", "EndpointSlice", slice);
    send_events(respond, &[event("MODIFIED", slice)]);
    let _respond = next(&mut api, PATH, watch_query("310")).await;
    assert_eventually!(
        endpoint_addrs(&index, &web80) == ["10.42.1.4:8080", "10.42.2.5:8080"],
        "endpoints: {:?}",
        endpoint_addrs(&index, &web80)
    );
}

// === the whole source, with optional CRDs missing ===

const TRAFFIC_SPLITS: &str = "/apis/split.smi-spec.io/v1alpha2/trafficsplits";
const GRPC_ROUTES: &str = "/apis/gateway.networking.k8s.io/v1/grpcroutes";
const POLICY: &str = "policy.weft.dev/v1alpha1";
const SERVERS: &str = "/apis/policy.weft.dev/v1alpha1/servers";
const AUTHORIZATION_POLICIES: &str = "/apis/policy.weft.dev/v1alpha1/authorizationpolicies";
const MESH_TLS_AUTHENTICATIONS: &str = "/apis/policy.weft.dev/v1alpha1/meshtlsauthentications";
const NETWORK_AUTHENTICATIONS: &str = "/apis/policy.weft.dev/v1alpha1/networkauthentications";

/// A list of one `policy.weft.dev` object, as the API server answers for a custom resource.
fn policy_list(kind: &str, rv: &'static str, name: &str, spec: Value) -> Option<Answer> {
    let item = typed(
        POLICY,
        kind,
        json!({"metadata": meta(name, "17"), "spec": spec}),
    );
    let body = list(&format!("{kind}List"), POLICY, rv, vec![item]);
    Some(Answer::List { rv, body })
}

/// What the fake cluster answers for a list of `path`.
enum Answer {
    List { rv: &'static str, body: Value },
    NotFound,
}

/// A cluster with one namespace, service, slice, meshed pod and HTTPRoute, and a Server for the
/// pod's port 8080 that only the `client` ServiceAccount from 10/8 may use; the SMI CRD is only
/// installed once `splits` is set, and the GRPCRoute CRD never is.
fn cluster(path: &str, splits: bool) -> Option<Answer> {
    let answer = |rv, body| Some(Answer::List { rv, body });
    match path {
        "/api/v1/namespaces" => {
            let ns = json!({
                "metadata": {"name": "shop", "uid": uid("shop"), "resourceVersion": "11",
                             "labels": {"kubernetes.io/metadata.name": "shop"}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            answer("1001", list("NamespaceList", "v1", "1001", vec![ns]))
        }
        "/api/v1/services" => {
            let svc = service("web", "10.96.0.10", 80, "12");
            answer("1002", list("ServiceList", "v1", "1002", vec![svc]))
        }
        "/apis/discovery.k8s.io/v1/endpointslices" => {
            let slice = endpoint_slice(
                "web-x7k2p",
                "13",
                vec![endpoint("10.42.0.3", "web-1", true, false)],
            );
            let body = list(
                "EndpointSliceList",
                "discovery.k8s.io/v1",
                "1003",
                vec![slice],
            );
            answer("1003", body)
        }
        "/api/v1/pods" => {
            let mut metadata = meta("web-1", "14");
            metadata["labels"] = json!({"app": "web"});
            metadata["annotations"] = json!({"weft.dev/proxy-version": "v0.1.0"});
            let pod = json!({
                "metadata": metadata,
                "spec": {"serviceAccountName": "web", "nodeName": "node-a",
                         "containers": [{"name": "web", "image": "nginx:1.27",
                                         "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]},
                "status": {"phase": "Running", "podIP": "10.42.0.3", "podIPs": [{"ip": "10.42.0.3"}]},
            });
            answer("1004", list("PodList", "v1", "1004", vec![pod]))
        }
        TRAFFIC_SPLITS if splits => {
            let split = typed(
                "split.smi-spec.io/v1alpha2",
                "TrafficSplit",
                json!({"metadata": meta("web", "15"), "spec": {"service": "web", "backends": [
                    {"service": "web-v1", "weight": 90}, {"service": "web-v2", "weight": 10}]}}),
            );
            let body = list(
                "TrafficSplitList",
                "split.smi-spec.io/v1alpha2",
                "1005",
                vec![split],
            );
            answer("1005", body)
        }
        TRAFFIC_SPLITS | GRPC_ROUTES => Some(Answer::NotFound),
        SERVERS => policy_list(
            "Server",
            "1007",
            "web-http",
            json!({
            "podSelector": {"matchLabels": {"app": "web"}}, "port": 8080}),
        ),
        AUTHORIZATION_POLICIES => policy_list(
            "AuthorizationPolicy",
            "1008",
            "client",
            json!({
            "targetRef": {"group": "policy.weft.dev", "kind": "Server", "name": "web-http"},
            "requiredAuthenticationRefs": [
                {"group": "policy.weft.dev", "kind": "MeshTLSAuthentication", "name": "client"},
                {"group": "policy.weft.dev", "kind": "NetworkAuthentication", "name": "cluster"}]}),
        ),
        MESH_TLS_AUTHENTICATIONS => policy_list(
            "MeshTLSAuthentication",
            "1009",
            "client",
            json!({
            "identityRefs": [{"kind": "ServiceAccount", "name": "client"}]}),
        ),
        NETWORK_AUTHENTICATIONS => policy_list(
            "NetworkAuthentication",
            "1010",
            "cluster",
            json!({
            "networks": [{"cidr": "10.0.0.0/8"}]}),
        ),
        "/apis/gateway.networking.k8s.io/v1/httproutes" => {
            let route = typed(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                json!({"metadata": meta("web-api", "16"), "spec": {
                    "parentRefs": [{"group": "", "kind": "Service", "name": "web", "port": 80}],
                    "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                               "backendRefs": [{"name": "web", "port": 80, "weight": 1}]}]}}),
            );
            let body = list(
                "HTTPRouteList",
                "gateway.networking.k8s.io/v1",
                "1006",
                vec![route],
            );
            answer("1006", body)
        }
        _ => None,
    }
}

/// One request the fake API server saw.
#[derive(Debug)]
struct Seen {
    path: String,
    watch: bool,
    at: Instant,
}

/// Answers every request from [`cluster`], holding watches open; records what it saw and
/// every request it did not expect.
fn serve(mut api: Handle, splits: Arc<AtomicBool>) -> (Shared<Seen>, Shared<String>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let problems = Arc::new(Mutex::new(Vec::new()));
    let (seen2, problems2) = (seen.clone(), problems.clone());
    tokio::spawn(async move {
        let mut watches = Vec::new();
        while let Some((req, respond)) = api.next_request().await {
            let (path, query) = (req.uri().path().to_string(), query_of(&req));
            let watch = query.contains_key("watch");
            seen2.lock().push(Seen {
                path: path.clone(),
                watch,
                at: Instant::now(),
            });
            let answer = cluster(&path, splits.load(Ordering::SeqCst));
            let expected = match &answer {
                Some(Answer::List { rv, .. }) if watch => watch_query(rv),
                _ => list_query(),
            };
            if req.method() != Method::GET || query != expected {
                problems2
                    .lock()
                    .push(format!("{} {}", req.method(), req.uri()));
            }
            match answer {
                None => {
                    problems2.lock().push(format!("unknown path {path}"));
                    send_json(respond, StatusCode::NOT_FOUND, &not_found());
                }
                Some(Answer::NotFound) => send_json(respond, StatusCode::NOT_FOUND, &not_found()),
                Some(Answer::List { .. }) if watch => watches.push(respond),
                Some(Answer::List { body, .. }) => send_json(respond, StatusCode::OK, &body),
            }
        }
    });
    (seen, problems)
}

/// Log output, captured.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn lines_with(&self, words: &[&str]) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock()).into_owned();
        text.lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .count()
    }
}

#[tokio::test(start_paused = true)]
async fn a_missing_crd_is_retried_without_holding_back_the_other_kinds() {
    let logs = Logs::default();
    // The runtime is single-threaded, so every watcher task logs through this subscriber.
    let _logs = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    );
    let (client, api) = mock_client();
    let splits_installed = Arc::new(AtomicBool::new(false));
    let (seen, problems) = serve(api, splits_installed.clone());
    let index = SharedIndex::new(Config::default());
    let source = tokio::spawn(source::run(client, index.clone()));

    let counts = |index: &SharedIndex| index.write().counts();
    assert_eventually!(
        {
            let c = counts(&index);
            (
                c["namespaces"],
                c["services"],
                c["endpointslices"],
                c["pods"],
                c["httproutes"],
            ) == (1, 1, 1, 1, 1)
                && (
                    c["servers"],
                    c["authorizationpolicies"],
                    c["meshtlsauthentications"],
                    c["networkauthentications"],
                ) == (1, 1, 1, 1)
        },
        "not every served kind was indexed: {:?}",
        counts(&index)
    );
    let c = counts(&index);
    assert_eq!((c["trafficsplits"], c["grpcroutes"]), (0, 0));
    // The slice joined with the meshed pod behind it.
    let set = index.endpoints(&port("web", 80)).borrow().clone();
    let ep = &set.endpoints[&"10.42.0.3:8080".parse().unwrap()];
    assert_eq!(
        ep.identity.as_deref(),
        Some("web.shop.serviceaccount.identity.cluster.local")
    );
    // The HTTPRoute is attached to the service.
    let policy = index.outbound_policy(&addr("10.96.0.10", 80)).unwrap();
    let route = policy.borrow().http_routes[0].resource.clone();
    assert_eq!(
        route,
        ResourceRef::Resource {
            group: "gateway.networking.k8s.io".to_string(),
            kind: "HTTPRoute".to_string(),
            namespace: "shop".to_string(),
            name: "web-api".to_string(),
        }
    );

    // The pod's port has the Server, with the policy and both its authentications.
    let inbound = index.inbound_server("shop", "web-1", 8080).borrow().clone();
    assert_eq!(
        inbound.labels[1],
        ("name".to_string(), "web-http".to_string())
    );
    let [authz] = inbound.authorizations.as_slice() else {
        panic!("one authorization: {inbound:?}");
    };
    assert_eq!(
        authz.networks,
        vec![Network::from("10.0.0.0/8".parse::<IpNet>().unwrap())]
    );
    assert_eq!(
        authz.authentication,
        Authentication::MeshTls {
            identities: vec!["client.shop.serviceaccount.identity.cluster.local".to_string()],
            suffixes: vec![],
        }
    );

    // The missing CRDs are listed again and again, further and further apart.
    let attempts = |path: &str| -> Vec<Instant> {
        let seen = seen.lock();
        seen.iter()
            .filter(|s| s.path == path && !s.watch)
            .map(|s| s.at)
            .collect()
    };
    assert_eventually!(
        attempts(TRAFFIC_SPLITS).len() >= 4 && attempts(GRPC_ROUTES).len() >= 4,
        "the missing CRDs were not listed again: {:?}",
        seen.lock()
    );
    for path in [TRAFFIC_SPLITS, GRPC_ROUTES] {
        let at = attempts(path);
        let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps[0] >= Duration::from_secs(2) && gaps[1] > gaps[0] && gaps[2] > gaps[1],
            "{path} retried at {gaps:?}"
        );
    }
    // Said once per CRD, not once per attempt.
    for crd in [
        "trafficsplits.split.smi-spec.io",
        "grpcroutes.gateway.networking.k8s.io",
    ] {
        assert_eq!(logs.lines_with(&["not served", crd]), 1, "{crd}");
    }
    assert!(!source.is_finished());

    // The SMI CRD is installed: the next attempt lists it and the watch starts.
    splits_installed.store(true, Ordering::SeqCst);
    assert_eventually!(
        count(&index, "trafficsplits") == 1,
        "the TrafficSplit was not indexed once its CRD was installed"
    );
    assert_eventually!(
        seen.lock()
            .iter()
            .any(|s| s.path == TRAFFIC_SPLITS && s.watch),
        "the TrafficSplit watch did not start"
    );
    assert_eq!(
        logs.lines_with(&["now served", "trafficsplits.split.smi-spec.io"]),
        1
    );

    // Every served kind was listed once and watched once from its list's version (checked
    // by `serve`), never relisted.
    for path in [
        "/api/v1/namespaces",
        "/api/v1/services",
        "/apis/discovery.k8s.io/v1/endpointslices",
        "/api/v1/pods",
        "/apis/gateway.networking.k8s.io/v1/httproutes",
        SERVERS,
        AUTHORIZATION_POLICIES,
        MESH_TLS_AUTHENTICATIONS,
        NETWORK_AUTHENTICATIONS,
    ] {
        let seen = seen.lock();
        let lists = seen.iter().filter(|s| s.path == path && !s.watch).count();
        let watches = seen.iter().filter(|s| s.path == path && s.watch).count();
        assert_eq!((lists, watches), (1, 1), "{path}");
    }
    assert_eq!(*problems.lock(), Vec::<String>::new());
    assert!(!source.is_finished());
}
