//! `DiscoverEndpoints`: Services, EndpointSlices and Pods in, endpoint sets out.

use super::*;
use std::sync::Arc;
use tokio::sync::watch;
use weft_controller_core::{Endpoint, EndpointSet};

pub(super) type Rx = watch::Receiver<Arc<EndpointSet>>;

/// The endpoint addresses the receiver holds now, marking the value seen.
pub(super) fn addrs(rx: &mut Rx) -> Vec<String> {
    let set = rx.borrow_and_update();
    set.endpoints.keys().map(ToString::to_string).collect()
}

pub(super) fn endpoint(rx: &mut Rx, addr: &str) -> Endpoint {
    let set = rx.borrow_and_update();
    let addr = addr.parse().expect("test addresses parse");
    set.endpoints
        .get(&addr)
        .cloned()
        .expect("the endpoint is in the set")
}

pub(super) fn changed(rx: &Rx) -> bool {
    rx.has_changed().expect("the endpoints channel stays open")
}

/// `web` (8080 → 80) with one slice of one ready endpoint, `10.1.0.1` (pod web-1).
pub(super) fn web() -> SharedIndex {
    let index = new_index();
    apply(&index, service("web", "10.0.0.1"));
    apply(
        &index,
        slice("web-a", "web", json!([ep("10.1.0.1", "web-1")])),
    );
    index
}

#[test]
fn an_unknown_service_does_not_exist_until_it_is_applied() {
    let index = new_index();
    let mut rx = index.endpoints(&service_port("web", 8080));
    assert_eq!(**rx.borrow(), EndpointSet::default());
    assert!(!rx.borrow().exists);

    apply(
        &index,
        slice("web-a", "web", json!([ep("10.1.0.1", "web-1")])),
    );
    assert!(
        !changed(&rx),
        "a slice alone does not make the service exist"
    );

    apply(&index, service("web", "10.0.0.1"));
    assert!(changed(&rx));
    let set = rx.borrow_and_update().clone();
    assert!(set.exists);
    assert_eq!(
        set.labels,
        labels([("namespace", "shop"), ("service", "web")])
    );
    assert_eq!(addrs(&mut rx), ["10.1.0.1:80"]);
}

#[test]
fn slice_ports_are_matched_by_the_service_port_name() {
    let index = new_index();
    let ports = json!([
        { "name": "http", "port": 8080, "targetPort": 80 },
        { "name": "admin", "port": 9090, "targetPort": "admin" },
        { "name": "metrics", "port": 7070, "targetPort": 7070 },
    ]);
    apply(&index, service_with("web", "10.0.0.1", json!({}), ports));
    let slice_ports = json!([{ "name": "admin", "port": 9990 }, { "name": "http", "port": 80 }]);
    let eps = json!([ep("10.1.0.1", "web-1")]);
    apply(&index, slice_with("web-a", "web", slice_ports, eps));

    let port = |p| index.endpoints(&service_port("web", p));
    assert_eq!(addrs(&mut port(8080)), ["10.1.0.1:80"]);
    assert_eq!(addrs(&mut port(9090)), ["10.1.0.1:9990"]);
    assert!(
        addrs(&mut port(7070)).is_empty(),
        "no slice port is named metrics"
    );
    // A port the Service does not declare is taken as a target port.
    assert_eq!(addrs(&mut port(80)), ["10.1.0.1:80"]);
}

#[test]
fn ready_endpoints_are_used_and_terminating_ones_only_when_none_is_ready() {
    let index = web();
    let mut rx = index.endpoints(&service_port("web", 8080));
    let not_ready = ep_when("10.1.0.2", "web-2", false, false, false);
    let draining = ep_when("10.1.0.3", "web-3", false, true, true);
    let gone = ep_when("10.1.0.4", "web-4", false, false, true);

    let all = json!([
        ep("10.1.0.1", "web-1"),
        not_ready.clone(),
        draining.clone(),
        gone.clone()
    ]);
    apply(&index, slice("web-a", "web", all));
    assert!(
        !changed(&rx),
        "the ready endpoint was already the only one used"
    );
    assert_eq!(addrs(&mut rx), ["10.1.0.1:80"]);

    apply(
        &index,
        slice("web-a", "web", json!([not_ready, draining, gone])),
    );
    assert!(changed(&rx));
    assert_eq!(addrs(&mut rx), ["10.1.0.3:80"]);
    assert!(endpoint(&mut rx, "10.1.0.3:80").terminating);

    // A ready endpoint in another slice of the service wins over the draining one.
    apply(
        &index,
        slice("web-b", "web", json!([ep("10.1.0.5", "web-5")])),
    );
    assert!(changed(&rx));
    assert_eq!(addrs(&mut rx), ["10.1.0.5:80"]);
    assert!(!endpoint(&mut rx, "10.1.0.5:80").terminating);
}

#[test]
fn slices_of_a_service_merge_and_deleting_or_resetting_one_removes_its_endpoints() {
    let index = web();
    let mut rx = index.endpoints(&service_port("web", 8080));
    apply(
        &index,
        slice("web-b", "web", json!([ep("10.1.0.2", "web-2")])),
    );
    assert!(changed(&rx));
    assert_eq!(addrs(&mut rx), ["10.1.0.1:80", "10.1.0.2:80"]);

    delete::<EndpointSlice>(&index, NS, "web-a");
    assert!(changed(&rx));
    assert_eq!(addrs(&mut rx), ["10.1.0.2:80"]);

    let web_a = slice("web-a", "web", json!([ep("10.1.0.1", "web-1")]));
    reset(&index, vec![web_a.clone()]);
    assert!(changed(&rx));
    assert_eq!(addrs(&mut rx), ["10.1.0.1:80"], "web-b was not in the list");

    reset(&index, vec![web_a]);
    assert!(!changed(&rx), "a reset to the same objects wakes nobody");
}

#[test]
fn a_slice_relabelled_to_another_service_moves_its_endpoints() {
    let index = web();
    apply(&index, service("api", "10.0.0.2"));
    let mut web_rx = index.endpoints(&service_port("web", 8080));
    let mut api_rx = index.endpoints(&service_port("api", 8080));
    assert_eq!(addrs(&mut web_rx), ["10.1.0.1:80"]);
    assert!(addrs(&mut api_rx).is_empty());

    apply(
        &index,
        slice("web-a", "api", json!([ep("10.1.0.1", "web-1")])),
    );
    assert!(changed(&web_rx) && changed(&api_rx));
    assert!(addrs(&mut web_rx).is_empty());
    assert_eq!(addrs(&mut api_rx), ["10.1.0.1:80"]);
    assert_eq!(counts(&index)["endpointslices"], 1);
}

#[test]
fn a_slice_that_loses_its_service_label_no_longer_counts() {
    let index = web();
    let mut rx = index.endpoints(&service_port("web", 8080));
    let mut unlabelled = slice("web-a", "web", json!([ep("10.1.0.1", "web-1")]));
    unlabelled.metadata.labels = None;
    apply(&index, unlabelled);
    assert!(changed(&rx));
    assert!(addrs(&mut rx).is_empty());
    assert_eq!(counts(&index)["endpointslices"], 0);
}

#[test]
fn subscribers_wake_for_relevant_changes_only() {
    let index = web();
    apply(&index, pod("web-1", "web", meshed()));
    let mut rx = index.endpoints(&service_port("web", 8080));
    assert!(!changed(&rx));

    apply(&index, service("web", "10.0.0.1"));
    apply(
        &index,
        slice("web-a", "web", json!([ep("10.1.0.1", "web-1")])),
    );
    apply(&index, pod("web-1", "web", meshed()));
    assert!(!changed(&rx), "identical objects are not changes");

    apply(&index, service("db", "10.0.0.2"));
    apply(&index, slice("db-a", "db", json!([ep("10.1.0.9", "db-1")])));
    apply(&index, pod("db-1", "db", meshed()));
    apply(
        &index,
        namespace(NS, json!({ "weft.dev/default-inbound-policy": "deny" })),
    );
    apply(&index, split("web-split", &[("web", 1)]));
    apply(
        &index,
        http_route("web", json!({ "parentRefs": [web_parent()] })),
    );
    assert!(
        !changed(&rx),
        "other services, pods and policy are not this service's endpoints"
    );

    apply(
        &index,
        slice("web-b", "web", json!([ep("10.1.0.2", "web-2")])),
    );
    assert!(changed(&rx));
    assert_eq!(addrs(&mut rx), ["10.1.0.1:80", "10.1.0.2:80"]);
}

#[test]
fn deleting_or_resetting_away_the_service_ends_its_existence_but_keeps_its_slices() {
    let index = web();
    let mut rx = index.endpoints(&service_port("web", 8080));
    delete::<Service>(&index, NS, "web");
    assert!(changed(&rx));
    assert_eq!(**rx.borrow_and_update(), EndpointSet::default());

    apply(&index, service("web", "10.0.0.1"));
    assert!(changed(&rx));
    assert_eq!(addrs(&mut rx), ["10.1.0.1:80"], "the slice was kept");

    reset(&index, vec![service("db", "10.0.0.2")]);
    assert!(changed(&rx));
    assert_eq!(**rx.borrow_and_update(), EndpointSet::default());
    reset(&index, vec![service("db", "10.0.0.2")]);
    assert!(!changed(&rx));
}
