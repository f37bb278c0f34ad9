//! `DiscoverOutboundPolicy`: Services and TrafficSplits in, outbound policies out.

use super::*;
use std::sync::Arc;
use tokio::sync::watch;
use weft_controller_core::{
    OutboundPolicy,
    outbound::{self as out, Backend, ResourceRef, WeightedBackend},
};

pub(super) type Rx = watch::Receiver<Arc<OutboundPolicy>>;

pub(super) const WEB_AUTHORITY: &str = "web.shop.svc.cluster.local:8080";

/// Port 8080 of service `name`, with `weight`.
pub(super) fn backend(name: &str, weight: u32, exists: bool) -> WeightedBackend {
    WeightedBackend {
        backend: Backend::Service {
            target: service_port(name, 8080),
            authority: format!("{name}.shop.svc.cluster.local:8080"),
            exists,
        },
        weight,
        filters: vec![],
    }
}

pub(super) fn default_route(backends: Vec<WeightedBackend>) -> out::HttpRoute {
    out::HttpRoute {
        resource: ResourceRef::Default("http".to_string()),
        hostnames: vec![],
        rules: vec![out::HttpRule {
            backends,
            ..out::HttpRule::default()
        }],
    }
}

/// The policy of web:8080 with these routes and opaque backends.
pub(super) fn web_policy(
    http_routes: Vec<out::HttpRoute>,
    opaque_backends: Vec<WeightedBackend>,
) -> OutboundPolicy {
    OutboundPolicy {
        parent: service_port("web", 8080),
        authority: WEB_AUTHORITY.to_string(),
        opaque: false,
        http_routes,
        grpc_routes: vec![],
        opaque_backends,
        retry_budget: Default::default(),
        failure_accrual: None,
    }
}

/// The policy of web:8080 when nothing but the Service says anything.
pub(super) fn web_default() -> OutboundPolicy {
    web_policy(
        vec![default_route(vec![backend("web", 1, true)])],
        vec![backend("web", 1, true)],
    )
}

pub(super) fn watch_web(index: &SharedIndex) -> Rx {
    index
        .outbound_policy(&addr("10.0.0.1:8080"))
        .expect("web:8080 is a known service port")
}

pub(super) fn changed(rx: &Rx) -> bool {
    rx.has_changed().expect("the outbound channel stays open")
}

pub(super) fn current(rx: &mut Rx) -> OutboundPolicy {
    (**rx.borrow_and_update()).clone()
}

/// `web`, `web-v1` and `web-v2`, each with port 8080.
pub(super) fn shop() -> SharedIndex {
    let index = new_index();
    apply(&index, service("web", "10.0.0.1"));
    apply(&index, service("web-v1", "10.0.0.11"));
    apply(&index, service("web-v2", "10.0.0.12"));
    index
}

#[test]
fn unknown_targets_have_no_policy() {
    let index = new_index();
    assert!(index.outbound_policy(&addr("10.0.0.1:8080")).is_none());
    assert!(index.outbound_policy(&authority(WEB_AUTHORITY)).is_none());

    apply(&index, service("web", "10.0.0.1"));
    for unknown in [
        addr("10.0.0.1:9999"),
        addr("10.0.0.2:8080"),
        authority("web.shop.svc.cluster.local:9999"),
        authority("api.shop.svc.cluster.local:8080"),
        authority("web.shop.svc.example.org:8080"),
        authority("web:8080"),
    ] {
        assert!(index.outbound_policy(&unknown).is_none(), "{unknown:?}");
    }
    assert_eq!(counts(&index)["watches"], 0);
}

#[test]
fn a_service_without_routes_gets_one_default_route_to_itself() {
    let index = new_index();
    apply(&index, service("web", "10.0.0.1"));
    let mut by_addr = watch_web(&index);
    assert_eq!(current(&mut by_addr), web_default());
    let by_name = index.outbound_policy(&authority(WEB_AUTHORITY));
    let mut by_name = by_name.expect("the authority names web:8080");
    assert_eq!(current(&mut by_name), web_default());
    assert_eq!(
        counts(&index)["watches"],
        1,
        "both lookups share one channel"
    );

    let opaque = json!([{ "name": "db", "port": 8080, "appProtocol": "tcp" }]);
    apply(&index, service_with("web", "10.0.0.1", json!({}), opaque));
    assert!(changed(&by_addr));
    assert!(current(&mut by_addr).opaque);
}

#[test]
fn a_traffic_split_sets_the_default_backends_until_deleted_or_reset() {
    let index = shop();
    let mut rx = watch_web(&index);
    let web_split = split("web-split", &[("web-v1", 90), ("web-v2", 10)]);
    apply(&index, web_split.clone());
    assert!(changed(&rx));
    let backends = vec![backend("web-v1", 90, true), backend("web-v2", 10, true)];
    assert_eq!(
        current(&mut rx),
        web_policy(vec![default_route(backends.clone())], backends)
    );

    apply(&index, web_split.clone());
    apply(&index, service("db", "10.0.0.2"));
    apply(&index, pod("web-1", "web", meshed()));
    assert!(
        !changed(&rx),
        "the same split again, or unrelated objects, change nothing"
    );

    apply(
        &index,
        split("web-split", &[("web-v1", 50), ("web-v2", 50)]),
    );
    assert!(changed(&rx));
    let weights =
        |p: &OutboundPolicy| -> Vec<u32> { p.opaque_backends.iter().map(|b| b.weight).collect() };
    let policy = current(&mut rx);
    assert_eq!(weights(&policy), vec![50, 50]);
    assert_eq!(
        policy.http_routes[0].rules[0].backends,
        policy.opaque_backends
    );

    delete::<TrafficSplit>(&index, NS, "web-split");
    assert!(changed(&rx));
    assert_eq!(current(&mut rx), web_default());

    apply(&index, web_split);
    assert!(changed(&rx));
    assert_ne!(current(&mut rx), web_default());
    reset::<TrafficSplit>(&index, vec![]);
    assert!(changed(&rx));
    assert_eq!(current(&mut rx), web_default());
}

#[test]
fn a_traffic_split_may_name_its_root_by_fqdn() {
    let index = shop();
    let mut fqdn = split("web-split", &[("web-v2", 1)]);
    fqdn.spec.service = "web.shop.svc.cluster.local".to_string();
    apply(&index, fqdn);
    let policy = current(&mut watch_web(&index));
    assert_eq!(policy.opaque_backends, vec![backend("web-v2", 1, true)]);
}

#[test]
fn a_missing_backend_service_exists_once_applied() {
    let index = new_index();
    apply(&index, service("web", "10.0.0.1"));
    apply(&index, split("web-split", &[("web-v1", 1)]));
    let mut rx = watch_web(&index);
    assert_eq!(
        current(&mut rx).opaque_backends,
        vec![backend("web-v1", 1, false)]
    );

    apply(&index, service("web-v1", "10.0.0.11"));
    assert!(changed(&rx));
    assert_eq!(
        current(&mut rx).opaque_backends,
        vec![backend("web-v1", 1, true)]
    );

    delete::<Service>(&index, NS, "web-v1");
    assert!(changed(&rx));
    assert_eq!(
        current(&mut rx).opaque_backends,
        vec![backend("web-v1", 1, false)]
    );
}

#[test]
fn deleting_or_resetting_away_the_parent_service_ends_the_watch() {
    let index = shop();
    let rx = watch_web(&index);
    delete::<Service>(&index, NS, "web");
    assert!(rx.has_changed().is_err(), "the sender is dropped");
    assert!(index.outbound_policy(&addr("10.0.0.1:8080")).is_none());
    assert_eq!(counts(&index)["watches"], 0);

    apply(&index, service("web", "10.0.0.1"));
    let rx = watch_web(&index);
    let ended = index.outbound_policy(&authority(WEB_AUTHORITY));
    let ended = ended.expect("web:8080 is back");
    reset(&index, vec![service("web-v1", "10.0.0.11")]);
    assert!(rx.has_changed().is_err());
    assert!(ended.has_changed().is_err());

    // Removing the port from the Service ends the watch as well.
    apply(&index, service("web", "10.0.0.1"));
    let rx = watch_web(&index);
    let ports = json!([{ "name": "http", "port": 80 }]);
    apply(&index, service_with("web", "10.0.0.1", json!({}), ports));
    assert!(rx.has_changed().is_err());
}

#[test]
fn services_changed_fires_when_service_addresses_change() {
    let index = new_index();
    let mut rx = index.services_changed();
    let mut fired = || {
        let fired = rx.has_changed().expect("the index holds the sender");
        rx.mark_unchanged();
        fired
    };
    assert!(!fired());

    apply(&index, service("web", "10.0.0.1"));
    assert!(fired(), "a new ClusterIP");
    apply(&index, service("web", "10.0.0.1"));
    assert!(!fired(), "the same service again");
    let opaque = json!({ "weft.dev/opaque-ports": "8080" });
    let ports = json!([{ "name": "http", "port": 8080 }]);
    apply(&index, service_with("web", "10.0.0.1", opaque, ports));
    assert!(!fired(), "a change that keeps the addresses");
    apply(&index, split("web-split", &[("web-v1", 1)]));
    assert!(!fired(), "not a service");

    apply(&index, service("web", "10.0.0.9"));
    assert!(fired(), "a changed ClusterIP");
    assert!(index.outbound_policy(&addr("10.0.0.1:8080")).is_none());
    assert!(index.outbound_policy(&addr("10.0.0.9:8080")).is_some());

    delete::<Service>(&index, NS, "web");
    assert!(fired(), "a deleted service");
    apply(&index, service("web", "10.0.0.1"));
    assert!(fired());
    reset::<Service>(&index, vec![]);
    assert!(fired(), "a service reset away");
}
