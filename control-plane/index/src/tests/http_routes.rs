//! `DiscoverOutboundPolicy`: HTTPRoutes attached to a Service (GAMMA).

use super::outbound::{Rx, backend, changed, current, shop, watch_web, web_default};
use super::*;
use std::time::Duration;
use weft_controller_core::outbound::{
    self as out, Backend, HeaderMatch, HeaderModifier, HostMatch, HttpFilter, HttpMatch, PathMatch,
    PathModifier, QueryParamMatch, RequestRedirect, ResourceRef, Timeouts, ValueMatch,
};

pub(super) fn resource(kind: &str, name: &str) -> ResourceRef {
    ResourceRef::Resource {
        group: "gateway.networking.k8s.io".to_string(),
        kind: kind.to_string(),
        namespace: NS.to_string(),
        name: name.to_string(),
    }
}

pub(super) fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

pub(super) fn exact(name: &str, value: &str) -> HeaderMatch {
    HeaderMatch {
        name: name.to_string(),
        value: ValueMatch::Exact(value.to_string()),
    }
}

/// A route for web:8080 sending everything to `to`.
fn route_to(to: Value) -> Value {
    json!({ "parentRefs": [web_parent()], "rules": [{ "backendRefs": [to] }] })
}

fn canary() -> HttpRoute {
    let set_canary = json!({ "set": [{ "name": "x-canary", "value": "true" }] });
    http_route(
        "web-canary",
        json!({
            "parentRefs": [web_parent()],
            "hostnames": ["Web.Example.com", "*.example.com"],
            "rules": [
                {
                    "matches": [{ "headers": [{ "name": "X-Canary", "value": "true" }] }],
                    "filters": [{
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {
                            "add": [{ "name": "x-via", "value": "canary" }],
                            "remove": ["x-debug"],
                        },
                    }],
                    "backendRefs": [{ "name": "web-v2", "port": 8080 }],
                },
                {
                    "matches": [
                        { "path": { "value": "/old" } },
                        {
                            "path": { "type": "Exact", "value": "/login" },
                            "method": "POST",
                            "queryParams": [{ "name": "v", "type": "RegularExpression", "value": "1|2" }],
                        },
                    ],
                    "filters": [{
                        "type": "RequestRedirect",
                        "requestRedirect": {
                            "scheme": "https", "hostname": "new.example.com", "port": 443, "statusCode": 301,
                            "path": { "type": "ReplacePrefixMatch", "replacePrefixMatch": "/new" },
                        },
                    }],
                },
                {
                    "filters": [{
                        "type": "ResponseHeaderModifier",
                        "responseHeaderModifier": { "set": [{ "name": "cache-control", "value": "no-store" }] },
                    }],
                    "backendRefs": [
                        { "name": "web-v1", "port": 8080, "weight": 90 },
                        {
                            "name": "web-v2", "port": 8080, "weight": 10,
                            "filters": [{ "type": "RequestHeaderModifier", "requestHeaderModifier": set_canary }],
                        },
                    ],
                    "timeouts": { "request": "10s", "backendRequest": "2s" },
                },
            ],
        }),
    )
}

#[test]
fn an_http_route_on_the_service_gives_its_matches_filters_and_backends() {
    let index = shop();
    let mut rx = watch_web(&index);
    apply(&index, canary());
    assert!(changed(&rx));

    let canary_rule = out::HttpRule {
        matches: vec![HttpMatch {
            // Gateway API: no path means the prefix `/`.
            path: Some(PathMatch::Prefix("/".to_string())),
            headers: vec![exact("x-canary", "true")],
            ..HttpMatch::default()
        }],
        filters: vec![HttpFilter::RequestHeaders(HeaderModifier {
            add: vec![header("x-via", "canary")],
            set: vec![],
            remove: vec!["x-debug".to_string()],
        })],
        backends: vec![backend("web-v2", 1, true)],
        timeouts: Timeouts::default(),
        retry: None,
    };
    let redirect_rule = out::HttpRule {
        matches: vec![
            HttpMatch {
                path: Some(PathMatch::Prefix("/old".to_string())),
                ..HttpMatch::default()
            },
            HttpMatch {
                path: Some(PathMatch::Exact("/login".to_string())),
                headers: vec![],
                query_params: vec![QueryParamMatch {
                    name: "v".to_string(),
                    value: ValueMatch::Regex("1|2".to_string()),
                }],
                method: Some("POST".to_string()),
            },
        ],
        filters: vec![HttpFilter::Redirect(RequestRedirect {
            scheme: Some("https".to_string()),
            hostname: Some("new.example.com".to_string()),
            path: Some(PathModifier::Prefix("/new".to_string())),
            port: Some(443),
            status: Some(301),
        })],
        // A rule without backendRefs goes to the parent service.
        backends: vec![backend("web", 1, true)],
        timeouts: Timeouts::default(),
        retry: None,
    };
    let mut v2 = backend("web-v2", 10, true);
    v2.filters = vec![HttpFilter::RequestHeaders(HeaderModifier {
        set: vec![header("x-canary", "true")],
        ..HeaderModifier::default()
    })];
    let split_rule = out::HttpRule {
        matches: vec![],
        filters: vec![HttpFilter::ResponseHeaders(HeaderModifier {
            set: vec![header("cache-control", "no-store")],
            ..HeaderModifier::default()
        })],
        backends: vec![backend("web-v1", 90, true), v2],
        timeouts: Timeouts {
            request: Some(Duration::from_secs(10)),
            backend_request: Some(Duration::from_secs(2)),
        },
        retry: None,
    };
    let expected = out::HttpRoute {
        resource: resource("HTTPRoute", "web-canary"),
        hostnames: vec![
            HostMatch::Exact("web.example.com".to_string()),
            HostMatch::Suffix("example.com".to_string()),
        ],
        rules: vec![canary_rule, redirect_rule, split_rule],
    };
    let policy = current(&mut rx);
    assert_eq!(policy.http_routes, vec![expected]);
    assert_eq!(policy.opaque_backends, vec![backend("web", 1, true)]);
    assert!(policy.grpc_routes.is_empty());

    apply(&index, canary());
    assert!(!changed(&rx), "the same route again changes nothing");
    delete::<HttpRoute>(&index, NS, "web-canary");
    assert!(changed(&rx));
    assert_eq!(current(&mut rx), web_default());
    apply(&index, canary());
    assert!(changed(&rx));
    assert_ne!(current(&mut rx), web_default());
    reset::<HttpRoute>(&index, vec![]);
    assert!(changed(&rx));
    assert_eq!(current(&mut rx), web_default());
}

#[test]
fn only_service_parents_on_the_port_attach() {
    let index = shop();
    let mut rx = watch_web(&index);
    let to_v2 = json!({ "name": "web-v2", "port": 8080 });
    let parents = [
        json!({ "group": "", "kind": "Service", "name": "web", "port": 9999 }),
        json!({ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "web" }),
        json!({ "kind": "Service", "name": "web", "port": 8080 }),
        json!({ "group": "", "kind": "Service", "name": "web-v1" }),
    ];
    for (i, parent) in parents.into_iter().enumerate() {
        let spec = json!({ "parentRefs": [parent], "rules": [{ "backendRefs": [to_v2.clone()] }] });
        apply(&index, http_route(&format!("r{i}"), spec));
    }
    assert!(!changed(&rx), "no route attaches to web:8080");
    assert_eq!(current(&mut rx), web_default());

    let any_port = json!({ "group": "core", "kind": "Service", "name": "web" });
    let spec = json!({ "parentRefs": [any_port], "rules": [{ "backendRefs": [to_v2] }] });
    apply(&index, http_route("r9", spec));
    assert!(changed(&rx));
    let routes = current(&mut rx).http_routes;
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].resource, resource("HTTPRoute", "r9"));
    assert_eq!(
        routes[0].rules[0].backends,
        vec![backend("web-v2", 1, true)]
    );
}

#[test]
fn an_http_route_wins_over_a_traffic_split_but_opaque_traffic_keeps_the_split() {
    let index = shop();
    apply(
        &index,
        split("web-split", &[("web-v1", 90), ("web-v2", 10)]),
    );
    let spec = route_to(json!({ "name": "web-v2", "port": 8080 }));
    apply(&index, http_route("web", spec));
    let policy = current(&mut watch_web(&index));
    assert_eq!(policy.http_routes.len(), 1);
    assert_eq!(policy.http_routes[0].resource, resource("HTTPRoute", "web"));
    assert_eq!(
        policy.http_routes[0].rules[0].backends,
        vec![backend("web-v2", 1, true)]
    );
    assert_eq!(
        policy.opaque_backends,
        vec![backend("web-v1", 90, true), backend("web-v2", 10, true)]
    );
}

#[test]
fn unusable_backend_refs_are_invalid_backends() {
    let index = shop();
    let refs = json!([
        { "name": "web-v1" },
        { "group": "apps", "kind": "Deployment", "name": "web", "port": 8080, "weight": 3 },
    ]);
    let spec = json!({ "parentRefs": [web_parent()], "rules": [{ "backendRefs": refs }] });
    apply(&index, http_route("web", spec));
    let policy = current(&mut watch_web(&index));
    let backends = &policy.http_routes[0].rules[0].backends;
    assert_eq!(backends.len(), 2);
    let invalid = |i: usize| match &backends[i].backend {
        Backend::Invalid { name, message } => (name.clone(), message.clone()),
        other => panic!("backend {i} should be invalid: {other:?}"),
    };
    let (name, message) = invalid(0);
    assert_eq!(name, "shop/web-v1");
    assert!(message.contains("port"), "{message}");
    let (name, message) = invalid(1);
    assert_eq!(name, "shop/web");
    assert!(message.contains("apps/Deployment"), "{message}");
    assert_eq!((backends[0].weight, backends[1].weight), (1, 3));
}

#[test]
fn a_route_backend_exists_once_its_service_is_applied() {
    let index = shop();
    let spec = route_to(json!({ "name": "web-v3", "port": 8080 }));
    apply(&index, http_route("web", spec));
    let mut rx = watch_web(&index);
    let backends = |rx: &mut Rx| current(rx).http_routes[0].rules[0].backends.clone();
    assert_eq!(backends(&mut rx), vec![backend("web-v3", 1, false)]);

    apply(&index, service("web-v3", "10.0.0.13"));
    assert!(changed(&rx));
    assert_eq!(backends(&mut rx), vec![backend("web-v3", 1, true)]);
}

#[test]
fn routes_are_ordered_oldest_first_then_by_name() {
    let index = shop();
    let spec = route_to(json!({ "name": "web-v1", "port": 8080 }));
    let mut new = http_route("a-new", spec.clone());
    new.metadata.creation_timestamp = obj(json!("2025-01-01T00:00:00Z"));
    let mut old = http_route("b-old", spec.clone());
    old.metadata.creation_timestamp = obj(json!("2024-06-01T00:00:00Z"));
    apply(&index, new);
    apply(&index, old);
    let names = |index: &SharedIndex| -> Vec<ResourceRef> {
        let policy = current(&mut watch_web(index));
        policy.http_routes.into_iter().map(|r| r.resource).collect()
    };
    let by_age = vec![
        resource("HTTPRoute", "b-old"),
        resource("HTTPRoute", "a-new"),
    ];
    assert_eq!(names(&index), by_age);

    let index = shop();
    apply(&index, http_route("b", spec.clone()));
    apply(&index, http_route("a", spec));
    let by_name = vec![resource("HTTPRoute", "a"), resource("HTTPRoute", "b")];
    assert_eq!(names(&index), by_name);
}
