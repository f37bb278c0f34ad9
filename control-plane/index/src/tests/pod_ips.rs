//! `DiscoverOutboundPolicy::endpoint`: what the index knows about a pod IP dialed directly
//! (headless services, StatefulSets), for the fallback policy of an address no service has.

use super::*;
use std::net::SocketAddr;
use weft_controller_core::ProtocolHint;

const WEB_ID: &str = "web.shop.serviceaccount.identity.cluster.local";

/// `pod(..)` with `status.podIP`/`podIPs` and a phase.
fn pod_at(name: &str, sa: &str, annotations: Value, ips: &[&str], phase: &str) -> Pod {
    let mut p = pod(name, sa, annotations);
    let listed: Vec<Value> = ips.iter().map(|ip| json!({ "ip": ip })).collect();
    p.status = Some(obj(json!({
        "phase": phase, "podIP": ips.first(), "podIPs": listed,
    })));
    p
}

fn sa(a: &str) -> SocketAddr {
    a.parse().expect("valid address")
}

#[test]
fn a_meshed_pod_ip_has_the_pods_identity_and_an_unmeshed_one_none() {
    let index = new_index();
    let opaque = json!({ "weft.dev/proxy-version": "v0.1.0", "weft.dev/opaque-ports": "5432" });
    apply(
        &index,
        pod_at(
            "web-0",
            "web",
            meshed(),
            &["10.1.0.7", "fd00::7"],
            "Running",
        ),
    );
    apply(
        &index,
        pod_at("db-0", "db", opaque, &["10.1.0.8"], "Running"),
    );
    apply(
        &index,
        pod_at("legacy-0", "legacy", json!({}), &["10.1.0.9"], "Running"),
    );

    let web = index
        .endpoint(sa("10.1.0.7:8080"))
        .expect("a pod has this IP");
    assert_eq!(web.addr, sa("10.1.0.7:8080"));
    assert_eq!(web.identity.as_deref(), Some(WEB_ID));
    assert_eq!(web.protocol_hint, Some(ProtocolHint::H2));
    assert_eq!(web.pod, Some((NS.to_string(), "web-0".to_string())));
    assert_eq!(
        web.labels.get("serviceaccount").map(String::as_str),
        Some("web")
    );
    // Every IP of a dual-stack pod is the pod.
    let v6 = index
        .endpoint(sa("[fd00::7]:8080"))
        .expect("the pod's IPv6");
    assert_eq!(v6.identity.as_deref(), Some(WEB_ID));

    // The pod's opaque ports are opaque to a direct caller too; others are HTTP/2-capable.
    let db = |port| index.endpoint(SocketAddr::new(sa("10.1.0.8:0").ip(), port));
    assert_eq!(
        db(5432).and_then(|e| e.protocol_hint),
        Some(ProtocolHint::Opaque)
    );
    assert_eq!(
        db(8080).and_then(|e| e.protocol_hint),
        Some(ProtocolHint::H2)
    );

    let legacy = index
        .endpoint(sa("10.1.0.9:80"))
        .expect("a pod has this IP");
    assert_eq!(legacy.identity, None);
    assert_eq!(legacy.protocol_hint, None);
    assert_eq!(legacy.pod, Some((NS.to_string(), "legacy-0".to_string())));

    assert_eq!(index.endpoint(sa("10.1.0.10:80")), None);
}

#[test]
fn pod_ips_follow_pods_and_signal_a_lookup_again() {
    let index = new_index();
    let mut changed = index.services_changed();
    changed.borrow_and_update();

    // Scheduled, no IP yet: nothing to find, nothing to signal.
    apply(&index, pod_at("web-0", "web", meshed(), &[], "Pending"));
    assert!(!changed.has_changed().expect("index alive"));
    assert_eq!(index.endpoint(sa("10.1.0.7:80")), None);

    // It gets its IP: watches on that address look again and find it.
    apply(
        &index,
        pod_at("web-0", "web", meshed(), &["10.1.0.7"], "Running"),
    );
    assert!(changed.has_changed().expect("index alive"));
    changed.borrow_and_update();
    let found = index.endpoint(sa("10.1.0.7:80")).and_then(|e| e.identity);
    assert_eq!(found.as_deref(), Some(WEB_ID));

    // Finished: the IP may go to another pod, so it is not this pod's any more.
    apply(
        &index,
        pod_at("web-0", "web", meshed(), &["10.1.0.7"], "Succeeded"),
    );
    assert!(changed.has_changed().expect("index alive"));
    changed.borrow_and_update();
    assert_eq!(index.endpoint(sa("10.1.0.7:80")), None);

    // A new pod takes the IP; deleting the old one does not forget it.
    apply(
        &index,
        pod_at("legacy-0", "legacy", json!({}), &["10.1.0.7"], "Running"),
    );
    delete::<Pod>(&index, NS, "web-0");
    let now = index
        .endpoint(sa("10.1.0.7:80"))
        .expect("legacy-0 has the IP");
    assert_eq!(now.pod, Some((NS.to_string(), "legacy-0".to_string())));
    assert_eq!(now.identity, None);

    delete::<Pod>(&index, NS, "legacy-0");
    assert_eq!(index.endpoint(sa("10.1.0.7:80")), None);

    // A host-network pod's IP is the node's, never the pod's.
    let mut host = pod_at(
        "node-agent",
        "agent",
        meshed(),
        &["192.168.1.10"],
        "Running",
    );
    if let Some(spec) = host.spec.as_mut() {
        spec.host_network = Some(true);
    }
    apply(&index, host);
    assert_eq!(index.endpoint(sa("192.168.1.10:80")), None);
}

#[test]
fn the_proxy_admin_port_and_skipped_ports_of_a_meshed_pod_expect_no_identity() {
    let index = new_index();
    let skips =
        json!({ "weft.dev/proxy-version": "v0.1.0", "weft.dev/skip-inbound-ports": "9000-9001" });
    apply(
        &index,
        pod_at("web-0", "web", skips, &["10.1.0.7"], "Running"),
    );
    let at = |port: u16| {
        index
            .endpoint(SocketAddr::new([10, 1, 0, 7].into(), port))
            .expect("a pod has this IP")
    };
    assert_eq!(at(8080).identity.as_deref(), Some(WEB_ID));
    for port in [4191, 9000, 9001] {
        let ep = at(port);
        assert_eq!(
            ep.identity, None,
            "port {port} does not reach the inbound proxy"
        );
        assert_eq!(ep.protocol_hint, None, "port {port}");
    }
}
