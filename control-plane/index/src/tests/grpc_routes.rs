//! `DiscoverOutboundPolicy`: GRPCRoutes attached to a Service (GAMMA).

use super::http_routes::{exact, header, resource};
use super::outbound::{backend, changed, current, default_route, shop, watch_web, web_default};
use super::*;
use weft_controller_core::outbound::{
    self as out, GrpcMatch, HeaderModifier, HttpFilter, Timeouts,
};

#[test]
fn a_grpc_route_on_the_service_gives_grpc_routes() {
    let index = shop();
    let mut rx = watch_web(&index);
    let spec = json!({
        "parentRefs": [web_parent()],
        "rules": [{
            "matches": [
                { "method": { "service": "shop.Cart", "method": "Add" } },
                { "method": { "service": "shop.Cart" }, "headers": [{ "name": "X-User", "value": "bob" }] },
            ],
            "backendRefs": [{ "name": "web-v2", "port": 8080, "weight": 5 }],
        }],
    });
    let route = grpc_route("cart", spec);
    apply(&index, route.clone());
    assert!(changed(&rx));
    let expected = out::GrpcRoute {
        resource: resource("GRPCRoute", "cart"),
        hostnames: vec![],
        rules: vec![out::GrpcRule {
            matches: vec![
                GrpcMatch {
                    service: Some("shop.Cart".to_string()),
                    method: Some("Add".to_string()),
                    headers: vec![],
                },
                GrpcMatch {
                    service: Some("shop.Cart".to_string()),
                    method: None,
                    headers: vec![exact("x-user", "bob")],
                },
            ],
            filters: vec![],
            backends: vec![backend("web-v2", 5, true)],
            timeouts: Timeouts::default(),
            retry: None,
        }],
    };
    let policy = current(&mut rx);
    assert_eq!(policy.grpc_routes, vec![expected]);
    let web = vec![backend("web", 1, true)];
    assert_eq!(policy.http_routes, vec![default_route(web)]);

    delete::<GrpcRoute>(&index, NS, "cart");
    assert!(changed(&rx));
    assert_eq!(current(&mut rx), web_default());
    apply(&index, route);
    assert!(changed(&rx));
    assert_ne!(current(&mut rx), web_default());
    reset::<GrpcRoute>(&index, vec![]);
    assert!(changed(&rx));
    assert_eq!(current(&mut rx), web_default());
}

#[test]
fn grpc_route_backend_filters_are_kept() {
    let index = shop();
    let set = json!({ "set": [{ "name": "x-canary", "value": "true" }] });
    let filter = json!({ "type": "RequestHeaderModifier", "requestHeaderModifier": set });
    let to = json!({ "name": "web-v2", "port": 8080, "filters": [filter] });
    let spec = json!({ "parentRefs": [web_parent()], "rules": [{ "backendRefs": [to] }] });
    apply(&index, grpc_route("cart", spec));
    let policy = current(&mut watch_web(&index));
    let mut expected = backend("web-v2", 1, true);
    expected.filters = vec![HttpFilter::RequestHeaders(HeaderModifier {
        set: vec![header("x-canary", "true")],
        ..HeaderModifier::default()
    })];
    assert_eq!(policy.grpc_routes[0].rules[0].backends, vec![expected]);
}
