//! Inbound policy (`weft_proxy::inbound`) against an in-process fake controller serving
//! `InboundServerPolicies`: the `WatchPort` request, updates replacing the policy, invalid
//! messages and outages keeping the last good one, and the default when the controller does
//! not answer in time or is not configured.
//!
//! Every wait is bounded: a test fails when the proxy does not do the expected thing within a
//! few seconds, never because it was slow by some milliseconds.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status};
use weft_proto::inbound::{
    self as proto, PortSpec, authn,
    inbound_server_policies_server::{InboundServerPolicies, InboundServerPoliciesServer},
    proxy_protocol,
};
use weft_proxy::{
    discover::Discovery,
    inbound::{ClientTls, ConnMeta, DefaultPolicy, InboundPolicies, InboundPolicy},
    metrics::Metrics,
};

/// How long the proxy may take to act on something the fake controller did.
const LIMIT: Duration = Duration::from_secs(5);
/// How long a reconnect may take: several backoff steps (100 ms doubling, +50% jitter).
const RECONNECT_LIMIT: Duration = Duration::from_secs(10);

const WORKLOAD: &str = "shop/web-5d8f9";
const PORT: u16 = 8080;

#[tokio::test]
async fn the_port_is_watched_and_each_update_replaces_the_policy() {
    let mut ctl = Controller::start().await;
    let (discovery, metrics) = discovery(ctl.addr, LIMIT);
    let policies = InboundPolicies::with_default(
        Some(discovery.clone()),
        DefaultPolicy::Deny,
        &[],
        metrics.clone(),
    );
    let resolving = tokio::spawn(async move {
        let port = policies.resolve(PORT).await;
        (policies, port)
    });

    let (spec, servers) = ctl.next_watch(LIMIT).await;
    assert_eq!(
        spec,
        PortSpec {
            workload: WORKLOAD.to_string(),
            port: u32::from(PORT),
        }
    );
    servers.send(Ok(server("web-http", true))).expect("send");
    let (_policies, port) = within(LIMIT, "the first policy", resolving)
        .await
        .expect("resolve finishes");
    assert_eq!(&*port.current().name, "web-http");
    assert!(port.check_tcp(&plaintext()).is_ok());

    servers.send(Ok(server("web-locked", false))).expect("send");
    let mut rx = discovery.inbound(PORT);
    next_policy(&mut rx, "the second policy", |p| &*p.name == "web-locked").await;
    assert_eq!(
        &*port.current().name,
        "web-locked",
        "a resolved port follows updates"
    );
    assert!(port.check_tcp(&plaintext()).is_err());

    let text = metrics.encode();
    for line in [
        r#"control_plane_updates_total{kind="inbound"} 2"#,
        r#"inbound_tcp_authz_allow_total{srv_name="web-http",tls="false"} 1"#,
        r#"inbound_tcp_authz_deny_total{srv_name="web-locked",tls="false"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn an_invalid_policy_and_an_outage_keep_the_last_good_one() {
    let mut ctl = Controller::start().await;
    let (discovery, metrics) = discovery(ctl.addr, LIMIT);
    let mut rx = discovery.inbound(PORT);
    let (_, servers) = ctl.next_watch(LIMIT).await;
    servers.send(Ok(server("web-http", true))).expect("send");
    let good = next_policy(&mut rx, "the good policy", |_| true).await;

    let mut invalid = server("broken", true);
    invalid.protocol = None;
    servers.send(Ok(invalid)).expect("send");
    counted(&metrics, 2).await;
    assert!(
        !rx.has_changed().expect("discovery is running"),
        "the invalid policy replaced the good one: {:?}",
        rx.borrow()
    );

    // The stream ends, as when the controller restarts: the proxy keeps the policy, watches
    // the port again and takes the new stream's policy.
    drop(servers);
    let (spec, servers) = ctl.next_watch(RECONNECT_LIMIT).await;
    assert_eq!(spec.port, u32::from(PORT));
    let kept = rx.borrow().clone();
    assert!(
        kept.is_some_and(|p| Arc::ptr_eq(&p, &good)),
        "the policy was dropped"
    );
    servers.send(Ok(server("web-v2", true))).expect("send");
    next_policy(&mut rx, "the restarted stream's policy", |p| {
        &*p.name == "web-v2"
    })
    .await;
}

#[tokio::test]
async fn without_an_answer_in_time_the_default_applies_until_the_controller_answers() {
    let mut ctl = Controller::start().await;
    let (discovery, metrics) = discovery(ctl.addr, Duration::from_millis(200));
    let policies = InboundPolicies::with_default(
        Some(discovery.clone()),
        DefaultPolicy::ClusterAuthenticated,
        &["10.0.0.0/8".parse().expect("a CIDR")],
        metrics,
    );
    let resolving = tokio::spawn(async move {
        let port = policies.resolve(PORT).await;
        (policies, port)
    });
    // The controller takes the call but says nothing.
    let (_, servers) = ctl.next_watch(LIMIT).await;
    let (_policies, port) = within(LIMIT, "the fallback", resolving)
        .await
        .expect("resolve finishes");
    let policy = port.current();
    assert_eq!(&*policy.name, "cluster-authenticated");
    assert!(port.check_tcp(&plaintext()).is_err());
    let meshed = ConnMeta {
        tls: ClientTls::Mesh {
            client_id: "web.shop.serviceaccount.identity.cluster.local".to_string(),
        },
        ..plaintext()
    };
    assert!(port.check_tcp(&meshed).is_ok());

    servers.send(Ok(server("web-http", true))).expect("send");
    let mut rx = discovery.inbound(PORT);
    next_policy(&mut rx, "the late policy", |_| true).await;
    assert_eq!(&*port.current().name, "web-http");
}

#[tokio::test]
async fn without_a_controller_the_default_applies_at_once() {
    let policies = InboundPolicies::with_default(None, DefaultPolicy::Deny, &[], Metrics::new());
    let port = within(LIMIT, "resolve", policies.resolve(PORT)).await;
    assert_eq!(&*port.current().name, "deny");
    assert!(port.check_tcp(&plaintext()).is_err());
}

// === helpers ===

async fn within<F: Future>(limit: Duration, what: &str, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {limit:?}"))
}

fn discovery(controller: SocketAddr, timeout: Duration) -> (Arc<Discovery>, Arc<Metrics>) {
    let metrics = Metrics::new();
    let discovery = Discovery::new(
        &controller.to_string(),
        WORKLOAD.to_string(),
        timeout,
        metrics.clone(),
    )
    .expect("a valid controller address");
    (discovery, metrics)
}

async fn next_policy(
    rx: &mut watch::Receiver<Option<Arc<InboundPolicy>>>,
    what: &str,
    done: impl Fn(&Arc<InboundPolicy>) -> bool,
) -> Arc<InboundPolicy> {
    let found = within(LIMIT, what, rx.wait_for(|p| p.as_ref().is_some_and(&done))).await;
    found
        .expect("discovery is running")
        .clone()
        .expect("a policy")
}

async fn counted(metrics: &Metrics, n: u64) {
    let line = format!(r#"control_plane_updates_total{{kind="inbound"}} {n}"#);
    within(LIMIT, &line, async {
        while !metrics.encode().lines().any(|l| l == line) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn plaintext() -> ConnMeta {
    ConnMeta {
        peer: "10.1.0.1:40000".parse().expect("a socket address"),
        tls: ClientTls::None,
        port: PORT,
    }
}

/// A detecting server named `name` that lets everyone in, or no one.
fn server(name: &str, open: bool) -> proto::Server {
    let everyone = proto::Authz {
        networks: vec![proto::Network {
            net: Some("0.0.0.0/0".parse::<ipnet::IpNet>().expect("a CIDR").into()),
            except: vec![],
        }],
        authentication: Some(proto::Authn {
            permit: Some(authn::Permit::Unauthenticated(
                authn::PermitUnauthenticated {},
            )),
        }),
        labels: [("name".to_string(), "everyone".to_string())].into(),
        metadata: None,
    };
    proto::Server {
        protocol: Some(proto::ProxyProtocol {
            kind: Some(proxy_protocol::Kind::Detect(proxy_protocol::Detect {
                timeout: None,
                http_routes: vec![],
                http_local_rate_limit: None,
            })),
        }),
        server_ips: vec![],
        authorizations: if open { vec![everyone] } else { vec![] },
        labels: [("name".to_string(), name.to_string())].into(),
    }
}

// === fake controller ===

type Servers = UnboundedReceiverStream<Result<proto::Server, Status>>;

/// One `WatchPort` call, answered by the test with a stream of what it sends.
struct Call {
    spec: PortSpec,
    reply: oneshot::Sender<Servers>,
}

/// A fake controller serving `InboundServerPolicies.WatchPort`.
struct Controller {
    addr: SocketAddr,
    calls: mpsc::UnboundedReceiver<Call>,
}

impl Controller {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("bound address");
        let (tx, calls) = mpsc::unbounded_channel();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(InboundServerPoliciesServer::new(Service { calls: tx }))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self { addr, calls }
    }

    /// The next call, answered with a stream the returned sender feeds; dropping the sender
    /// ends the stream.
    async fn next_watch(
        &mut self,
        limit: Duration,
    ) -> (
        PortSpec,
        mpsc::UnboundedSender<Result<proto::Server, Status>>,
    ) {
        let call = within(limit, "a WatchPort call", self.calls.recv())
            .await
            .expect("the controller is running");
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = call.reply.send(UnboundedReceiverStream::new(rx));
        (call.spec, tx)
    }
}

#[derive(Clone)]
struct Service {
    calls: mpsc::UnboundedSender<Call>,
}

#[tonic::async_trait]
impl InboundServerPolicies for Service {
    async fn get_port(&self, _: Request<PortSpec>) -> Result<Response<proto::Server>, Status> {
        Err(Status::unimplemented("the proxy watches"))
    }

    type WatchPortStream = Servers;

    async fn watch_port(
        &self,
        req: Request<PortSpec>,
    ) -> Result<Response<Self::WatchPortStream>, Status> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call {
                spec: req.into_inner(),
                reply,
            })
            .map_err(|_| Status::unavailable("the test is gone"))?;
        let servers = answer
            .await
            .map_err(|_| Status::unavailable("the test dropped the call"))?;
        Ok(Response::new(servers))
    }
}
