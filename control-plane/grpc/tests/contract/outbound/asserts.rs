//! What the outbound tests expect of the protobuf they get back.

use super::fixtures::GRPC_AUTHORITY;
use std::{net::SocketAddr, time::Duration};
use weft_proto::{
    destination::WeightedAddr,
    grpc_route as grpc_proto, http_route as route, http_types,
    meta::{self, metadata},
    outbound::{self as proto, backend, grpc_route, http_route, opaque_route, proxy_protocol},
};

/// Rule 0 of [`http_policy`]: its match, filter, timeouts and weighted backends.
pub fn assert_split_rule(rule: &http_route::Rule, v1: u32, v2: u32) {
    assert_eq!(
        rule.matches,
        vec![route::HttpRouteMatch {
            path: Some(route::PathMatch {
                kind: Some(route::path_match::Kind::Prefix("/api".into()))
            }),
            headers: vec![route::HeaderMatch {
                name: "x-canary".into(),
                value: Some(route::header_match::Value::Exact(b"1".to_vec())),
            }],
            query_params: vec![route::QueryParamMatch {
                name: "v".into(),
                value: Some(route::query_param_match::Value::Regex("2.*".into())),
            }],
            method: Some(http_types::HttpMethod {
                r#type: Some(http_types::http_method::Type::Registered(
                    http_types::http_method::Registered::Get.into(),
                )),
            }),
        }]
    );
    let Some(http_route::filter::Kind::RequestHeaderModifier(m)) = &rule.filters[0].kind else {
        panic!("expected a request header modifier: {:?}", rule.filters);
    };
    assert_eq!(m.add.as_ref().unwrap().headers[0].value, b"1".to_vec());
    let timeouts = rule.timeouts.unwrap();
    assert_eq!(
        timeouts.request,
        Some(Duration::from_secs(5).try_into().unwrap())
    );
    assert_eq!(
        timeouts.response,
        Some(Duration::from_secs(1).try_into().unwrap())
    );

    let backends = random_backends(rule);
    assert_eq!(backends.len(), 4);
    let (w, v1_backend) = &backends[0];
    assert_eq!(
        (*w, balancer_path(v1_backend)),
        (v1, "web-v1.shop.svc.cluster.local:80")
    );
    let b = v1_backend.backend.as_ref().unwrap();
    assert_eq!(b.metadata, Some(service_meta("web-v1", 80)));
    assert_eq!(
        b.queue,
        Some(proto::Queue {
            capacity: 100,
            failfast_timeout: Some(Duration::from_secs(3).try_into().unwrap())
        })
    );
    let Some(backend::Kind::Balancer(p2c)) = &b.kind else {
        unreachable!()
    };
    assert_eq!(
        p2c.load,
        Some(backend::balance_p2c::Load::PeakEwma(
            backend::balance_p2c::PeakEwma {
                default_rtt: Some(Duration::from_millis(30).try_into().unwrap()),
                decay: Some(Duration::from_secs(10).try_into().unwrap()),
            }
        ))
    );
    let (w, v2_backend) = &backends[1];
    assert_eq!(
        (*w, balancer_path(v2_backend)),
        (v2, "web-v2.shop.svc.cluster.local:80")
    );
    assert!(
        matches!(
            v2_backend.filters[0].kind,
            Some(http_route::filter::Kind::ResponseHeaderModifier(_))
        ),
        "backend filters are kept: {:?}",
        v2_backend.filters
    );
    // Unusable backends keep their share but fail every request with 500 and the reason.
    let (w, gone) = &backends[2];
    assert_eq!(*w, 1);
    assert_eq!(gone.backend.as_ref().unwrap().kind, None);
    assert_eq!(
        gone.backend.as_ref().unwrap().metadata,
        Some(service_meta("gone", 80))
    );
    assert_eq!(
        failure(gone),
        (500, "Service not found shop/gone".to_string())
    );
    let (_, invalid) = &backends[3];
    assert_eq!(invalid.backend.as_ref().unwrap().kind, None);
    assert_eq!(
        failure(invalid),
        (500, "kind Database is not supported".to_string())
    );
}

/// Rule 1 of [`http_policy`]: no matches, no backends, a redirect.
pub fn assert_redirect_rule(rule: &http_route::Rule) {
    assert_eq!(
        rule.matches[0].path,
        Some(route::PathMatch {
            kind: Some(route::path_match::Kind::Prefix("/".into()))
        }),
        "no matches means every path"
    );
    let Some(http_route::distribution::Kind::FirstAvailable(first)) =
        rule.backends.as_ref().and_then(|d| d.kind.clone())
    else {
        panic!(
            "a rule without backends goes to the parent service: {:?}",
            rule.backends
        );
    };
    assert_eq!(
        balancer_path(&first.backends[0]),
        "web.shop.svc.cluster.local:80"
    );
    let Some(http_route::filter::Kind::Redirect(r)) = &rule.filters[0].kind else {
        panic!("expected a redirect: {:?}", rule.filters);
    };
    assert_eq!(r.scheme, Some(http_types::Scheme::from("https")));
    assert_eq!(
        (r.host.as_str(), r.port, r.status),
        ("new.example.com", 8443, 302)
    );
    assert_eq!(
        r.path,
        Some(route::PathModifier {
            replace: Some(route::path_modifier::Replace::Full("/new".into()))
        })
    );
}

pub fn assert_fallback(policy: &proto::OutboundPolicy, addr: SocketAddr) {
    let fallback = Some(meta::Metadata {
        kind: Some(metadata::Kind::Default("egress-fallback".into())),
    });
    assert_eq!(policy.metadata, fallback);
    let detect = detect(policy);
    assert_eq!(
        detect.timeout,
        Some(Duration::from_secs(10).try_into().unwrap())
    );
    for routes in [
        &detect.http1.as_ref().unwrap().routes,
        &detect.http2.as_ref().unwrap().routes,
    ] {
        let Some(http_route::distribution::Kind::FirstAvailable(first)) = routes[0].rules[0]
            .backends
            .as_ref()
            .and_then(|d| d.kind.clone())
        else {
            panic!("expected first-available: {routes:?}");
        };
        assert_eq!(
            forward_addr(first.backends[0].backend.as_ref().unwrap()),
            addr
        );
    }
    let opaque = &detect.opaque.as_ref().unwrap().routes[0].rules[0];
    let Some(proto::opaque_route::distribution::Kind::FirstAvailable(first)) =
        opaque.backends.as_ref().and_then(|d| d.kind.clone())
    else {
        panic!("expected first-available: {opaque:?}");
    };
    assert_eq!(
        forward_addr(first.backends[0].backend.as_ref().unwrap()),
        addr
    );
}

/// The `Forward` address of each of a fallback policy's HTTP/1, HTTP/2 and opaque routes.
pub fn forwards(policy: &proto::OutboundPolicy) -> Vec<WeightedAddr> {
    let detect = detect(policy);
    let http = [
        &detect.http1.as_ref().unwrap().routes,
        &detect.http2.as_ref().unwrap().routes,
    ]
    .map(|routes| {
        match routes[0].rules[0]
            .backends
            .as_ref()
            .and_then(|d| d.kind.clone())
        {
            Some(http_route::distribution::Kind::FirstAvailable(first)) => {
                first.backends[0].backend.clone().unwrap()
            }
            other => panic!("expected first-available: {other:?}"),
        }
    });
    let opaque = &detect.opaque.as_ref().unwrap().routes[0].rules[0];
    let opaque = match opaque.backends.as_ref().and_then(|d| d.kind.clone()) {
        Some(proto::opaque_route::distribution::Kind::FirstAvailable(first)) => {
            first.backends[0].backend.clone().unwrap()
        }
        other => panic!("expected first-available: {other:?}"),
    };
    http.into_iter()
        .chain([opaque])
        .map(|b| match b.kind {
            Some(backend::Kind::Forward(w)) => w,
            other => panic!("expected forward, got {other:?}"),
        })
        .collect()
}

pub fn forward_addr(backend: &proto::Backend) -> SocketAddr {
    match &backend.kind {
        Some(backend::Kind::Forward(w)) => {
            assert_eq!(w.weight, 1);
            w.addr.unwrap().try_into().unwrap()
        }
        other => panic!("expected forward, got {other:?}"),
    }
}

pub fn assert_grpc_route(route: &proto::GrpcRoute) {
    let rule = &route.rules[0];
    assert_eq!(
        rule.matches[0].rpc,
        Some(grpc_proto::GrpcRpcMatch {
            service: "shop.Cart".into(),
            method: "Add".into()
        })
    );
    let Some(grpc_route::filter::Kind::RequestHeaderModifier(m)) = &rule.filters[0].kind else {
        panic!("expected a request header modifier: {:?}", rule.filters);
    };
    assert_eq!(m.remove, vec!["x-debug".to_string()]);
    let Some(grpc_route::distribution::Kind::RandomAvailable(random)) =
        rule.backends.as_ref().and_then(|d| d.kind.clone())
    else {
        panic!("expected random-available: {:?}", rule.backends);
    };
    let cart = &random.backends[0];
    assert_eq!(cart.weight, 7);
    let Some(backend::Kind::Balancer(p2c)) = &cart
        .backend
        .as_ref()
        .unwrap()
        .backend
        .as_ref()
        .unwrap()
        .kind
    else {
        panic!("expected a balancer");
    };
    let Some(backend::endpoint_discovery::Kind::Dst(dst)) = p2c.discovery.clone().unwrap().kind
    else {
        panic!("no discovery");
    };
    assert_eq!(dst.path, GRPC_AUTHORITY);
    let invalid = random.backends[1].backend.as_ref().unwrap();
    assert_eq!(invalid.backend.as_ref().unwrap().kind, None);
    let Some(grpc_route::filter::Kind::FailureInjector(f)) = &invalid.filters[0].kind else {
        panic!("expected a failure injector: {:?}", invalid.filters);
    };
    assert_eq!((f.code, f.message.as_str(), f.ratio), (13, "no port", None));
}

pub fn service_meta(name: &str, port: u32) -> meta::Metadata {
    meta::Metadata {
        kind: Some(metadata::Kind::Resource(meta::Resource {
            group: "core".into(),
            kind: "Service".into(),
            namespace: "shop".into(),
            name: name.into(),
            section: String::new(),
            port,
        })),
    }
}

pub fn detect(policy: &proto::OutboundPolicy) -> &proxy_protocol::Detect {
    match policy.protocol.as_ref().and_then(|p| p.kind.as_ref()) {
        Some(proxy_protocol::Kind::Detect(d)) => d,
        other => panic!("expected detect, got {other:?}"),
    }
}

/// `(weight, route backend)` of a random-available rule.
pub fn random_backends(rule: &http_route::Rule) -> Vec<(u32, http_route::RouteBackend)> {
    match rule.backends.as_ref().and_then(|d| d.kind.clone()) {
        Some(http_route::distribution::Kind::RandomAvailable(r)) => r
            .backends
            .into_iter()
            .map(|w| (w.weight, w.backend.unwrap()))
            .collect(),
        other => panic!("expected random-available, got {other:?}"),
    }
}

/// The `Destination.Get` path of a balancer backend.
pub fn balancer_path(rb: &http_route::RouteBackend) -> &str {
    match &rb.backend.as_ref().and_then(|b| b.kind.as_ref()) {
        Some(backend::Kind::Balancer(p2c)) => {
            match p2c.discovery.as_ref().and_then(|d| d.kind.as_ref()) {
                Some(backend::endpoint_discovery::Kind::Dst(dst)) => &dst.path,
                None => panic!("no discovery"),
            }
        }
        other => panic!("expected a balancer, got {other:?}"),
    }
}

/// The status and message of a backend's failure injector that fails every request.
pub fn failure(rb: &http_route::RouteBackend) -> (u32, String) {
    match rb.filters.as_slice() {
        [
            http_route::Filter {
                kind: Some(http_route::filter::Kind::FailureInjector(f)),
            },
        ] => {
            assert_eq!(f.ratio, None, "unset ratio: every request");
            (f.status, f.message.clone())
        }
        other => panic!("expected one failure injector, got {other:?}"),
    }
}

/// `(weight, Destination.Get path)` of an opaque route's random-available backends.
pub fn opaque_weights(route: &proto::OpaqueRoute) -> Vec<(u32, String)> {
    match route.rules[0]
        .backends
        .as_ref()
        .and_then(|d| d.kind.clone())
    {
        Some(opaque_route::distribution::Kind::RandomAvailable(r)) => r
            .backends
            .into_iter()
            .map(|w| {
                let b = w.backend.unwrap().backend.unwrap();
                let Some(backend::Kind::Balancer(p2c)) = b.kind else {
                    panic!("not a balancer")
                };
                let Some(backend::endpoint_discovery::Kind::Dst(dst)) = p2c.discovery.unwrap().kind
                else {
                    panic!("no discovery")
                };
                (w.weight, dst.path)
            })
            .collect(),
        other => panic!("expected random-available, got {other:?}"),
    }
}
