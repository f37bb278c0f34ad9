//! HTTPRoutes attached to a Server: the routes replace the default route, each with the
//! policies that target it and those that target the Server.

use super::*;
use weft_controller_core::{
    Authentication, InboundRoute, InboundRule, Network,
    outbound::{HttpMatch, PathMatch, ResourceRef},
};

fn server_parent(name: &str) -> Value {
    json!({ "group": "policy.weft.dev", "kind": "Server", "name": name })
}

fn route_ref(name: &str) -> Value {
    json!({ "group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": name })
}

/// `GET /` and (a second route) `POST /admin`, both on the Server `web-http`.
fn routes(index: &SharedIndex) {
    let rule = |method: &str, path: &str| json!({ "matches": [{ "method": method, "path": { "type": "PathPrefix", "value": path } }] });
    let mut read = http_route(
        "web-read",
        json!({ "parentRefs": [server_parent("web-http")], "rules": [rule("GET", "/")] }),
    );
    read.metadata.creation_timestamp = Some(obj(json!("2025-03-01T00:00:00Z")));
    let mut admin = http_route(
        "web-admin",
        json!({ "parentRefs": [server_parent("web-http")], "rules": [rule("POST", "/admin")] }),
    );
    admin.metadata.creation_timestamp = Some(obj(json!("2025-03-02T00:00:00Z")));
    apply(index, admin);
    apply(index, read);
}

fn route_name(r: &InboundRoute) -> &str {
    match &r.resource {
        ResourceRef::Resource { name, .. } | ResourceRef::Default(name) => name,
    }
}

#[test]
fn attached_routes_carry_their_own_and_the_servers_policies() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    apply(&index, server("web-http", "web", json!(8080)));
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    routes(&index);
    let s = inbound_now(&mut rx);
    let names: Vec<&str> = s.http_routes.iter().map(route_name).collect();
    assert_eq!(names, ["web-read", "web-admin"], "oldest first");
    let read = &s.http_routes[0];
    assert_eq!(
        read.resource,
        ResourceRef::Resource {
            group: "gateway.networking.k8s.io".into(),
            kind: "HTTPRoute".into(),
            namespace: NS.into(),
            name: "web-read".into(),
        }
    );
    let get = HttpMatch {
        path: Some(PathMatch::Prefix("/".into())),
        method: Some("GET".into()),
        ..HttpMatch::default()
    };
    assert_eq!(read.rules, vec![InboundRule { matches: vec![get] }]);
    assert!(
        s.http_routes.iter().all(|r| r.authorizations.is_empty()),
        "deny by default"
    );

    // The client may read; probes (from the node) may use any route.
    apply(
        &index,
        mesh_tls(
            "client",
            json!({ "identityRefs": [{ "kind": "ServiceAccount", "name": "client" }] }),
        ),
    );
    apply(
        &index,
        authz_policy(
            "client-read",
            route_ref("web-read"),
            json!([weft_ref("MeshTLSAuthentication", "client")]),
        ),
    );
    apply(
        &index,
        network_authn("node", json!([{ "cidr": "10.0.0.1" }])),
    );
    apply(
        &index,
        authz_policy(
            "probes",
            weft_ref("Server", "web-http"),
            json!([weft_ref("NetworkAuthentication", "node")]),
        ),
    );
    let s = inbound_now(&mut rx);
    let probes = policy_authorization(
        "probes",
        vec![Network::from(
            "10.0.0.1/32".parse::<ipnet::IpNet>().expect("valid"),
        )],
        Authentication::Unauthenticated,
    );
    let client = policy_authorization(
        "client-read",
        Network::all(),
        Authentication::MeshTls {
            identities: vec!["client.shop.serviceaccount.identity.cluster.local".into()],
            suffixes: vec![],
        },
    );
    assert_eq!(s.authorizations, vec![probes.clone()]);
    assert_eq!(
        s.http_routes[0].authorizations,
        vec![client, probes.clone()]
    );
    assert_eq!(s.http_routes[1].authorizations, vec![probes]);

    // Without routes, the default route is back, with the Server's policies.
    delete::<HttpRoute>(&index, NS, "web-read");
    delete::<HttpRoute>(&index, NS, "web-admin");
    let s = inbound_now(&mut rx);
    assert_eq!(
        s.http_routes,
        vec![InboundRoute::any_path(s.authorizations.clone())]
    );
}

#[test]
fn a_route_policy_alone_replaces_the_default_for_that_route_only() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    let spec = json!({ "podSelector": {}, "port": 8080, "accessPolicy": "all-authenticated" });
    apply(&index, policy_obj::<Server>("Server", "web-http", spec));
    routes(&index);
    apply(
        &index,
        authz_policy("read", route_ref("web-read"), json!([])),
    );
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    let s = inbound_now(&mut rx);
    let c = Config::default();
    let default = weft_controller_core::DefaultPolicy::AllAuthenticated
        .authorizations(&c.cluster_networks, &c.trust_domain);
    assert_eq!(s.authorizations, default);
    assert_eq!(
        s.http_routes[0].authorizations,
        vec![policy_authorization(
            "read",
            Network::all(),
            Authentication::Unauthenticated
        )]
    );
    assert_eq!(s.http_routes[1].authorizations, default);
}

#[test]
fn only_routes_whose_parent_is_the_server_attach() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    apply(&index, server("web-http", "web", json!(8080)));
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    let mut other_ns = server_parent("web-http");
    other_ns["namespace"] = json!("billing");
    for parents in [
        json!([web_parent()]),
        json!([server_parent("api-http")]),
        json!([other_ns]),
        json!([{ "group": "gateway.networking.k8s.io", "kind": "Server", "name": "web-http" }]),
    ] {
        apply(
            &index,
            http_route("r", json!({ "parentRefs": parents, "rules": [{}] })),
        );
        assert!(!inbound_changed(&rx), "{parents}");
        assert_eq!(route_name(&inbound_now(&mut rx).http_routes[0]), "default");
    }
    apply(
        &index,
        http_route(
            "r",
            json!({ "parentRefs": [web_parent(), server_parent("web-http")] }),
        ),
    );
    assert!(inbound_changed(&rx));
    let s = inbound_now(&mut rx);
    assert_eq!(s.http_routes.len(), 1);
    assert_eq!(route_name(&s.http_routes[0]), "r");
    assert_eq!(
        s.http_routes[0].rules,
        vec![InboundRule::default()],
        "no rules: one rule that matches everything"
    );
}

#[test]
fn a_grpc_server_keeps_one_route_for_every_call() {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    let spec = json!({ "podSelector": {}, "port": 8080, "proxyProtocol": "gRPC" });
    apply(&index, policy_obj::<Server>("Server", "web-grpc", spec));
    apply(
        &index,
        http_route(
            "r",
            json!({ "parentRefs": [server_parent("web-grpc")], "rules": [{}] }),
        ),
    );
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    let s = inbound_now(&mut rx);
    assert_eq!(s.http_routes, vec![InboundRoute::any_path(vec![])]);
}
