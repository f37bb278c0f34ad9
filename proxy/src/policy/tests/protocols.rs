//! gRPC, opaque and TLS protocols; distributions, timeouts and retries.

use super::*;

#[test]
fn grpc_routes_become_http_routes() {
    use outbound::grpc_route::{Distribution, Filter, RouteBackend, Rule, distribution, filter};
    let rpc = |service: &str, method: &str| grpc::GrpcRouteMatch {
        rpc: Some(grpc::GrpcRpcMatch {
            service: service.into(),
            method: method.into(),
        }),
        headers: Vec::new(),
    };
    let rule = |matches, port, filters| Rule {
        matches,
        filters,
        backends: Some(Distribution {
            kind: Some(distribution::Kind::FirstAvailable(
                distribution::FirstAvailable {
                    backends: vec![RouteBackend {
                        backend: Some(forward(addr(port))),
                        ..Default::default()
                    }],
                },
            )),
        }),
        ..Default::default()
    };
    let inject = Filter {
        kind: Some(filter::Kind::FailureInjector(grpc::GrpcFailureInjector {
            code: 14,
            message: "no".into(),
            ratio: None,
        })),
    };
    let route = outbound::GrpcRoute {
        rules: vec![
            rule(vec![rpc("shop.Cart", "Add")], 1, Vec::new()),
            rule(vec![rpc("shop.Cart", "")], 2, Vec::new()),
            rule(vec![rpc("", "Get")], 3, vec![inject]),
            rule(vec![rpc("", "")], 4, Vec::new()),
        ],
        ..Default::default()
    };
    let p = policy(outbound::proxy_protocol::Kind::Grpc(
        outbound::proxy_protocol::Grpc {
            routes: vec![route],
            failure_accrual: None,
        },
    ));
    let p = OutboundPolicy::try_from(p).expect("valid");
    let Protocol::Grpc(routes) = &p.protocol else {
        panic!("grpc")
    };
    let port = |path: &str| {
        let found = select(routes, Method::POST, path)?;
        match backend_of(&found).kind {
            BackendKind::Forward { addr, .. } => Some(addr.port()),
            BackendKind::Balancer { .. } | BackendKind::Unavailable => None,
        }
    };
    assert_eq!(port("/shop.Cart/Add"), Some(1), "service and method: exact");
    assert_eq!(port("/shop.Cart/Remove"), Some(2), "service only: prefix");
    assert_eq!(port("/shop.Other/Get"), Some(3), "method only: regex");
    assert_eq!(
        port("/shop.Cart/Get"),
        Some(2),
        "a service prefix beats a method regex"
    );
    assert_eq!(port("/x.Y/Z"), Some(4));
    assert!(
        select(routes, Method::GET, "/shop.Cart/Add").is_none(),
        "gRPC is POST"
    );

    let found = select(routes, Method::POST, "/shop.Other/Get").expect("matches");
    let mut parts = http::Request::builder()
        .uri("/shop.Other/Get")
        .body(())
        .expect("valid")
        .into_parts()
        .0;
    let synthetic = found.apply_request(&mut parts).expect_err("injected");
    assert_eq!(
        synthetic,
        Synthetic::GrpcFailure {
            code: 14,
            message: "no".into()
        }
    );
}

#[test]
fn tls_and_opaque_forward_bytes() {
    let p = policy(outbound::proxy_protocol::Kind::Opaque(
        outbound::proxy_protocol::Opaque {
            routes: vec![
                opaque_route(forward(addr(7))),
                opaque_route(forward(addr(8))),
            ],
        },
    ));
    let Protocol::Opaque(o) = OutboundPolicy::try_from(p).expect("valid").protocol else {
        panic!("opaque")
    };
    assert_eq!(
        o.distribution.pick().map(|b| b.backend.name.clone()),
        Some(addr(7).to_string().into()),
        "the first route"
    );

    let p = policy(outbound::proxy_protocol::Kind::Tls(
        outbound::proxy_protocol::Tls { routes: Vec::new() },
    ));
    let Protocol::Opaque(o) = OutboundPolicy::try_from(p).expect("valid").protocol else {
        panic!("tls is opaque")
    };
    assert!(o.distribution.pick().is_none(), "no routes, no backend");

    let mut forbidden = opaque_route(forward(addr(7)));
    forbidden.rules[0].filters = vec![outbound::opaque_route::Filter {
        kind: Some(outbound::opaque_route::filter::Kind::Forbidden(
            Default::default(),
        )),
    }];
    let p = detect(Vec::new(), Vec::new(), vec![forbidden]);
    let Protocol::Detect { opaque, .. } = OutboundPolicy::try_from(p).expect("valid").protocol
    else {
        panic!("detect")
    };
    assert_eq!(denied(&opaque.filters), Some(&Deny::Forbidden));
}

#[test]
fn random_available_keeps_weights() {
    use outbound::http_route::{RouteBackend, WeightedRouteBackend, distribution};
    let weighted = |port, weight| WeightedRouteBackend {
        backend: Some(RouteBackend {
            backend: Some(forward(addr(port))),
            ..Default::default()
        }),
        weight,
    };
    let mut rule = http_rule(Vec::new(), forward(addr(1)));
    rule.backends = Some(outbound::http_route::Distribution {
        kind: Some(distribution::Kind::RandomAvailable(
            distribution::RandomAvailable {
                backends: vec![weighted(1, 90), weighted(2, 10)],
            },
        )),
    });
    let p = OutboundPolicy::try_from(detect(vec![http_route(vec![rule])], Vec::new(), Vec::new()))
        .expect("valid");
    let Protocol::Detect { http1, .. } = p.protocol else {
        panic!("detect")
    };
    let Distribution::RandomAvailable { backends, weights } = &http1.routes[0].rules[0].backends
    else {
        panic!("random")
    };
    assert_eq!(weights, &[90, 10]);
    assert_eq!(&*backends[1].backend.name, addr(2).to_string());
}

#[test]
fn timeouts_and_retries_convert() {
    use outbound::http_route::{Retry, retry};
    let d = |ms| Some(Duration::from_millis(ms).try_into().expect("valid"));
    let mut rule = http_rule(Vec::new(), forward(addr(1)));
    rule.timeouts = Some(hr::Timeouts {
        response: d(500),
        request: None,
        idle: d(0),
    });
    rule.retry = Some(Retry {
        max_retries: 3,
        max_request_bytes: 64 * 1024,
        conditions: Some(retry::Conditions {
            status_ranges: vec![retry::conditions::StatusRange {
                start: 500,
                end: 504,
            }],
        }),
        timeout: d(100),
        backoff: Some(outbound::ExponentialBackoff {
            min_backoff: d(10),
            max_backoff: d(200),
            jitter_ratio: 0.5,
            ..Default::default()
        }),
    });
    let p = OutboundPolicy::try_from(detect(vec![http_route(vec![rule])], Vec::new(), Vec::new()))
        .expect("valid");
    let Protocol::Detect { http1, .. } = p.protocol else {
        panic!("detect")
    };
    let rule = &http1.routes[0].rules[0];
    assert_eq!(
        rule.timeouts,
        Timeouts {
            response: Some(Duration::from_millis(500)),
            request: None,
            idle: None
        }
    );
    let retry = rule.retry.as_ref().expect("retry");
    assert_eq!(retry.on, RetryOn::Statuses(vec![500..=504]));
    assert_eq!(retry.max_retries, 3);
    assert_eq!(retry.timeout, Some(Duration::from_millis(100)));
    let backoff = retry.backoff.as_ref().expect("backoff");
    assert_eq!(
        (backoff.min, backoff.max),
        (Duration::from_millis(10), Duration::from_millis(200))
    );
}
