//! `OutboundPolicies.Watch`/`Get`: known services, fallback for unknown addresses (with the
//! identity of a meshed pod at that IP), bad specs.

mod asserts;
pub(crate) mod fixtures;

use crate::{Fake, PATIENCE, eventually, next, start};
use asserts::*;
use fixtures::*;
use std::{collections::BTreeMap, net::SocketAddr, time::Duration};
use weft_controller_core::{Endpoint, OutboundTarget, ProtocolHint, endpoints::DEFAULT_WEIGHT};
use weft_proto::{
    destination::{WeightedAddr, protocol_hint, tls_identity},
    http_route as route,
    meta::{self, metadata},
    net::TcpAddress,
    outbound::{
        TrafficSpec, outbound_policies_client::OutboundPoliciesClient, proxy_protocol,
        traffic_spec::Target,
    },
};

fn by_addr(addr: SocketAddr) -> TrafficSpec {
    TrafficSpec {
        source_workload: "shop/client".to_string(),
        target: Some(Target::Addr(addr.into())),
    }
}

fn by_authority(authority: &str) -> TrafficSpec {
    TrafficSpec {
        source_workload: "shop/client".to_string(),
        target: Some(Target::Authority(authority.to_string())),
    }
}

async fn client(server: &crate::TestServer) -> OutboundPoliciesClient<tonic::transport::Channel> {
    OutboundPoliciesClient::new(server.channel().await)
}

#[tokio::test]
async fn a_cluster_ip_gets_its_full_policy_and_every_change() {
    let fake = Fake::default();
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), http_policy(90, 10));
    let server = start(&fake).await;
    let mut watch = client(&server)
        .await
        .watch(by_addr(CLUSTER_IP))
        .await
        .unwrap()
        .into_inner();

    let policy = next(&mut watch).await;
    assert_eq!(policy.metadata, Some(service_meta("web", 80)));
    let d = detect(&policy);
    assert_eq!(d.timeout, Some(Duration::from_secs(10).try_into().unwrap()));
    let http1 = &d.http1.as_ref().unwrap().routes;
    assert_eq!(
        Some(http1),
        d.http2.as_ref().map(|h| &h.routes),
        "same routes for both"
    );
    assert_eq!(http1.len(), 1);
    let route = &http1[0];
    assert_eq!(
        route.metadata.as_ref().and_then(|m| m.kind.clone()),
        Some(metadata::Kind::Resource(meta::Resource {
            group: "gateway.networking.k8s.io".into(),
            kind: "HTTPRoute".into(),
            namespace: "shop".into(),
            name: "web-split".into(),
            ..Default::default()
        }))
    );
    assert_eq!(
        route.hosts,
        vec![
            route::HostMatch {
                r#match: Some(route::host_match::Match::Exact("web.example.com".into()))
            },
            route::HostMatch {
                r#match: Some(route::host_match::Match::Suffix(
                    route::host_match::Suffix {
                        reverse_labels: vec!["com".into(), "example".into()],
                    }
                )),
            },
        ]
    );
    assert_split_rule(&route.rules[0], 90, 10);
    assert_redirect_rule(&route.rules[1]);

    // The opaque fallback of detection goes to the opaque backends.
    let opaque = &d.opaque.as_ref().unwrap().routes[0];
    assert_eq!(
        opaque.metadata.as_ref().unwrap().kind,
        Some(metadata::Kind::Default("opaque".into()))
    );
    assert_eq!(
        opaque_weights(opaque),
        vec![(1, "web.shop.svc.cluster.local:80".to_string())]
    );

    // A change is pushed.
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), http_policy(50, 50));
    let changed = next(&mut watch).await;
    let rule = &detect(&changed).http1.as_ref().unwrap().routes[0].rules[0];
    assert_split_rule(rule, 50, 50);
}

#[tokio::test]
async fn opaque_and_grpc_services_get_their_protocols() {
    let fake = Fake::default();
    let opaque_ip: SocketAddr = "10.96.0.11:5432".parse().unwrap();
    fake.set_policy(OutboundTarget::Addr(opaque_ip), opaque_policy());
    fake.set_policy(
        OutboundTarget::Authority(GRPC_AUTHORITY.into()),
        grpc_policy(),
    );
    let server = start(&fake).await;
    let mut client = client(&server).await;

    let policy = client.get(by_addr(opaque_ip)).await.unwrap().into_inner();
    let Some(proxy_protocol::Kind::Opaque(opaque)) = policy.protocol.and_then(|p| p.kind) else {
        panic!("expected opaque");
    };
    assert_eq!(
        opaque_weights(&opaque.routes[0]),
        vec![
            (3, "db-a.shop.svc.cluster.local:5432".into()),
            (1, "db-b.shop.svc.cluster.local:5432".into())
        ]
    );

    let mut watch = client
        .watch(by_authority(GRPC_AUTHORITY))
        .await
        .unwrap()
        .into_inner();
    let policy = next(&mut watch).await;
    assert_eq!(policy.metadata, Some(service_meta("cart", 9090)));
    let Some(proxy_protocol::Kind::Grpc(grpc)) = policy.protocol.and_then(|p| p.kind) else {
        panic!("expected grpc");
    };
    assert_grpc_route(&grpc.routes[0]);
}

#[tokio::test]
async fn an_unknown_ip_forwards_until_a_service_takes_it() {
    let fake = Fake::default();
    let server = start(&fake).await;
    let mut watch = client(&server)
        .await
        .watch(by_addr(CLUSTER_IP))
        .await
        .unwrap()
        .into_inner();

    assert_fallback(&next(&mut watch).await, CLUSTER_IP);

    // A service takes the address.
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), http_policy(1, 1));
    fake.bump_services();
    let policy = next(&mut watch).await;
    assert_eq!(policy.metadata, Some(service_meta("web", 80)));

    // It is deleted: forward again.
    fake.remove_policy(&OutboundTarget::Addr(CLUSTER_IP));
    fake.bump_services();
    assert_fallback(&next(&mut watch).await, CLUSTER_IP);

    // Unrelated changes make the server look again but send nothing: the next message is the
    // service coming back.
    for _ in 0..2 {
        let seen = fake.lookups();
        fake.bump_services();
        eventually("the server looks the address up again", || {
            fake.lookups() > seen
        })
        .await;
    }
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), http_policy(2, 1));
    fake.bump_services();
    let back = next(&mut watch).await;
    let rule = &detect(&back).http1.as_ref().unwrap().routes[0].rules[0];
    assert_eq!(random_backends(rule)[0].0, 2);
}

const POD_ID: &str = "web.shop.serviceaccount.identity.cluster.local";

/// A meshed pod at 10.244.0.7, as the index reports it.
fn meshed_pod() -> Endpoint {
    Endpoint {
        addr: "10.244.0.7:0".parse().unwrap(),
        weight: DEFAULT_WEIGHT,
        identity: Some(POD_ID.to_string()),
        protocol_hint: Some(ProtocolHint::H2),
        labels: BTreeMap::from([("pod".to_string(), "web-v1-0".to_string())]),
        pod: Some(("shop".to_string(), "web-v1-0".to_string())),
        terminating: false,
    }
}

/// The DNS-like identity (and SNI name) a forward address tells the proxy to expect.
fn forward_identity(w: &WeightedAddr) -> Option<String> {
    let id = w.tls_identity.as_ref()?;
    let Some(tls_identity::Strategy::DnsLikeIdentity(dns)) = &id.strategy else {
        panic!("expected a DNS-like identity: {id:?}");
    };
    assert_eq!(id.server_name.as_ref(), Some(dns), "SNI is the identity");
    Some(dns.name.clone())
}

#[tokio::test]
async fn a_meshed_pod_ip_is_forwarded_to_with_its_identity() {
    let fake = Fake::default();
    fake.set_pod(meshed_pod());
    let server = start(&fake).await;
    let mut client = client(&server).await;

    let pod_ip: SocketAddr = "10.244.0.7:8080".parse().unwrap();
    let policy = client.get(by_addr(pod_ip)).await.unwrap().into_inner();
    assert_fallback(&policy, pod_ip);
    let meshed = forwards(&policy);
    assert_eq!(meshed.len(), 3, "http1, http2, opaque");
    for w in &meshed {
        assert_eq!(forward_identity(w).as_deref(), Some(POD_ID));
        let hint = w.protocol_hint.as_ref().and_then(|h| h.protocol);
        assert!(
            matches!(hint, Some(protocol_hint::Protocol::H2(_))),
            "{w:?}"
        );
        assert_eq!(
            w.metric_labels.get("pod").map(String::as_str),
            Some("web-v1-0")
        );
    }

    // An IP no pod has: forwarded in plaintext, with nothing claimed about the peer.
    let other: SocketAddr = "10.244.0.99:8080".parse().unwrap();
    let policy = client.get(by_addr(other)).await.unwrap().into_inner();
    assert_fallback(&policy, other);
    for w in forwards(&policy) {
        assert_eq!(forward_identity(&w), None);
        assert_eq!(w.protocol_hint, None);
    }
}

#[tokio::test]
async fn a_pod_ip_watch_learns_the_identity_once_the_pod_is_known() {
    let fake = Fake::default();
    let server = start(&fake).await;
    let pod_ip: SocketAddr = "10.244.0.7:8080".parse().unwrap();
    let mut watch = client(&server)
        .await
        .watch(by_addr(pod_ip))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut watch).await;
    assert_fallback(&first, pod_ip);
    assert_eq!(forward_identity(&forwards(&first)[0]), None);

    // The index learns the pod's IP (it is signalled like a service change).
    fake.set_pod(meshed_pod());
    fake.bump_services();
    let second = next(&mut watch).await;
    assert_fallback(&second, pod_ip);
    for w in forwards(&second) {
        assert_eq!(forward_identity(&w).as_deref(), Some(POD_ID));
    }

    // A service taking the address still wins.
    fake.set_policy(OutboundTarget::Addr(pod_ip), http_policy(1, 1));
    fake.bump_services();
    let policy = next(&mut watch).await;
    assert_eq!(policy.metadata, Some(service_meta("web", 80)));
}

#[tokio::test]
async fn unknown_authorities_are_not_found_and_bad_specs_invalid() {
    let fake = Fake::default();
    let server = start(&fake).await;
    let mut client = client(&server).await;

    for authority in ["nope.shop.svc.cluster.local:80", "example.com:443"] {
        let err = client
            .watch(by_authority(authority))
            .await
            .expect_err(authority);
        assert_eq!(
            err.code(),
            tonic::Code::NotFound,
            "{authority}: {}",
            err.message()
        );
        let err = client
            .get(by_authority(authority))
            .await
            .expect_err(authority);
        assert_eq!(
            err.code(),
            tonic::Code::NotFound,
            "{authority}: {}",
            err.message()
        );
    }

    let ip = |port| TcpAddress {
        ip: Some("10.96.0.10".parse::<std::net::IpAddr>().unwrap().into()),
        port,
    };
    let bad = [
        (
            "no target",
            TrafficSpec {
                source_workload: String::new(),
                target: None,
            },
        ),
        (
            "port 0",
            TrafficSpec {
                target: Some(Target::Addr(ip(0))),
                ..Default::default()
            },
        ),
        (
            "port 70000",
            TrafficSpec {
                target: Some(Target::Addr(ip(70_000))),
                ..Default::default()
            },
        ),
        (
            "no ip",
            TrafficSpec {
                target: Some(Target::Addr(TcpAddress { ip: None, port: 80 })),
                ..Default::default()
            },
        ),
        ("empty authority", by_authority("")),
    ];
    for (what, spec) in bad {
        let err = client.watch(spec.clone()).await.expect_err(what);
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{what}: {}",
            err.message()
        );
        let err = client.get(spec).await.expect_err(what);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}");
    }

    let fallback = client.get(by_addr(CLUSTER_IP)).await.unwrap().into_inner();
    assert_fallback(&fallback, CLUSTER_IP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_blocks_nothing_and_gets_the_latest_policy() {
    let fake = Fake::default();
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), http_policy(0, 0));
    let server = start(&fake).await;
    let mut watch = client(&server)
        .await
        .watch(by_addr(CLUSTER_IP))
        .await
        .unwrap()
        .into_inner();
    next(&mut watch).await;

    let publisher = tokio::task::spawn_blocking({
        let fake = fake.clone();
        move || {
            for i in 1..=10_000 {
                fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), http_policy(i, 1));
            }
        }
    });
    crate::within(publisher).await.unwrap();

    let latest = tokio::time::timeout(PATIENCE, async {
        loop {
            let policy = watch.message().await.unwrap().unwrap();
            let rule = &detect(&policy).http1.as_ref().unwrap().routes[0].rules[0];
            if random_backends(rule)[0].0 == 10_000 {
                return;
            }
        }
    })
    .await;
    assert!(latest.is_ok(), "the latest policy never arrived");
}
