//! `DiscoverEndpoints`: what the pods behind endpoints add: identity, protocol hints, labels.

use super::endpoints::{changed, endpoint, web};
use super::*;
use weft_controller_core::{Endpoint, ProtocolHint, endpoints::DEFAULT_WEIGHT};

#[test]
fn meshed_pods_give_identity_and_h2_and_every_pod_gives_labels() {
    let index = new_index();
    apply(&index, service("web", "10.0.0.1"));
    apply(&index, pod("web-1", "web", meshed()));
    apply(&index, pod("web-2", "legacy", json!({})));
    let bare = json!({ "addresses": ["10.1.0.3"] });
    let eps = json!([ep("10.1.0.1", "web-1"), ep("10.1.0.2", "web-2"), bare]);
    apply(&index, slice("web-a", "web", eps));
    let mut rx = index.endpoints(&service_port("web", 8080));

    let pod_endpoint = |ip: &str, pod: &str, sa: &str| Endpoint {
        addr: format!("{ip}:80").parse().expect("valid address"),
        weight: DEFAULT_WEIGHT,
        identity: None,
        protocol_hint: None,
        labels: labels([("app", "web"), ("pod", pod), ("serviceaccount", sa)]),
        pod: Some((NS.to_string(), pod.to_string())),
        terminating: false,
    };
    let meshed = Endpoint {
        identity: Some("web.shop.serviceaccount.identity.cluster.local".to_string()),
        protocol_hint: Some(ProtocolHint::H2),
        ..pod_endpoint("10.1.0.1", "web-1", "web")
    };
    assert_eq!(endpoint(&mut rx, "10.1.0.1:80"), meshed);
    let unmeshed = pod_endpoint("10.1.0.2", "web-2", "legacy");
    assert_eq!(endpoint(&mut rx, "10.1.0.2:80"), unmeshed);
    let no_pod = Endpoint {
        labels: BTreeMap::new(),
        pod: None,
        ..pod_endpoint("10.1.0.3", "-", "-")
    };
    assert_eq!(endpoint(&mut rx, "10.1.0.3:80"), no_pod);
}

#[test]
fn a_pod_applied_after_its_slice_updates_the_endpoint() {
    let index = web();
    let mut rx = index.endpoints(&service_port("web", 8080));
    let before = endpoint(&mut rx, "10.1.0.1:80");
    assert_eq!((before.identity, before.labels), (None, BTreeMap::new()));
    assert_eq!(before.pod, Some((NS.to_string(), "web-1".to_string())));

    let web_1 = pod("web-1", "web", meshed());
    apply(&index, web_1.clone());
    assert!(changed(&rx));
    let identity = Some("web.shop.serviceaccount.identity.cluster.local".to_string());
    assert_eq!(endpoint(&mut rx, "10.1.0.1:80").identity, identity);

    apply(&index, web_1.clone());
    assert!(!changed(&rx), "the same pod again changes nothing");

    delete::<Pod>(&index, NS, "web-1");
    assert!(changed(&rx));
    assert_eq!(endpoint(&mut rx, "10.1.0.1:80").identity, None);

    apply(&index, web_1);
    assert!(changed(&rx));
    assert!(endpoint(&mut rx, "10.1.0.1:80").identity.is_some());
    reset::<Pod>(&index, vec![pod("web-9", "web", meshed())]);
    assert!(changed(&rx));
    let after = endpoint(&mut rx, "10.1.0.1:80");
    assert_eq!((after.identity, after.protocol_hint), (None, None));
}

#[test]
fn opaque_ports_hint_opaque() {
    let index = new_index();
    let opaque = json!({ "weft.dev/opaque-ports": "8080" });
    let ports = json!([{ "name": "http", "port": 8080, "targetPort": 80 }]);
    apply(&index, service_with("web", "10.0.0.1", opaque, ports));
    let ports = json!([{ "name": "mysql", "port": 3306, "appProtocol": "tcp" }]);
    apply(&index, service_with("db", "10.0.0.2", json!({}), ports));
    let ports = json!([
        { "name": "http", "port": 8080, "targetPort": 80 },
        { "name": "admin", "port": 9090, "targetPort": 9990 },
    ]);
    apply(
        &index,
        service_with("api", "10.0.0.3", json!({}), ports.clone()),
    );
    apply(&index, pod("web-1", "web", meshed()));
    let pod_opaque = json!({ "weft.dev/proxy-version": "v1", "weft.dev/opaque-ports": "80" });
    apply(&index, pod("api-1", "api", pod_opaque));
    let eps = json!([ep("10.1.0.1", "web-1"), ep("10.1.0.2", "web-2")]);
    apply(&index, slice("web-a", "web", eps));
    let eps = json!([ep("10.1.0.9", "db-1")]);
    apply(
        &index,
        slice_with(
            "db-a",
            "db",
            json!([{ "name": "mysql", "port": 3306 }]),
            eps,
        ),
    );
    let slice_ports = json!([{ "name": "http", "port": 80 }, { "name": "admin", "port": 9990 }]);
    apply(
        &index,
        slice_with(
            "api-a",
            "api",
            slice_ports,
            json!([ep("10.1.0.5", "api-1")]),
        ),
    );

    let hint = |svc: &str, port: u16, addr: &str| {
        endpoint(&mut index.endpoints(&service_port(svc, port)), addr).protocol_hint
    };
    assert_eq!(hint("web", 8080, "10.1.0.1:80"), Some(ProtocolHint::Opaque));
    assert_eq!(
        hint("web", 8080, "10.1.0.2:80"),
        Some(ProtocolHint::Opaque),
        "unmeshed too"
    );
    assert_eq!(
        hint("db", 3306, "10.1.0.9:3306"),
        Some(ProtocolHint::Opaque)
    );
    assert_eq!(hint("api", 8080, "10.1.0.5:80"), Some(ProtocolHint::Opaque));
    assert_eq!(
        hint("api", 9090, "10.1.0.5:9990"),
        Some(ProtocolHint::H2),
        "only port 80"
    );
}
