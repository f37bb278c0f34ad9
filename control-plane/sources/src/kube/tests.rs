//! Unit tests of the event plumbing; the watchers against a mock API server are in
//! `tests/kube.rs`.

use super::*;
use kube::{core::Status, runtime::watcher::Event};
use std::net::SocketAddr;
use weft_controller_core::{DiscoverOutboundPolicy, OutboundTarget};
use weft_controller_index::{Config, ObjectKey};

/// Every call a source makes, in order.
#[derive(Debug, Default)]
struct Recorder(Vec<String>, Vec<Service>);

impl IndexResource<Service> for Recorder {
    fn apply(&mut self, svc: Service) {
        self.0.push(format!("apply {}", ObjectKey::of(&svc)));
    }
    fn delete(&mut self, key: ObjectKey) {
        self.0.push(format!("delete {key}"));
    }
    fn reset(&mut self, svcs: Vec<Service>) {
        let keys: Vec<String> = svcs.iter().map(|s| ObjectKey::of(s).to_string()).collect();
        self.0.push(format!("reset [{}]", keys.join(" ")));
        self.1 = svcs;
    }
}

fn service(name: &str, ip: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1"}],
        },
        "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    }))
    .unwrap()
}

fn run(events: Vec<Event<Service>>) -> (Vec<String>, Vec<Option<usize>>) {
    let (mut index, mut buffer) = (Recorder::default(), InitBuffer::default());
    let results = events
        .into_iter()
        .map(|e| apply_event(&mut index, &mut buffer, e))
        .collect();
    (index.0, results)
}

#[test]
fn apply_and_delete_go_straight_to_the_index() {
    let (calls, results) = run(vec![
        Event::Apply(service("web", "10.96.0.1")),
        Event::Delete(service("web", "10.96.0.1")),
    ]);
    assert_eq!(calls, ["apply shop/web", "delete shop/web"]);
    assert_eq!(results, [None, None]);
}

#[test]
fn a_relist_is_one_reset_when_it_is_done() {
    let (calls, results) = run(vec![
        Event::Init,
        Event::InitApply(service("a", "10.96.0.1")),
        Event::InitApply(service("b", "10.96.0.2")),
        Event::InitDone,
        Event::Apply(service("c", "10.96.0.3")),
    ]);
    assert_eq!(calls, ["reset [shop/a shop/b]", "apply shop/c"]);
    assert_eq!(results, [None, None, None, Some(2), None]);
}

#[test]
fn an_empty_relist_empties_the_kind() {
    let (calls, results) = run(vec![Event::Init, Event::InitDone]);
    assert_eq!(calls, ["reset []"]);
    assert_eq!(results, [None, Some(0)]);
}

#[test]
fn an_interrupted_relist_starts_over() {
    let (calls, _) = run(vec![
        Event::Init,
        Event::InitApply(service("a", "10.96.0.1")),
        // The next page failed: kube lists again from the start.
        Event::Init,
        Event::InitApply(service("b", "10.96.0.2")),
        Event::InitDone,
    ]);
    assert_eq!(calls, ["reset [shop/b]"]);
}

#[test]
fn list_events_outside_a_list_never_empty_the_kind() {
    let (calls, results) = run(vec![
        Event::InitDone,
        Event::InitApply(service("a", "10.96.0.1")),
    ]);
    assert_eq!(calls, ["apply shop/a"]);
    assert_eq!(results, [None, None]);
}

#[test]
fn buffered_objects_lose_their_managed_fields() {
    let mut buffer = InitBuffer::default();
    let mut index = Recorder::default();
    assert!(service("a", "10.96.0.1").metadata.managed_fields.is_some());
    assert!(!buffer.is_listing());
    apply_event(&mut index, &mut buffer, Event::Init);
    assert!(buffer.is_listing() && buffer.is_empty());
    apply_event(
        &mut index,
        &mut buffer,
        Event::InitApply(service("a", "10.96.0.1")),
    );
    assert_eq!(buffer.len(), 1);
    apply_event(&mut index, &mut buffer, Event::InitDone);
    assert!(!buffer.is_listing());
    assert_eq!(index.1[0].metadata.name.as_deref(), Some("a"));
    assert_eq!(index.1[0].metadata.managed_fields, None);
}

#[test]
fn a_relist_replaces_the_kind_in_the_real_index() {
    let shared = SharedIndex::new(Config::default());
    let addr = |ip: &str| OutboundTarget::Addr(SocketAddr::new(ip.parse().unwrap(), 80));
    let mut buffer = InitBuffer::default();
    for svc in [service("a", "10.96.0.1"), service("b", "10.96.0.2")] {
        apply_event(&mut *shared.write(), &mut buffer, Event::Apply(svc));
    }
    let b_policy = shared.outbound_policy(&addr("10.96.0.2")).unwrap();

    for event in [
        Event::Init,
        Event::InitApply(service("b", "10.96.0.2")),
        Event::InitApply(service("c", "10.96.0.3")),
    ] {
        apply_event(&mut *shared.write(), &mut buffer, event);
    }
    // Nothing changes until the list is complete.
    assert!(shared.outbound_policy(&addr("10.96.0.1")).is_some());
    assert!(shared.outbound_policy(&addr("10.96.0.3")).is_none());

    let done = apply_event(&mut *shared.write(), &mut buffer, Event::InitDone);
    assert_eq!(done, Some(2));
    assert!(shared.outbound_policy(&addr("10.96.0.1")).is_none());
    assert!(shared.outbound_policy(&addr("10.96.0.3")).is_some());
    assert_eq!(shared.write().counts()["services"], 2);
    // `b` was never removed on the way: its subscribers were not cut off.
    assert!(b_policy.has_changed().is_ok());
}

#[test]
fn names_kinds_like_the_api_server() {
    assert_eq!(kind::<TrafficSplit>(), "TrafficSplit");
    assert_eq!(kind::<HttpRoute>(), "HTTPRoute");
    assert_eq!(resource_name::<Service>(), "services");
    assert_eq!(
        resource_name::<TrafficSplit>(),
        "trafficsplits.split.smi-spec.io"
    );
    assert_eq!(
        resource_name::<GrpcRoute>(),
        "grpcroutes.gateway.networking.k8s.io"
    );
    assert_eq!(resource_name::<Server>(), "servers.policy.weft.dev");
    assert_eq!(
        resource_name::<MeshTLSAuthentication>(),
        "meshtlsauthentications.policy.weft.dev"
    );
    assert_eq!(kind::<AuthorizationPolicy>(), "AuthorizationPolicy");
}

#[test]
fn a_kind_that_is_not_served_is_listed_less_and_less_often() {
    let not_found = || {
        watcher::Error::InitialListFailed(kube::Error::Api(Box::new(Status {
            code: 404,
            reason: "NotFound".to_string(),
            ..Status::default()
        })))
    };
    let mut log = Log::new::<TrafficSplit>();
    let delays: Vec<_> = (0..8).map(|_| log.failed(&not_found())).collect();
    let secs = |s: &[u64]| {
        s.iter()
            .map(|&s| Some(Duration::from_secs(s)))
            .collect::<Vec<_>>()
    };
    assert_eq!(delays, secs(&[2, 4, 8, 16, 32, 60, 60, 60]));
    // Once it is served again, a later disappearance starts over.
    log.listed(0);
    assert_eq!(log.failed(&not_found()), Some(MISSING_FIRST_DELAY));
    // Other errors are left to kube's backoff.
    assert_eq!(log.failed(&watcher::Error::NoResourceVersion), None);
}

#[test]
fn classifies_watch_errors() {
    let status = |code, reason: &str| {
        Box::new(Status {
            code,
            reason: reason.to_string(),
            ..Status::default()
        })
    };
    let not_found = || kube::Error::Api(status(404, "NotFound"));
    assert!(is_not_found(
        &watcher::Error::InitialListFailed(not_found())
    ));
    assert!(is_not_found(&watcher::Error::WatchStartFailed(not_found())));
    assert!(!is_not_found(&watcher::Error::InitialListFailed(
        kube::Error::Api(status(403, "Forbidden"))
    )));
    assert!(is_gone(&watcher::Error::WatchError(status(410, "Expired"))));
    assert!(!is_gone(&watcher::Error::WatchError(status(500, ""))));
    assert!(!is_gone(&watcher::Error::NoResourceVersion));
}
