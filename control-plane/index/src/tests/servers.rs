//! Which `Server` a pod's port gets: by label, number or named port, oldest first; its
//! protocol and `accessPolicy`; and no wake-ups for changes that do not concern a port.

use super::*;
use std::time::Duration;
use weft_controller_core::{DefaultPolicy, InboundProtocol, InboundRoute};

fn server_name(s: &weft_controller_core::InboundServer) -> (&str, &str) {
    let get = |k: &str| {
        s.labels
            .iter()
            .find(|(key, _)| key == k)
            .map_or("", |(_, v)| v.as_str())
    };
    (get("kind"), get("name"))
}

fn server_at(name: &str, created: &str, port: Value) -> Server {
    let mut s = server(name, "web", port);
    s.metadata.creation_timestamp = Some(obj(json!(created)));
    s
}

#[test]
fn a_server_selects_pods_by_label_and_port() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    apply(&index, app_pod("api-1", "api", json!([])));
    let mut web = index.inbound_server(NS, "web-1", 8080);
    let mut other_port = index.inbound_server(NS, "web-1", 9090);
    let mut other_pod = index.inbound_server(NS, "api-1", 8080);

    apply(&index, server("web-http", "web", json!(8080)));
    assert!(inbound_changed(&web));
    let s = inbound_now(&mut web);
    assert_eq!(server_name(&s), ("server", "web-http"));
    assert_eq!(
        s.protocol,
        InboundProtocol::Detect {
            timeout: Duration::from_secs(10)
        }
    );
    // No policy and no accessPolicy: deny, on the connection and on the one route.
    assert_eq!(s.authorizations, vec![]);
    assert_eq!(s.http_routes, vec![InboundRoute::any_path(vec![])]);
    assert!(!inbound_changed(&other_port) && !inbound_changed(&other_pod));
    assert_eq!(
        server_name(&inbound_now(&mut other_port)),
        ("default", "all-unauthenticated")
    );
    assert_eq!(
        server_name(&inbound_now(&mut other_pod)),
        ("default", "all-unauthenticated")
    );

    // The pod's labels change: the Server no longer selects it.
    apply(&index, app_pod("web-1", "web-old", json!([])));
    assert!(inbound_changed(&web));
    assert_eq!(
        server_name(&inbound_now(&mut web)),
        ("default", "all-unauthenticated")
    );
    apply(&index, app_pod("web-1", "web", json!([])));
    assert_eq!(server_name(&inbound_now(&mut web)), ("server", "web-http"));

    delete::<Server>(&index, NS, "web-http");
    assert!(inbound_changed(&web));
    assert_eq!(
        server_name(&inbound_now(&mut web)),
        ("default", "all-unauthenticated")
    );
}

#[test]
fn match_expressions_and_an_empty_selector() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    let with_selector = |selector: Value| -> Server {
        policy_obj(
            "Server",
            "web-http",
            json!({ "podSelector": selector, "port": 8080 }),
        )
    };
    for (selector, selects) in [
        (json!({}), true),
        (
            json!({ "matchExpressions": [{ "key": "app", "operator": "In", "values": ["api", "web"] }] }),
            true,
        ),
        (
            json!({ "matchExpressions": [{ "key": "app", "operator": "NotIn", "values": ["web"] }] }),
            false,
        ),
        (
            json!({ "matchExpressions": [{ "key": "app", "operator": "Exists" }] }),
            true,
        ),
        (
            json!({ "matchExpressions": [{ "key": "tier", "operator": "DoesNotExist" }] }),
            true,
        ),
        (
            json!({ "matchExpressions": [{ "key": "app", "operator": "Exists" }, { "key": "tier", "operator": "Exists" }] }),
            false,
        ),
        // An operator Kubernetes does not have selects nothing.
        (
            json!({ "matchExpressions": [{ "key": "app", "operator": "Equals", "values": ["web"] }] }),
            false,
        ),
        (
            json!({ "matchLabels": { "app": "web" }, "matchExpressions": [{ "key": "app", "operator": "In", "values": ["api"] }] }),
            false,
        ),
    ] {
        apply(&index, with_selector(selector.clone()));
        let kind = if selects { "server" } else { "default" };
        assert_eq!(server_name(&inbound_now(&mut rx)).0, kind, "{selector}");
    }
}

#[test]
fn a_named_port_is_the_pods_container_port_of_that_name() {
    let index = new_index();
    let ports = json!([{ "name": "http", "containerPort": 8080 }, { "name": "admin", "containerPort": 9990 }]);
    apply(&index, app_pod("web-1", "web", ports));
    let mut http = index.inbound_server(NS, "web-1", 8080);
    let mut admin = index.inbound_server(NS, "web-1", 9990);
    apply(&index, server("web-http", "web", json!("http")));
    assert_eq!(server_name(&inbound_now(&mut http)), ("server", "web-http"));
    assert!(!inbound_changed(&admin));
    assert_eq!(server_name(&inbound_now(&mut admin)).0, "default");

    // The container port moves: the Server follows the name.
    let moved = json!([{ "name": "http", "containerPort": 9990 }]);
    apply(&index, app_pod("web-1", "web", moved));
    assert_eq!(server_name(&inbound_now(&mut http)).0, "default");
    assert_eq!(
        server_name(&inbound_now(&mut admin)),
        ("server", "web-http")
    );
}

#[test]
fn the_oldest_server_wins_then_the_first_by_name() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    apply(
        &index,
        server_at("b-new", "2025-03-02T00:00:00Z", json!(8080)),
    );
    apply(
        &index,
        server_at("c-old", "2025-03-01T00:00:00Z", json!(8080)),
    );
    assert_eq!(server_name(&inbound_now(&mut rx)), ("server", "c-old"));
    apply(
        &index,
        server_at("a-old", "2025-03-01T00:00:00Z", json!(8080)),
    );
    assert_eq!(server_name(&inbound_now(&mut rx)), ("server", "a-old"));
    delete::<Server>(&index, NS, "a-old");
    delete::<Server>(&index, NS, "c-old");
    assert_eq!(server_name(&inbound_now(&mut rx)), ("server", "b-new"));
}

#[test]
fn proxy_protocol_sets_the_protocol_and_only_http_has_routes() {
    let index = new_index();
    // The pod's opaque-ports annotation does not override a Server.
    let mut p = app_pod("web-1", "web", json!([]));
    p.metadata.annotations = Some(labels([
        ("weft.dev/proxy-version", "v0.1.0"),
        ("weft.dev/opaque-ports", "8080"),
    ]));
    apply(&index, p);
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    for (value, protocol, routes) in [
        (
            "unknown",
            InboundProtocol::Detect {
                timeout: Duration::from_secs(10),
            },
            1,
        ),
        ("HTTP/1", InboundProtocol::Http1, 1),
        ("HTTP/2", InboundProtocol::Http2, 1),
        ("gRPC", InboundProtocol::Grpc, 1),
        ("opaque", InboundProtocol::Opaque, 0),
        ("TLS", InboundProtocol::Tls, 0),
    ] {
        let spec = json!({ "podSelector": {}, "port": 8080, "proxyProtocol": value });
        apply(&index, policy_obj::<Server>("Server", "web-http", spec));
        let s = inbound_now(&mut rx);
        assert_eq!(
            (s.protocol, s.http_routes.len()),
            (protocol, routes),
            "{value}"
        );
    }
}

#[test]
fn access_policy_is_the_default_when_no_policy_applies() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    let c = Config::default();
    for (value, policy) in [
        (
            Some("all-unauthenticated"),
            DefaultPolicy::AllUnauthenticated,
        ),
        (
            Some("cluster-authenticated"),
            DefaultPolicy::ClusterAuthenticated,
        ),
        (None, DefaultPolicy::Deny),
        (Some("allow-everyone"), DefaultPolicy::Deny),
    ] {
        let spec = json!({ "podSelector": {}, "port": 8080, "accessPolicy": value });
        apply(&index, policy_obj::<Server>("Server", "web-http", spec));
        let expected = policy.authorizations(&c.cluster_networks, &c.trust_domain);
        let s = inbound_now(&mut rx);
        assert_eq!(s.authorizations, expected, "{value:?}");
        assert_eq!(s.http_routes[0].authorizations, expected, "{value:?}");
    }
}

#[test]
fn changes_elsewhere_wake_no_watcher() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    apply(&index, server("web-http", "web", json!(8080)));
    let rx = index.inbound_server(NS, "web-1", 8080);
    let mut elsewhere = server("web-http", "web", json!(8080));
    elsewhere.metadata.namespace = Some("billing".to_string());

    apply(&index, server("web-http", "web", json!(8080)));
    apply(&index, elsewhere);
    apply(&index, server("admin", "web", json!(9990)));
    apply(&index, server("api", "api", json!(8080)));
    apply(
        &index,
        authz_policy("admin", weft_ref("Server", "admin"), json!([])),
    );
    apply(&index, mesh_tls("unused", json!({ "identities": ["*"] })));
    apply(
        &index,
        network_authn("unused", json!([{ "cidr": "10.0.0.0/8" }])),
    );
    apply(
        &index,
        http_route("web", json!({ "parentRefs": [web_parent()] })),
    );
    apply(&index, app_pod("api-1", "api", json!([])));
    assert!(!inbound_changed(&rx));
}
