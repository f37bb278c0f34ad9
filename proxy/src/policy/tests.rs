//! Conversion from the proto: what is kept, what defaults, and where errors point.

use super::*;
use http::{HeaderMap, Method, Uri};
use weft_proto::{destination, grpc_route as grpc, http_route as hr, http_types, meta};

// === proto builders ===

fn resource(kind: &str, namespace: &str, name: &str, port: u32) -> Option<meta::Metadata> {
    Some(meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            port,
            ..Default::default()
        })),
    })
}

fn forward(addr: SocketAddr) -> outbound::Backend {
    use destination::tls_identity::{DnsLikeIdentity, Strategy};
    let identity = destination::TlsIdentity {
        strategy: Some(Strategy::DnsLikeIdentity(DnsLikeIdentity {
            name: "web.shop.serviceaccount.identity.cluster.local".into(),
        })),
        ..Default::default()
    };
    outbound::Backend {
        kind: Some(outbound::backend::Kind::Forward(
            destination::WeightedAddr {
                addr: Some(addr.into()),
                weight: 10_000,
                tls_identity: Some(identity),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn balancer(path: &str, load: Option<outbound::backend::balance_p2c::Load>) -> outbound::Backend {
    use outbound::backend::{BalanceP2c, EndpointDiscovery, endpoint_discovery};
    let dst = endpoint_discovery::DestinationGet { path: path.into() };
    outbound::Backend {
        metadata: resource("Service", "shop", "web-v2", 8080),
        kind: Some(outbound::backend::Kind::Balancer(BalanceP2c {
            discovery: Some(EndpointDiscovery {
                kind: Some(endpoint_discovery::Kind::Dst(dst)),
            }),
            load,
        })),
        ..Default::default()
    }
}

fn http_first(backends: Vec<outbound::Backend>) -> outbound::http_route::Distribution {
    use outbound::http_route::{RouteBackend, distribution};
    let backends = backends
        .into_iter()
        .map(|b| RouteBackend {
            backend: Some(b),
            ..Default::default()
        })
        .collect();
    outbound::http_route::Distribution {
        kind: Some(distribution::Kind::FirstAvailable(
            distribution::FirstAvailable { backends },
        )),
    }
}

fn http_rule(
    matches: Vec<hr::HttpRouteMatch>,
    backend: outbound::Backend,
) -> outbound::http_route::Rule {
    outbound::http_route::Rule {
        matches,
        backends: Some(http_first(vec![backend])),
        ..Default::default()
    }
}

fn http_route(rules: Vec<outbound::http_route::Rule>) -> outbound::HttpRoute {
    outbound::HttpRoute {
        metadata: resource("HTTPRoute", "shop", "web-canary", 0),
        rules,
        ..Default::default()
    }
}

fn path_match(kind: hr::path_match::Kind) -> hr::HttpRouteMatch {
    hr::HttpRouteMatch {
        path: Some(hr::PathMatch { kind: Some(kind) }),
        ..Default::default()
    }
}

fn opaque_route(backend: outbound::Backend) -> outbound::OpaqueRoute {
    use outbound::opaque_route::{Distribution, RouteBackend, Rule, distribution};
    let backends = vec![RouteBackend {
        backend: Some(backend),
        filters: Vec::new(),
    }];
    outbound::OpaqueRoute {
        metadata: None,
        rules: vec![Rule {
            backends: Some(Distribution {
                kind: Some(distribution::Kind::FirstAvailable(
                    distribution::FirstAvailable { backends },
                )),
            }),
            filters: Vec::new(),
        }],
    }
}

fn policy(kind: outbound::proxy_protocol::Kind) -> outbound::OutboundPolicy {
    outbound::OutboundPolicy {
        protocol: Some(outbound::ProxyProtocol { kind: Some(kind) }),
        metadata: resource("Service", "shop", "web", 8080),
    }
}

fn detect(
    http1: Vec<outbound::HttpRoute>,
    http2: Vec<outbound::HttpRoute>,
    opaque: Vec<outbound::OpaqueRoute>,
) -> outbound::OutboundPolicy {
    use outbound::proxy_protocol::{Detect, Http1, Http2, Kind, Opaque};
    policy(Kind::Detect(Detect {
        timeout: Some(Duration::from_secs(3).try_into().expect("valid duration")),
        http1: Some(Http1 {
            routes: http1,
            failure_accrual: None,
        }),
        http2: Some(Http2 {
            routes: http2,
            failure_accrual: None,
        }),
        opaque: Some(Opaque { routes: opaque }),
    }))
}

fn addr(port: u16) -> SocketAddr {
    ([10, 0, 0, 1], port).into()
}

fn error(proto: outbound::OutboundPolicy) -> String {
    OutboundPolicy::try_from(proto)
        .expect_err("must be rejected")
        .to_string()
}

fn select<'a>(routes: &'a HttpRoutes, method: Method, uri: &str) -> Option<RouteMatch<'a>> {
    let uri: Uri = uri.parse().expect("test URI");
    routes.select(&method, &uri, &HeaderMap::new())
}

fn backend_of(m: &RouteMatch<'_>) -> Arc<Backend> {
    m.rule.backends.pick().expect("a backend").backend.clone()
}

mod protocols;

// === tests ===

#[test]
fn detect_keeps_both_http_tables_and_opaque() {
    let http1 = http_route(vec![http_rule(Vec::new(), forward(addr(1)))]);
    let http2 = http_route(vec![http_rule(
        Vec::new(),
        balancer("web.shop.svc.cluster.local:8080", None),
    )]);
    let p = OutboundPolicy::try_from(detect(
        vec![http1],
        vec![http2],
        vec![opaque_route(forward(addr(3)))],
    ))
    .expect("valid policy");
    assert_eq!(&*p.parent, "Service shop/web:8080");
    let Protocol::Detect {
        timeout,
        http1,
        http2,
        opaque,
    } = p.protocol
    else {
        panic!("expected detect, got {:?}", p.protocol);
    };
    assert_eq!(timeout, Duration::from_secs(3));
    assert_eq!(&*http1.routes[0].name, "shop/web-canary");

    let one = select(&http1, Method::GET, "/").expect("http1 route");
    let backend = backend_of(&one);
    assert_eq!(&*backend.name, addr(1).to_string());
    let identity = Some("web.shop.serviceaccount.identity.cluster.local".into());
    assert_eq!(
        backend.kind,
        BackendKind::Forward {
            addr: addr(1),
            identity
        }
    );

    let two = select(&http2, Method::GET, "/").expect("http2 route");
    let backend = backend_of(&two);
    assert_eq!(&*backend.name, "shop/web-v2:8080");
    let expected = BackendKind::Balancer {
        path: "web.shop.svc.cluster.local:8080".into(),
        default_rtt: DEFAULT_RTT,
        decay: DEFAULT_DECAY,
        queue: crate::policy::Queue::default(),
    };
    assert_eq!(backend.kind, expected, "peak-EWMA defaults apply");

    let picked = opaque.distribution.pick().expect("opaque backend");
    assert_eq!(&*picked.backend.name, addr(3).to_string());
}

#[test]
fn balancer_load_parameters() {
    use outbound::backend::balance_p2c::{Load, PeakEwma};
    let ewma = PeakEwma {
        default_rtt: Some(Duration::from_millis(50).try_into().expect("valid")),
        decay: Some(Duration::from_secs(5).try_into().expect("valid")),
    };
    let backend = Backend::try_from(balancer("a:1", Some(Load::PeakEwma(ewma)))).expect("valid");
    let expected = BackendKind::Balancer {
        path: "a:1".into(),
        default_rtt: Duration::from_millis(50),
        decay: Duration::from_secs(5),
        queue: crate::policy::Queue::default(),
    };
    assert_eq!(backend.kind, expected);
}

#[test]
fn missing_fields_are_named() {
    let no_protocol = outbound::OutboundPolicy {
        protocol: None,
        metadata: None,
    };
    assert_eq!(error(no_protocol), "protocol: missing");

    let no_kind = outbound::OutboundPolicy {
        protocol: Some(outbound::ProxyProtocol { kind: None }),
        metadata: None,
    };
    assert_eq!(error(no_kind), "protocol.kind: missing");

    let kindless = outbound::Backend::default();
    let route = http_route(vec![
        http_rule(Vec::new(), forward(addr(1))),
        http_rule(Vec::new(), kindless),
    ]);
    // A backend without a kind is how the controller marks an invalid backendRef: the policy
    // is still usable, and that backend fails its requests.
    let policy = OutboundPolicy::try_from(detect(vec![route], Vec::new(), Vec::new()))
        .expect("a kindless backend is unavailable, not an invalid policy");
    let Protocol::Detect { http1, .. } = &policy.protocol else {
        panic!("detect expected: {policy:?}")
    };
    let kinds: Vec<&BackendKind> = http1.routes[0]
        .rules
        .iter()
        .map(|r| &r.backends.backends()[0].backend.kind)
        .collect();
    assert!(matches!(kinds[0], BackendKind::Forward { .. }), "{kinds:?}");
    assert_eq!(kinds[1], &BackendKind::Unavailable);

    let mut no_discovery = balancer("a:1", None);
    if let Some(outbound::backend::Kind::Balancer(b)) = &mut no_discovery.kind {
        b.discovery = None;
    }
    let route = http_route(vec![http_rule(Vec::new(), no_discovery)]);
    let err = error(detect(Vec::new(), vec![route], Vec::new()));
    assert!(
        err.ends_with("backend.balancer.discovery: missing"),
        "{err}"
    );
    assert!(
        err.starts_with("protocol.detect.http2.routes[0].rules[0]"),
        "{err}"
    );

    let mut no_backends = http_rule(Vec::new(), forward(addr(1)));
    no_backends.backends = None;
    let err = error(detect(
        vec![http_route(vec![no_backends])],
        Vec::new(),
        Vec::new(),
    ));
    assert_eq!(
        err,
        "protocol.detect.http1.routes[0].rules[0].backends: missing"
    );
}

#[test]
fn bad_values_say_where_and_what() {
    use hr::path_match::Kind;
    let bad = http_rule(
        vec![
            path_match(Kind::Prefix("/".into())),
            path_match(Kind::Regex("(".into())),
        ],
        forward(addr(1)),
    );
    let route = http_route(vec![http_rule(Vec::new(), forward(addr(1))), bad]);
    let err = error(detect(vec![route], Vec::new(), Vec::new()));
    let expected =
        r#"protocol.detect.http1.routes[0].rules[1].matches[1].path: invalid regex "(": "#;
    assert!(err.starts_with(expected), "{err}");

    let header = hr::HttpRouteMatch {
        headers: vec![hr::HeaderMatch {
            name: "bad name".into(),
            value: Some(hr::header_match::Value::Exact(b"x".to_vec())),
        }],
        ..Default::default()
    };
    let route = http_route(vec![http_rule(vec![header], forward(addr(1)))]);
    let err = error(policy(outbound::proxy_protocol::Kind::Http1(
        outbound::proxy_protocol::Http1 {
            routes: vec![route],
            failure_accrual: None,
        },
    )));
    assert_eq!(
        err,
        r#"protocol.http1.routes[0].rules[0].matches[0].headers[0].name: invalid header name "bad name": an HTTP header name"#
    );

    let mut rule = http_rule(Vec::new(), forward(addr(1)));
    rule.filters = vec![outbound::http_route::Filter {
        kind: Some(outbound::http_route::filter::Kind::FailureInjector(
            hr::HttpFailureInjector {
                status: 503,
                message: String::new(),
                ratio: Some(hr::Ratio {
                    numerator: 2,
                    denominator: 1,
                }),
            },
        )),
    }];
    let err = error(detect(vec![http_route(vec![rule])], Vec::new(), Vec::new()));
    assert!(err.ends_with(r#"rules[0].filters[0].failure_injector.ratio: invalid ratio "2/1": numerator <= denominator, denominator > 0"#), "{err}");

    let mut rule = http_rule(Vec::new(), forward(addr(1)));
    rule.filters = vec![outbound::http_route::Filter {
        kind: Some(outbound::http_route::filter::Kind::Redirect(
            hr::RequestRedirect {
                status: 200,
                ..Default::default()
            },
        )),
    }];
    let err = error(detect(vec![http_route(vec![rule])], Vec::new(), Vec::new()));
    assert!(
        err.ends_with(r#"filters[0].redirect.status: invalid status "200": a 3xx status"#),
        "{err}"
    );
}

#[test]
fn http_matches_and_filters_convert() {
    use hr::path_match::Kind;
    let mut m = path_match(Kind::Exact("/a".into()));
    m.method = Some(Method::PUT.into());
    m.query_params = vec![hr::QueryParamMatch {
        name: "v".into(),
        value: Some(hr::query_param_match::Value::Exact("1".into())),
    }];
    let mut rule = http_rule(vec![m], forward(addr(1)));
    let headers = http_types::Headers {
        headers: vec![http_types::headers::Header {
            name: "x-route".into(),
            value: b"canary".to_vec(),
        }],
    };
    rule.filters = vec![outbound::http_route::Filter {
        kind: Some(outbound::http_route::filter::Kind::RequestHeaderModifier(
            hr::RequestHeaderModifier {
                add: Some(headers),
                set: None,
                remove: vec!["x-drop".into()],
            },
        )),
    }];
    let mut route = http_route(vec![rule]);
    route.hosts = vec![hr::HostMatch {
        r#match: Some(hr::host_match::Match::Exact("web".into())),
    }];
    let p = OutboundPolicy::try_from(detect(vec![route], Vec::new(), Vec::new())).expect("valid");
    let Protocol::Detect { http1, .. } = &p.protocol else {
        panic!("detect")
    };
    let uri: Uri = "http://web/a?v=1".parse().expect("valid");
    assert!(
        http1
            .select(&Method::PUT, &uri, &HeaderMap::new())
            .is_some()
    );
    assert!(
        http1
            .select(&Method::GET, &uri, &HeaderMap::new())
            .is_none()
    );
    let found = http1
        .select(&Method::PUT, &uri, &HeaderMap::new())
        .expect("matches");
    let mut parts = http::Request::builder()
        .uri(uri)
        .header("x-drop", "1")
        .body(())
        .expect("valid")
        .into_parts()
        .0;
    found
        .apply_request(&mut parts)
        .expect("no synthetic response");
    assert_eq!(parts.headers["x-route"], "canary");
    assert!(!parts.headers.contains_key("x-drop"));
}

#[test]
fn the_forward_policy_sends_everything_to_the_target() {
    let target = addr(8080);
    let p = OutboundPolicy::forward(target);
    let Protocol::Detect {
        http1,
        http2,
        opaque,
        ..
    } = &p.protocol
    else {
        panic!("detect")
    };
    for routes in [http1, http2] {
        let found = select(routes, Method::OPTIONS, "http://x.example/any?thing").expect("matches");
        assert_eq!(*backend_of(&found), Backend::forward(target));
        let mut parts = http::Request::builder()
            .uri("/")
            .body(())
            .expect("valid")
            .into_parts()
            .0;
        assert_eq!(found.apply_request(&mut parts), Ok(()));
    }
    let picked = opaque.distribution.pick().expect("opaque backend");
    assert_eq!(
        picked.backend.kind,
        BackendKind::Forward {
            addr: target,
            identity: None
        }
    );
}

#[test]
fn a_backend_queue_and_its_defaults() {
    let mut proto = balancer("a:1", None);
    let backend = Backend::try_from(proto.clone()).expect("valid");
    let BackendKind::Balancer { queue, .. } = backend.kind else {
        panic!("a balancer");
    };
    assert_eq!(
        queue,
        crate::policy::Queue::default(),
        "no queue: 100 requests, 3 s"
    );
    proto.queue = Some(outbound::Queue {
        capacity: 7,
        failfast_timeout: Some(Duration::from_millis(250).try_into().expect("valid")),
    });
    let BackendKind::Balancer { queue, .. } = Backend::try_from(proto).expect("valid").kind else {
        panic!("a balancer");
    };
    assert_eq!(
        (queue.capacity, queue.failfast),
        (7, Duration::from_millis(250))
    );
}

#[test]
fn failure_accrual_comes_from_the_protocol() {
    use outbound::{ExponentialBackoff, FailureAccrual, failure_accrual};
    let backoff = |min_ms: u64, max_ms: u64| ExponentialBackoff {
        min_backoff: Some(Duration::from_millis(min_ms).try_into().expect("valid")),
        max_backoff: Some(Duration::from_millis(max_ms).try_into().expect("valid")),
        jitter_ratio: 0.5,
        respect_retry_after_hint: false,
    };
    let consecutive = |max_failures, b| FailureAccrual {
        kind: Some(failure_accrual::Kind::ConsecutiveFailures(
            failure_accrual::ConsecutiveFailures {
                max_failures,
                backoff: b,
            },
        )),
        ejection: None,
    };
    let policy = |accrual| outbound::OutboundPolicy {
        protocol: Some(outbound::ProxyProtocol {
            kind: Some(outbound::proxy_protocol::Kind::Http1(
                outbound::proxy_protocol::Http1 {
                    routes: vec![],
                    failure_accrual: accrual,
                },
            )),
        }),
        metadata: None,
    };
    let accrual_of = |p: OutboundPolicy| match p.protocol {
        crate::policy::Protocol::Http1(r) => r.failure_accrual,
        other => panic!("http1 expected, got {other:?}"),
    };
    let on = OutboundPolicy::try_from(policy(Some(consecutive(5, Some(backoff(100, 800))))))
        .expect("valid");
    let accrual = accrual_of(on).expect("accrual on");
    assert_eq!(accrual.max_failures, 5);
    assert_eq!(accrual.backoff.min, Duration::from_millis(100));
    assert_eq!(accrual.backoff.max, Duration::from_millis(800));
    let off =
        OutboundPolicy::try_from(policy(Some(consecutive(0, Some(backoff(1, 2)))))).expect("valid");
    assert!(accrual_of(off).is_none(), "zero failures is off");
    let err = OutboundPolicy::try_from(policy(Some(consecutive(3, None)))).expect_err("no backoff");
    assert_eq!(
        err.to_string(),
        "protocol.http1.failure_accrual.consecutive_failures.backoff: missing"
    );
    let err = OutboundPolicy::try_from(policy(Some(consecutive(3, Some(backoff(900, 100))))))
        .expect_err("max < min");
    assert!(err.to_string().contains("max_backoff"), "{err}");
}
