//! `Destination.Get`: first message, deltas, bad paths, slow clients.

use crate::{Fake, PATIENCE, next, start};
use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    num::NonZeroU16,
};
use weft_controller_core::{Endpoint, EndpointSet, ProtocolHint, ServicePort, ServiceRef};
use weft_proto::{
    destination::{
        GetDestination, TlsIdentity, Update, WeightedAddr, destination_client::DestinationClient,
        protocol_hint, tls_identity, update,
    },
    meta,
};

const PATH: &str = "web.shop.svc.cluster.local:8080";

fn web() -> ServicePort {
    ServicePort::new(
        ServiceRef::new("shop", "web"),
        NonZeroU16::new(8080).unwrap(),
    )
}

fn ep(ip: &str, pod: &str) -> Endpoint {
    let addr: SocketAddr = format!("{ip}:8080").parse().unwrap();
    Endpoint {
        addr,
        weight: 10_000,
        identity: Some("web.shop.serviceaccount.identity.cluster.local".to_string()),
        protocol_hint: Some(ProtocolHint::H2),
        labels: [("pod".to_string(), pod.to_string())].into(),
        pod: Some(("shop".to_string(), pod.to_string())),
        terminating: false,
    }
}

fn set(eps: &[Endpoint]) -> EndpointSet {
    EndpointSet {
        exists: true,
        labels: [("service".to_string(), "web".to_string())].into(),
        endpoints: eps.iter().map(|e| (e.addr, e.clone())).collect(),
    }
}

async fn get(server: &crate::TestServer, path: &str) -> tonic::Streaming<Update> {
    let mut client = DestinationClient::new(server.channel().await);
    client
        .get(GetDestination {
            path: path.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The addresses of an `add`, sorted; panics on any other message.
fn added(u: Update) -> Vec<SocketAddr> {
    match u.update {
        Some(update::Update::Add(set)) => {
            let mut addrs: Vec<SocketAddr> = set
                .addrs
                .into_iter()
                .map(|a| a.addr.unwrap().try_into().unwrap())
                .collect();
            addrs.sort();
            addrs
        }
        other => panic!("expected add, got {other:?}"),
    }
}

fn removed(u: Update) -> Vec<SocketAddr> {
    match u.update {
        Some(update::Update::Remove(set)) => {
            let mut addrs: Vec<SocketAddr> = set
                .addrs
                .into_iter()
                .map(|a| a.try_into().unwrap())
                .collect();
            addrs.sort();
            addrs
        }
        other => panic!("expected remove, got {other:?}"),
    }
}

fn no_endpoints(u: Update) -> bool {
    match u.update {
        Some(update::Update::NoEndpoints(n)) => n.exists,
        other => panic!("expected no_endpoints, got {other:?}"),
    }
}

#[tokio::test]
async fn first_message_is_add_with_every_endpoint_and_its_metadata() {
    let fake = Fake::default();
    let (a, b) = (ep("10.0.0.1", "web-1"), ep("10.0.0.2", "web-2"));
    let mut opaque = b.clone();
    opaque.protocol_hint = Some(ProtocolHint::Opaque);
    opaque.identity = None;
    opaque.pod = None;
    fake.set_endpoints(&web(), set(&[a.clone(), opaque.clone()]));
    let server = start(&fake).await;

    let update = next(&mut get(&server, PATH).await).await;
    let Some(update::Update::Add(set)) = update.update else {
        panic!("expected add, got {update:?}");
    };
    assert_eq!(
        set.metric_labels,
        HashMap::from([("service".into(), "web".into())])
    );
    let by_addr: BTreeMap<SocketAddr, WeightedAddr> = set
        .addrs
        .into_iter()
        .map(|w| (w.addr.unwrap().try_into().unwrap(), w))
        .collect();
    assert_eq!(by_addr.len(), 2);

    let dns = tls_identity::DnsLikeIdentity {
        name: "web.shop.serviceaccount.identity.cluster.local".to_string(),
    };
    let meshed = &by_addr[&a.addr];
    assert_eq!(meshed.weight, 10_000);
    assert_eq!(
        meshed.metric_labels,
        HashMap::from([("pod".into(), "web-1".into())])
    );
    assert_eq!(
        meshed.tls_identity,
        Some(TlsIdentity {
            strategy: Some(tls_identity::Strategy::DnsLikeIdentity(dns.clone())),
            server_name: Some(dns),
        })
    );
    let hint = meshed.protocol_hint.unwrap();
    assert_eq!(
        hint.protocol,
        Some(protocol_hint::Protocol::H2(protocol_hint::H2 {}))
    );
    assert_eq!(hint.opaque_transport, None);
    let Some(meta::metadata::Kind::Resource(pod)) =
        meshed.resource_ref.clone().and_then(|m| m.kind)
    else {
        panic!("no pod resource_ref: {meshed:?}");
    };
    assert_eq!(
        (pod.kind.as_str(), pod.namespace.as_str(), pod.name.as_str()),
        ("Pod", "shop", "web-1")
    );

    let plain = &by_addr[&opaque.addr];
    assert_eq!(plain.tls_identity, None);
    assert_eq!(plain.resource_ref, None);
    assert_eq!(
        plain.protocol_hint.unwrap().protocol,
        Some(protocol_hint::Protocol::Opaque(protocol_hint::Opaque {}))
    );
}

#[tokio::test]
async fn first_message_says_whether_the_service_exists() {
    let fake = Fake::default();
    let server = start(&fake).await;
    assert!(
        !no_endpoints(next(&mut get(&server, PATH).await).await),
        "unknown service"
    );

    fake.set_endpoints(&web(), set(&[]));
    assert!(
        no_endpoints(next(&mut get(&server, PATH).await).await),
        "service without endpoints"
    );
}

#[tokio::test]
async fn no_endpoints_follows_existence_only_until_an_add() {
    let fake = Fake::default();
    let server = start(&fake).await;
    let mut updates = get(&server, PATH).await;
    assert!(!no_endpoints(next(&mut updates).await));

    fake.set_endpoints(&web(), set(&[]));
    assert!(
        no_endpoints(next(&mut updates).await),
        "the service appeared"
    );

    let a = ep("10.0.0.1", "web-1");
    fake.set_endpoints(&web(), set(std::slice::from_ref(&a)));
    assert_eq!(added(next(&mut updates).await), vec![a.addr]);

    // After an add, losing every endpoint, and then the service, is a remove and nothing else.
    fake.set_endpoints(&web(), set(&[]));
    assert_eq!(removed(next(&mut updates).await), vec![a.addr]);
    // The service goes away (the server may or may not see this state before the next: watch
    // channels keep only the latest; the unit tests of `Updates` cover it step by step)...
    fake.set_endpoints(&web(), EndpointSet::default());
    // ...and comes back: the next message must be this add, not no_endpoints.
    let b = ep("10.0.0.2", "web-2");
    fake.set_endpoints(&web(), set(std::slice::from_ref(&b)));
    assert_eq!(added(next(&mut updates).await), vec![b.addr]);
}

#[tokio::test]
async fn changes_are_sent_as_deltas() {
    let fake = Fake::default();
    let (a, b) = (ep("10.0.0.1", "web-1"), ep("10.0.0.2", "web-2"));
    fake.set_endpoints(&web(), set(std::slice::from_ref(&a)));
    let server = start(&fake).await;
    let mut updates = get(&server, PATH).await;
    assert_eq!(added(next(&mut updates).await), vec![a.addr]);

    fake.set_endpoints(&web(), set(&[a.clone(), b.clone()]));
    assert_eq!(
        added(next(&mut updates).await),
        vec![b.addr],
        "only the new endpoint"
    );

    let mut a2 = a.clone();
    a2.labels.insert("zone".to_string(), "z1".to_string());
    fake.set_endpoints(&web(), set(&[a2.clone(), b.clone()]));
    let changed = next(&mut updates).await;
    let Some(update::Update::Add(ref readded)) = changed.update else {
        panic!("expected add, got {changed:?}");
    };
    assert_eq!(readded.addrs.len(), 1);
    assert_eq!(
        readded.addrs[0]
            .metric_labels
            .get("zone")
            .map(String::as_str),
        Some("z1")
    );
    assert_eq!(added(changed), vec![a.addr], "changed metadata is re-added");

    fake.set_endpoints(&web(), set(std::slice::from_ref(&a2)));
    assert_eq!(removed(next(&mut updates).await), vec![b.addr]);

    // Replacing every endpoint: the new one first, so the client is never empty.
    let c = ep("10.0.0.3", "web-3");
    fake.set_endpoints(&web(), set(std::slice::from_ref(&c)));
    assert_eq!(added(next(&mut updates).await), vec![c.addr]);
    assert_eq!(removed(next(&mut updates).await), vec![a.addr]);

    // The service is deleted: the rest is removed, never no_endpoints after an add.
    fake.set_endpoints(&web(), EndpointSet::default());
    assert_eq!(removed(next(&mut updates).await), vec![c.addr]);
}

#[tokio::test]
async fn malformed_paths_are_invalid_arguments() {
    let fake = Fake::default();
    let server = start(&fake).await;
    let mut client = DestinationClient::new(server.channel().await);
    for path in [
        "",
        "web.shop.svc.cluster.local",
        "10.0.0.1:80",
        "web.shop.svc.example.org:80",
    ] {
        let err = client
            .get(GetDestination {
                path: path.to_string(),
                ..Default::default()
            })
            .await
            .expect_err(path);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{path}");
        assert!(
            err.message().contains("expected"),
            "{path}: {}",
            err.message()
        );
    }
}

/// A client that stops reading while 10,000 updates are published blocks neither the
/// publisher nor other streams, and catches up to the latest set when it reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_blocks_nothing_and_gets_the_latest_set() {
    let fake = Fake::default();
    let other = ServicePort::new(ServiceRef::new("shop", "api"), NonZeroU16::new(80).unwrap());
    let server = start(&fake).await;
    let mut stalled = get(&server, PATH).await;
    let mut other_updates = get(&server, "api.shop.svc.cluster.local:80").await;
    assert!(!no_endpoints(next(&mut stalled).await));
    assert!(!no_endpoints(next(&mut other_updates).await));

    let publisher = tokio::task::spawn_blocking({
        let fake = fake.clone();
        move || {
            for i in 0..10_000u32 {
                let ip = format!("10.1.{}.{}", i / 250, i % 250 + 1);
                fake.set_endpoints(&web(), set(&[ep(&ip, &format!("web-{i}"))]));
            }
        }
    });
    crate::within(publisher).await.unwrap();

    // Another stream on the same server still moves.
    let api = ep("10.2.0.1", "api-1");
    fake.set_endpoints(&other, set(std::slice::from_ref(&api)));
    assert_eq!(added(next(&mut other_updates).await), vec![api.addr]);

    // The stalled client replays what it gets until it holds exactly the latest set.
    let latest: SocketAddr = "10.1.39.250:8080".parse().unwrap();
    let mut held = std::collections::BTreeSet::new();
    let caught_up = tokio::time::timeout(PATIENCE, async {
        while held != std::collections::BTreeSet::from([latest]) {
            let update = stalled.message().await.unwrap().unwrap();
            match update.update {
                Some(update::Update::Add(_)) => held.extend(added(update)),
                Some(update::Update::Remove(_)) => {
                    for addr in removed(update) {
                        held.remove(&addr);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    assert!(caught_up.is_ok(), "never caught up; holds {held:?}");
}
