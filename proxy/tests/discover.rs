//! The proxy's discovery (`weft_proxy::discover::Discovery`) against an in-process fake
//! controller: outbound policies from `OutboundPolicies.Watch` (conversion, replacement,
//! `NotFound`, invalid messages, an outage and a restart on the same port, a controller that is
//! not there yet), endpoints from `Destination.Get` (adds, removes, `no_endpoints`, stream
//! restarts), and the update counters.
//!
//! Every wait is bounded: a test fails when the proxy does not do the expected thing within a
//! few seconds, never because it was slow by some milliseconds.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    net::TcpSocket,
    sync::{mpsc, oneshot, watch},
};
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Code, Request, Response, Status};
use weft_proto::{
    destination::{
        self as dst,
        destination_server::{Destination, DestinationServer},
    },
    http_route, meta,
    outbound::{
        self as out, backend, opaque_route,
        outbound_policies_server::{OutboundPolicies, OutboundPoliciesServer},
        proxy_protocol, traffic_spec,
    },
};
use weft_proxy::{
    discover::{Discovery, Endpoints},
    metrics::Metrics,
    policy::{BackendKind, Distribution, OutboundPolicy, Protocol},
};

/// How long the proxy may take to act on something the fake controller did.
const LIMIT: Duration = Duration::from_secs(5);
/// How long a reconnect may take: several backoff steps (100 ms doubling, +50% jitter).
const RECONNECT_LIMIT: Duration = Duration::from_secs(10);

const WORKLOAD: &str = "shop/web-client-5d8f9";
const PARENT: &str = "Service shop/web:8080";
const V1: &str = "web-v1.shop.svc.cluster.local:8080";
const V2: &str = "web-v2.shop.svc.cluster.local:8080";

fn target() -> SocketAddr {
    "10.96.0.10:8080".parse().expect("a socket address")
}

// === outbound policies ===

#[tokio::test]
async fn a_policy_arrives_converted_and_the_next_message_replaces_it() {
    let mut ctl = Controller::start();
    let (discovery, _) = discovery(ctl.addr);
    let mut rx = discovery.outbound(target());

    let (spec, policies) = ctl.next_watch(LIMIT).await.open();
    assert_eq!(spec.source_workload, WORKLOAD);
    assert_eq!(
        spec.target,
        Some(traffic_spec::Target::Addr(target().into()))
    );
    assert!(
        rx.borrow().is_none(),
        "a policy before the controller sent one"
    );

    policies
        .send(Ok(split(&[(V1, 90), (V2, 10)])))
        .expect("send");
    let first = next_policy(&mut rx, LIMIT, "the first policy", |_| true).await;
    assert_eq!(&*first.parent, PARENT);
    let Protocol::Detect { http1, http2, .. } = &first.protocol else {
        panic!("not a Detect policy: {:?}", first.protocol);
    };
    assert_eq!(&*http1.routes[0].name, "shop/web-split");
    assert_eq!(
        balancers(http1),
        [(V1.to_string(), 90), (V2.to_string(), 10)]
    );
    assert_eq!(
        balancers(http2),
        [(V1.to_string(), 90), (V2.to_string(), 10)]
    );

    policies
        .send(Ok(split(&[(V1, 0), (V2, 100)])))
        .expect("send");
    let second = next_policy(&mut rx, LIMIT, "the second policy", |p| {
        !Arc::ptr_eq(p, &first)
    })
    .await;
    assert_eq!(
        http1_balancers(&second),
        [(V1.to_string(), 0), (V2.to_string(), 100)]
    );

    // Another connection to the same target shares the watch and its current policy.
    let shared = discovery.outbound(target()).borrow().clone();
    assert!(shared.is_some_and(|p| Arc::ptr_eq(&p, &second)));
}

#[tokio::test]
async fn a_target_the_controller_does_not_know_is_forwarded() {
    // A controller of its own per case: the proxy keeps asking about an unknown target, and
    // those calls must not be mistaken for the next case's.
    for code in [Code::NotFound, Code::InvalidArgument] {
        let mut ctl = Controller::start();
        let (discovery, _) = discovery(ctl.addr);
        let mut rx = discovery.outbound(target());
        ctl.next_watch(LIMIT)
            .await
            .fail(Status::new(code, "no policy for this target"));
        let what = format!("the forward policy after {code:?}");
        let policy = next_policy(&mut rx, LIMIT, &what, |_| true).await;
        assert_forwards(&policy, target());
    }
}

#[tokio::test]
async fn an_outage_keeps_the_last_policy_until_the_restarted_controller_sends_a_new_one() {
    let mut ctl = Controller::start();
    let addr = ctl.addr;
    let (discovery, _) = discovery(addr);
    let mut rx = discovery.outbound(target());
    let (_, policies) = ctl.next_watch(LIMIT).await.open();
    policies.send(Ok(split(&[(V1, 100)]))).expect("send");
    let before = next_policy(&mut rx, LIMIT, "the policy", |_| true).await;

    // Every connection closes at once, as when the controller's process exits; the proxy's
    // reconnects are refused while it is gone.
    ctl.stop().await;
    let changed = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
    let now = rx.borrow().clone();
    assert!(
        changed.is_err() && now.as_ref().is_some_and(|p| Arc::ptr_eq(p, &before)),
        "the policy changed during the outage: {now:?}"
    );

    let mut ctl = Controller::listen(socket(addr));
    let (spec, policies) = ctl.next_watch(RECONNECT_LIMIT).await.open();
    assert_eq!(
        spec.target,
        Some(traffic_spec::Target::Addr(target().into()))
    );
    policies.send(Ok(split(&[(V2, 100)]))).expect("send");
    let after = next_policy(&mut rx, LIMIT, "the restarted controller's policy", |p| {
        !Arc::ptr_eq(p, &before)
    })
    .await;
    assert_eq!(http1_balancers(&after), [(V2.to_string(), 100)]);
}

#[tokio::test]
async fn an_unreachable_controller_gives_the_forward_policy_until_it_answers() {
    // Bound but not listening: connections are refused, and the port stays ours.
    let reserved = socket(SocketAddr::from(([127, 0, 0, 1], 0)));
    let addr = reserved.local_addr().expect("bound address");
    let (discovery, _) = discovery(addr);
    let mut rx = discovery.outbound(target());
    let provisional = next_policy(&mut rx, LIMIT, "the provisional policy", |_| true).await;
    assert_forwards(&provisional, target());

    let mut ctl = Controller::listen(reserved);
    let (_, policies) = ctl.next_watch(RECONNECT_LIMIT).await.open();
    policies.send(Ok(split(&[(V1, 100)]))).expect("send");
    let policy = next_policy(&mut rx, LIMIT, "the controller's policy", |p| {
        !Arc::ptr_eq(p, &provisional)
    })
    .await;
    assert_eq!(&*policy.parent, PARENT);
    assert_eq!(http1_balancers(&policy), [(V1.to_string(), 100)]);
}

#[tokio::test]
async fn an_invalid_first_policy_forwards_to_the_target() {
    let mut ctl = Controller::start();
    let (discovery, _) = discovery(ctl.addr);
    let mut rx = discovery.outbound(target());
    let (_, policies) = ctl.next_watch(LIMIT).await.open();
    policies.send(Ok(invalid())).expect("send");
    let policy = next_policy(&mut rx, LIMIT, "the forward policy", |_| true).await;
    assert_forwards(&policy, target());
}

#[tokio::test]
async fn an_invalid_policy_keeps_the_last_good_one() {
    let mut ctl = Controller::start();
    let (discovery, metrics) = discovery(ctl.addr);
    let mut rx = discovery.outbound(target());
    let (_, policies) = ctl.next_watch(LIMIT).await.open();
    policies.send(Ok(split(&[(V1, 100)]))).expect("send");
    let good = next_policy(&mut rx, LIMIT, "the good policy", |_| true).await;

    policies.send(Ok(invalid())).expect("send");
    // The counter goes up before the policy is applied, in the same step.
    counted(&metrics, "outbound_policy", 2).await;
    let now = rx.borrow().clone();
    assert!(
        !rx.has_changed().expect("discovery is running")
            && now.as_ref().is_some_and(|p| Arc::ptr_eq(p, &good)),
        "the invalid policy replaced the good one: {now:?}"
    );

    // The stream is still followed.
    policies.send(Ok(split(&[(V2, 100)]))).expect("send");
    let next = next_policy(&mut rx, LIMIT, "the next good policy", |p| {
        !Arc::ptr_eq(p, &good)
    })
    .await;
    assert_eq!(http1_balancers(&next), [(V2.to_string(), 100)]);
}

#[tokio::test]
async fn updates_are_counted_per_stream_kind() {
    let mut ctl = Controller::start();
    let (discovery, metrics) = discovery(ctl.addr);
    let mut policy_rx = discovery.outbound(target());
    let (_, policies) = ctl.next_watch(LIMIT).await.open();
    policies.send(Ok(split(&[(V1, 100)]))).expect("send");
    let first = next_policy(&mut policy_rx, LIMIT, "the first policy", |_| true).await;
    policies.send(Ok(split(&[(V2, 100)]))).expect("send");
    next_policy(&mut policy_rx, LIMIT, "the second policy", |p| {
        !Arc::ptr_eq(p, &first)
    })
    .await;

    let mut endpoints_rx = discovery.endpoints(V1, RTT, DECAY);
    let (_, updates) = ctl.next_get(LIMIT).await.open();
    updates.send(Ok(add(&[A]))).expect("send");
    next_endpoints(&mut endpoints_rx, "the endpoints", |e| e.resolved).await;

    // Both counters went up before the values they count were published.
    let text = metrics.encode();
    for line in [
        r#"control_plane_updates_total{kind="outbound_policy"} 2"#,
        r#"control_plane_updates_total{kind="destination"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
}

// === endpoints ===

const A: &str = "10.1.0.1:8080";
const B: &str = "10.1.0.2:8080";
const C: &str = "10.1.0.3:8080";
const RTT: Duration = Duration::from_millis(30);
const DECAY: Duration = Duration::from_secs(10);

#[tokio::test]
async fn adds_removes_and_no_endpoints_are_folded_in() {
    let mut ctl = Controller::start();
    let (discovery, _) = discovery(ctl.addr);
    let mut rx = discovery.endpoints(V1, RTT, DECAY);
    let (req, updates) = ctl.next_get(LIMIT).await.open();
    assert_eq!((req.scheme.as_str(), req.path.as_str()), ("k8s", V1));
    assert!(!rx.borrow().resolved, "resolved before any answer");

    updates.send(Ok(add(&[A, B]))).expect("send");
    let eps = next_endpoints(&mut rx, "the add", |e| e.resolved).await;
    assert_eq!(addrs(&eps), [A, B]);
    assert!(!eps.not_found);
    let b = eps.endpoints[1].clone();

    updates.send(Ok(remove(&[A]))).expect("send");
    let eps = next_endpoints(&mut rx, "the remove", |e| e.endpoints.len() != 2).await;
    assert_eq!(addrs(&eps), [B]);
    assert!(Arc::ptr_eq(&eps.endpoints[0], &b), "B lost its load state");

    updates.send(Ok(no_endpoints(false))).expect("send");
    let eps = next_endpoints(&mut rx, "no_endpoints", |e| e.endpoints.is_empty()).await;
    assert!(eps.resolved && eps.not_found, "{eps:?}");

    updates.send(Ok(add(&[C]))).expect("send");
    let eps = next_endpoints(&mut rx, "the add after no_endpoints", |e| {
        !e.endpoints.is_empty()
    })
    .await;
    assert_eq!(addrs(&eps), [C]);
    assert!(!eps.not_found, "still not found after an add");

    updates.send(Ok(no_endpoints(true))).expect("send");
    let eps = next_endpoints(&mut rx, "no_endpoints of a known service", |e| {
        e.endpoints.is_empty()
    })
    .await;
    assert!(
        !eps.not_found,
        "an existing service without endpoints is found"
    );
}

#[tokio::test]
async fn a_restarted_stream_replaces_the_endpoints_with_its_first_message() {
    let mut ctl = Controller::start();
    let (discovery, _) = discovery(ctl.addr);
    let mut rx = discovery.endpoints(V1, RTT, DECAY);
    let (_, updates) = ctl.next_get(LIMIT).await.open();
    updates.send(Ok(add(&[A, B]))).expect("send");
    let before = next_endpoints(&mut rx, "the first stream's add", |e| e.resolved).await;
    assert_eq!(addrs(&before), [A, B]);

    // The controller ends the stream; the proxy asks again.
    drop(updates);
    let call = ctl.next_get(RECONNECT_LIMIT).await;
    let stale = rx.borrow().clone();
    assert!(
        !rx.has_changed().expect("discovery is running") && addrs(&stale) == [A, B],
        "the endpoints changed before the new stream sent anything: {stale:?}"
    );

    let (_, updates) = call.open();
    updates.send(Ok(add(&[B, C]))).expect("send");
    let after = next_endpoints(&mut rx, "the new stream's add", |e| addrs(e) != [A, B]).await;
    assert_eq!(addrs(&after), [B, C]);
    assert!(after.resolved && !after.not_found);
    assert!(
        Arc::ptr_eq(&before.endpoints[1], &after.endpoints[0]),
        "B lost its load state across the restart"
    );
}

#[tokio::test]
async fn a_backend_the_controller_cannot_resolve_is_not_found() {
    let mut ctl = Controller::start();
    let (discovery, _) = discovery(ctl.addr);
    let mut rx = discovery.endpoints("not a path", RTT, DECAY);
    ctl.next_get(LIMIT)
        .await
        .fail(Status::invalid_argument("invalid Destination.Get path"));
    let eps = next_endpoints(&mut rx, "not found", |e| e.resolved).await;
    assert!(eps.not_found && eps.endpoints.is_empty(), "{eps:?}");
}

// === helpers: waiting ===

/// `f`'s output, or a panic naming `what` after `limit`.
async fn within<F: Future>(limit: Duration, what: &str, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {limit:?}"))
}

fn discovery(controller: SocketAddr) -> (Arc<Discovery>, Arc<Metrics>) {
    let metrics = Metrics::new();
    let discovery = Discovery::new(
        &controller.to_string(),
        WORKLOAD.to_string(),
        Duration::from_secs(1),
        metrics.clone(),
    )
    .expect("a valid controller address");
    (discovery, metrics)
}

/// The first policy (`None` never matches) for which `f` holds.
async fn next_policy(
    rx: &mut watch::Receiver<Option<Arc<OutboundPolicy>>>,
    limit: Duration,
    what: &str,
    mut f: impl FnMut(&Arc<OutboundPolicy>) -> bool,
) -> Arc<OutboundPolicy> {
    let policy = within(limit, what, rx.wait_for(|p| p.as_ref().is_some_and(&mut f)))
        .await
        .expect("discovery is running")
        .clone();
    policy.expect("wait_for only returns a policy")
}

async fn next_endpoints(
    rx: &mut watch::Receiver<Endpoints>,
    what: &str,
    f: impl FnMut(&Endpoints) -> bool,
) -> Endpoints {
    within(LIMIT, what, rx.wait_for(f))
        .await
        .expect("discovery is running")
        .clone()
}

/// Waits until the `kind` update counter reads `n`.
async fn counted(metrics: &Metrics, kind: &str, n: u64) {
    let line = format!("control_plane_updates_total{{kind=\"{kind}\"}} {n}");
    within(LIMIT, &line, async {
        while !metrics.encode().lines().any(|l| l == line) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

// === helpers: reading the policy model ===

/// Each backend of the routes' rules as (Destination path, weight), for balancers in a
/// weighted split.
fn balancers(routes: &weft_proxy::policy::HttpRoutes) -> Vec<(String, u32)> {
    let rules = routes.routes.iter().flat_map(|r| &r.rules);
    rules
        .flat_map(|rule| match &rule.backends {
            Distribution::RandomAvailable { backends, weights } => {
                backends.iter().zip(weights.iter().copied())
            }
            other => panic!("not a weighted split: {other:?}"),
        })
        .map(|(rb, weight)| match &rb.backend.kind {
            BackendKind::Balancer { path, .. } => (path.clone(), weight),
            other => panic!("not a balancer: {other:?}"),
        })
        .collect()
}

fn http1_balancers(policy: &OutboundPolicy) -> Vec<(String, u32)> {
    match &policy.protocol {
        Protocol::Detect { http1, .. } => balancers(http1),
        other => panic!("not a Detect policy: {other:?}"),
    }
}

/// `policy` is `OutboundPolicy::forward(target)`: named after the target, detecting the
/// protocol, and every HTTP/1 request goes to the target itself.
fn assert_forwards(policy: &OutboundPolicy, target: SocketAddr) {
    assert_eq!(&*policy.parent, target.to_string());
    let Protocol::Detect { http1, .. } = &policy.protocol else {
        panic!("not a Detect policy: {:?}", policy.protocol);
    };
    let backends: Vec<_> = http1
        .routes
        .iter()
        .flat_map(|r| &r.rules)
        .flat_map(|rule| rule.backends.backends())
        .map(|rb| &rb.backend.kind)
        .collect();
    let forward = BackendKind::Forward {
        addr: target,
        identity: None,
    };
    assert_eq!(backends, [&forward]);
}

// === helpers: controller messages ===

/// What a controller sends for Service shop/web:8080 with an HTTPRoute `shop/web-split`
/// splitting its traffic over `backends` (Destination path, weight).
fn split(backends: &[(&str, u32)]) -> out::OutboundPolicy {
    service_policy(
        backends,
        vec![path_match(http_route::path_match::Kind::Prefix(
            "/".to_string(),
        ))],
    )
}

/// A policy whose route's path regex does not compile.
fn invalid() -> out::OutboundPolicy {
    service_policy(
        &[(V1, 100)],
        vec![path_match(http_route::path_match::Kind::Regex(
            "(".to_string(),
        ))],
    )
}

fn service_policy(
    backends: &[(&str, u32)],
    matches: Vec<http_route::HttpRouteMatch>,
) -> out::OutboundPolicy {
    use out::http_route::{Distribution, RouteBackend, Rule, WeightedRouteBackend, distribution};
    let weighted = backends
        .iter()
        .map(|&(path, weight)| WeightedRouteBackend {
            backend: Some(RouteBackend {
                backend: Some(balancer(path)),
                ..Default::default()
            }),
            weight,
        })
        .collect();
    let route = out::HttpRoute {
        metadata: Some(resource("HTTPRoute", "web-split", 0)),
        hosts: vec![],
        rules: vec![Rule {
            matches,
            backends: Some(Distribution {
                kind: Some(distribution::Kind::RandomAvailable(
                    distribution::RandomAvailable { backends: weighted },
                )),
            }),
            ..Default::default()
        }],
    };
    let opaque = out::OpaqueRoute {
        metadata: Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Default("opaque".to_string())),
        }),
        rules: vec![opaque_route::Rule {
            backends: Some(opaque_route::Distribution {
                kind: Some(opaque_route::distribution::Kind::FirstAvailable(
                    opaque_route::distribution::FirstAvailable {
                        backends: vec![opaque_route::RouteBackend {
                            backend: Some(balancer(backends[0].0)),
                            filters: vec![],
                        }],
                    },
                )),
            }),
            filters: vec![],
        }],
    };
    out::OutboundPolicy {
        metadata: Some(resource("Service", "web", 8080)),
        protocol: Some(out::ProxyProtocol {
            kind: Some(proxy_protocol::Kind::Detect(proxy_protocol::Detect {
                timeout: None,
                opaque: Some(proxy_protocol::Opaque {
                    routes: vec![opaque],
                }),
                http1: Some(proxy_protocol::Http1 {
                    routes: vec![route.clone()],
                    failure_accrual: None,
                }),
                http2: Some(proxy_protocol::Http2 {
                    routes: vec![route],
                    failure_accrual: None,
                }),
            })),
        }),
    }
}

fn path_match(kind: http_route::path_match::Kind) -> http_route::HttpRouteMatch {
    http_route::HttpRouteMatch {
        path: Some(http_route::PathMatch { kind: Some(kind) }),
        ..Default::default()
    }
}

/// A P2C peak-EWMA balancer over `Destination.Get(path)`, as the controller sends for a
/// Service backend.
fn balancer(path: &str) -> out::Backend {
    let name = path.split('.').next().expect("split yields one item");
    out::Backend {
        metadata: Some(resource("Service", name, 8080)),
        queue: None,
        kind: Some(backend::Kind::Balancer(backend::BalanceP2c {
            discovery: Some(backend::EndpointDiscovery {
                kind: Some(backend::endpoint_discovery::Kind::Dst(
                    backend::endpoint_discovery::DestinationGet {
                        path: path.to_string(),
                    },
                )),
            }),
            load: Some(backend::balance_p2c::Load::PeakEwma(
                backend::balance_p2c::PeakEwma {
                    default_rtt: None,
                    decay: None,
                },
            )),
        })),
    }
}

fn resource(kind: &str, name: &str, port: u32) -> meta::Metadata {
    meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: if kind == "Service" {
                "core"
            } else {
                "gateway.networking.k8s.io"
            }
            .to_string(),
            kind: kind.to_string(),
            namespace: "shop".to_string(),
            name: name.to_string(),
            section: String::new(),
            port,
        })),
    }
}

fn add(addrs: &[&str]) -> dst::Update {
    let addrs = addrs
        .iter()
        .map(|a| dst::WeightedAddr {
            addr: Some(a.parse::<SocketAddr>().expect("a socket address").into()),
            weight: 10_000,
            ..Default::default()
        })
        .collect();
    dst::Update {
        update: Some(dst::update::Update::Add(dst::WeightedAddrSet {
            addrs,
            metric_labels: [("service".to_string(), "web-v1".to_string())].into(),
        })),
    }
}

fn remove(addrs: &[&str]) -> dst::Update {
    let addrs = addrs
        .iter()
        .map(|a| a.parse::<SocketAddr>().expect("a socket address").into())
        .collect();
    dst::Update {
        update: Some(dst::update::Update::Remove(dst::AddrSet { addrs })),
    }
}

fn no_endpoints(exists: bool) -> dst::Update {
    dst::Update {
        update: Some(dst::update::Update::NoEndpoints(dst::NoEndpoints {
            exists,
        })),
    }
}

fn addrs(eps: &Endpoints) -> Vec<String> {
    eps.endpoints.iter().map(|e| e.addr.to_string()).collect()
}

// === fake controller ===

/// A TCP socket bound to `addr` (port 0 for any), not yet listening. `SO_REUSEADDR` lets a
/// restarted controller take the port back while the old connections linger in TIME_WAIT.
fn socket(addr: SocketAddr) -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind");
    socket
}

type Updates<M> = UnboundedReceiverStream<Result<M, Status>>;

/// One `Watch` or `Get` call, waiting for the test to answer it.
struct Call<Req, M> {
    request: Req,
    reply: oneshot::Sender<Result<Updates<M>, Status>>,
}

impl<Req, M> Call<Req, M> {
    /// Answers with a stream of what the test sends; dropping the sender ends the stream.
    fn open(self) -> (Req, mpsc::UnboundedSender<Result<M, Status>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.reply.send(Ok(UnboundedReceiverStream::new(rx)));
        (self.request, tx)
    }

    /// Answers with an error status instead of a stream.
    fn fail(self, status: Status) {
        let _ = self.reply.send(Err(status));
    }
}

type WatchCall = Call<out::TrafficSpec, out::OutboundPolicy>;
type GetCall = Call<dst::GetDestination, dst::Update>;

/// A fake controller serving `OutboundPolicies` and `Destination`, each call answered by the
/// test. It runs on its own thread and runtime so that stopping it closes every connection at
/// once, as when the controller's process exits.
struct Controller {
    addr: SocketAddr,
    watches: mpsc::UnboundedReceiver<WatchCall>,
    gets: mpsc::UnboundedReceiver<GetCall>,
    stop: oneshot::Sender<()>,
    stopped: oneshot::Receiver<()>,
}

impl Controller {
    /// A controller on a fresh port.
    fn start() -> Self {
        Self::listen(socket(SocketAddr::from(([127, 0, 0, 1], 0))))
    }

    /// A controller listening on `socket`.
    fn listen(socket: TcpSocket) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = {
            let _enter = runtime.enter();
            socket.listen(64).expect("listen")
        };
        let addr = listener.local_addr().expect("bound address");
        let (watches_tx, watches) = mpsc::unbounded_channel();
        let (gets_tx, gets) = mpsc::unbounded_channel();
        let services = Services {
            watches: watches_tx,
            gets: gets_tx,
        };
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = oneshot::channel();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let server = tonic::transport::Server::builder()
                    .add_service(OutboundPoliciesServer::new(services.clone()))
                    .add_service(DestinationServer::new(services))
                    .serve_with_incoming(TcpListenerStream::new(listener));
                tokio::select! {
                    _ = server => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops the listener and every connection task.
            drop(runtime);
            let _ = stopped_tx.send(());
        });
        Self {
            addr,
            watches,
            gets,
            stop,
            stopped,
        }
    }

    /// Closes the listener and every connection, and waits until they are closed.
    async fn stop(self) {
        drop(self.stop);
        within(LIMIT, "the controller stopping", self.stopped)
            .await
            .expect("the controller thread finishes");
    }

    async fn next_watch(&mut self, limit: Duration) -> WatchCall {
        within(limit, "a Watch call", self.watches.recv())
            .await
            .expect("the controller is running")
    }

    async fn next_get(&mut self, limit: Duration) -> GetCall {
        within(limit, "a Get call", self.gets.recv())
            .await
            .expect("the controller is running")
    }
}

/// The services: every call is handed to the test.
#[derive(Clone)]
struct Services {
    watches: mpsc::UnboundedSender<WatchCall>,
    gets: mpsc::UnboundedSender<GetCall>,
}

async fn ask<Req, M>(
    calls: &mpsc::UnboundedSender<Call<Req, M>>,
    request: Req,
) -> Result<Response<Updates<M>>, Status> {
    let (reply, answer) = oneshot::channel();
    calls
        .send(Call { request, reply })
        .map_err(|_| Status::unavailable("the test is gone"))?;
    let updates = answer
        .await
        .map_err(|_| Status::unavailable("the test dropped the call"))??;
    Ok(Response::new(updates))
}

#[tonic::async_trait]
impl OutboundPolicies for Services {
    async fn get(
        &self,
        _: Request<out::TrafficSpec>,
    ) -> Result<Response<out::OutboundPolicy>, Status> {
        Err(Status::unimplemented("the proxy watches"))
    }

    type WatchStream = Updates<out::OutboundPolicy>;

    async fn watch(
        &self,
        req: Request<out::TrafficSpec>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        ask(&self.watches, req.into_inner()).await
    }
}

#[tonic::async_trait]
impl Destination for Services {
    type GetStream = Updates<dst::Update>;

    async fn get(
        &self,
        req: Request<dst::GetDestination>,
    ) -> Result<Response<Self::GetStream>, Status> {
        ask(&self.gets, req.into_inner()).await
    }

    type GetProfileStream = Updates<dst::DestinationProfile>;

    async fn get_profile(
        &self,
        _: Request<dst::GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        Err(Status::unimplemented("the proxy does not use profiles"))
    }
}
