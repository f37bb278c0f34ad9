//! Retries, timeouts, retry budgets and failure accrual: Service and route annotations and
//! Gateway API `rules[].retry`, and which one wins.

use super::outbound::{changed, current, shop, watch_web};
use super::*;
use std::time::Duration;
use weft_controller_core::{
    outbound::Timeouts,
    resilience::{Backoff, FailureAccrual, GrpcCodes, Ratio, RetryBudget},
};

fn annotated_web(annotations: Value) -> Service {
    service_with(
        "web",
        "10.0.0.1",
        annotations,
        json!([{ "name": "http", "port": 8080, "targetPort": 80 }]),
    )
}

fn route_with(name: &str, annotations: Value, rules: Value) -> HttpRoute {
    obj(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": meta(name, annotations),
        "spec": { "parentRefs": [web_parent()], "rules": rules },
    }))
}

#[test]
fn service_annotations_shape_the_default_route_budget_and_accrual() {
    let index = shop();
    let mut rx = watch_web(&index);
    assert_eq!(current(&mut rx).retry_budget, RetryBudget::default());
    apply(
        &index,
        annotated_web(json!({
            "weft.dev/retry-http": "503",
            "weft.dev/retry-limit": "4",
            "weft.dev/timeout-request": "3s",
            "weft.dev/retry-budget": "50%,5/s",
            "weft.dev/failure-accrual": "consecutive",
            "weft.dev/failure-accrual-max-failures": "3",
        })),
    );
    assert!(changed(&rx), "annotations change the policy");
    let policy = current(&mut rx);
    let rule = &policy.http_routes[0].rules[0];
    let retry = rule.retry.as_ref().expect("the default route retries");
    assert_eq!((retry.limit, retry.on.clone()), (4, vec![(503, 503)]));
    assert_eq!(rule.timeouts.request, Some(Duration::from_secs(3)));
    assert_eq!(policy.retry_budget.ratio, Ratio::from_millionths(500_000));
    assert_eq!(policy.retry_budget.min_per_second, 5);
    assert_eq!(
        policy.failure_accrual,
        Some(FailureAccrual {
            max_failures: 3,
            ..FailureAccrual::default()
        })
    );

    apply(&index, annotated_web(json!({})));
    let policy = current(&mut rx);
    assert_eq!(policy.http_routes[0].rules[0].retry, None);
    assert_eq!(policy.failure_accrual, None);
}

#[test]
fn a_rule_beats_its_route_which_beats_the_service() {
    let index = shop();
    apply(
        &index,
        annotated_web(json!({
            "weft.dev/retry-http": "5xx",
            "weft.dev/retry-limit": "1",
            "weft.dev/timeout-request": "9s",
            "weft.dev/timeout-backend-request": "4s",
        })),
    );
    let mut rx = watch_web(&index);
    apply(
        &index,
        route_with(
            "web-retry",
            json!({ "weft.dev/retry-limit": "6", "weft.dev/timeout-backend-request": "2s" }),
            json!([
                {
                    "matches": [{ "path": { "value": "/gateway" } }],
                    "retry": { "attempts": 3, "codes": [502, 503], "backoff": "50ms" },
                    "timeouts": { "request": "1s" },
                },
                { "matches": [{ "path": { "value": "/route" } }] },
            ]),
        ),
    );
    apply(
        &index,
        route_with(
            "web-no-retry",
            json!({ "weft.dev/retry-limit": "0" }),
            json!([{ "matches": [{ "path": { "type": "Exact", "value": "/once" } }] }]),
        ),
    );
    let policy = current(&mut rx);
    // Routes of equal age go by name: web-no-retry, then web-retry.
    let mut rules: Vec<_> = policy.http_routes.iter().flat_map(|r| &r.rules).collect();
    assert_eq!(rules.len(), 3);
    rules.rotate_left(1);

    let gateway = rules[0].retry.as_ref().expect("rules[].retry");
    assert_eq!(gateway.limit, 3);
    assert_eq!(gateway.on, vec![(502, 502), (503, 503)]);
    assert_eq!(
        gateway.backoff,
        Backoff::from_min(Duration::from_millis(50))
    );
    assert_eq!(
        rules[0].timeouts,
        Timeouts {
            request: Some(Duration::from_secs(1)),
            backend_request: Some(Duration::from_secs(2)),
        },
        "the rule's request timeout, the route's backendRequest"
    );

    let route = rules[1].retry.as_ref().expect("the route's annotation");
    assert_eq!(route.limit, 6);
    assert_eq!(
        route.on,
        vec![(500, 599)],
        "the route names no statuses: 5xx"
    );
    assert_eq!(
        rules[1].timeouts.request,
        Some(Duration::from_secs(9)),
        "the Service's"
    );

    assert_eq!(
        rules[2].retry, None,
        "retry-limit 0 on the route turns the Service's off"
    );
    assert_eq!(
        rules[2].timeouts.backend_request,
        Some(Duration::from_secs(4))
    );
}

#[test]
fn grpc_routes_take_retries_from_annotations() {
    let index = shop();
    let mut rx = watch_web(&index);
    let route: GrpcRoute = obj(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": meta("cart", json!({
            "weft.dev/retry-grpc": "unavailable,resource-exhausted",
            "weft.dev/retry-limit": "3",
            "weft.dev/timeout-request": "750ms",
        })),
        "spec": {
            "parentRefs": [web_parent()],
            "rules": [{ "matches": [{ "method": { "service": "shop.Cart", "method": "Add" } }] }],
        },
    }));
    apply(&index, route);
    let policy = current(&mut rx);
    let rule = &policy.grpc_routes[0].rules[0];
    let retry = rule.retry.as_ref().expect("retries from the annotation");
    assert_eq!(retry.limit, 3);
    assert_eq!(
        retry.on,
        GrpcCodes {
            unavailable: true,
            resource_exhausted: true,
            ..GrpcCodes::default()
        }
    );
    assert_eq!(rule.timeouts.request, Some(Duration::from_millis(750)));
}
