//! Policies the outbound tests publish.

use std::{net::SocketAddr, num::NonZeroU16, time::Duration};
use weft_controller_core::{
    OutboundPolicy, ServicePort, ServiceRef,
    outbound::{
        Backend, GrpcMatch, GrpcRoute, GrpcRule, HeaderMatch, HeaderModifier, HostMatch,
        HttpFilter, HttpMatch, HttpRoute, HttpRule, PathMatch, PathModifier, QueryParamMatch,
        RequestRedirect, ResourceRef, Timeouts, ValueMatch, WeightedBackend,
    },
    resilience::{Backoff, FailureAccrual, GrpcCodes, Retry, RetryBudget},
};

pub const CLUSTER_IP: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 96, 0, 10)),
    80,
);
pub const GRPC_AUTHORITY: &str = "cart.shop.svc.cluster.local:9090";

fn sp(name: &str, port: u16) -> ServicePort {
    ServicePort::new(
        ServiceRef::new("shop", name),
        NonZeroU16::new(port).unwrap(),
    )
}

fn svc(name: &str, port: u16, weight: u32, exists: bool) -> WeightedBackend {
    WeightedBackend {
        backend: Backend::Service {
            target: sp(name, port),
            authority: format!("{name}.shop.svc.cluster.local:{port}"),
            exists,
        },
        weight,
        filters: vec![],
    }
}

fn invalid(message: &str) -> WeightedBackend {
    WeightedBackend {
        backend: Backend::Invalid {
            name: "shop/db".into(),
            message: message.into(),
        },
        weight: 1,
        filters: vec![],
    }
}

fn resource(kind: &str, name: &str) -> ResourceRef {
    ResourceRef::Resource {
        group: "gateway.networking.k8s.io".into(),
        kind: kind.into(),
        namespace: "shop".into(),
        name: name.into(),
    }
}

fn base(name: &str, port: u16) -> OutboundPolicy {
    OutboundPolicy {
        parent: sp(name, port),
        authority: format!("{name}.shop.svc.cluster.local:{port}"),
        opaque: false,
        http_routes: vec![],
        grpc_routes: vec![],
        opaque_backends: vec![svc(name, port, 1, true)],
        retry_budget: RetryBudget::default(),
        failure_accrual: None,
    }
}

/// `web:80`: one HTTPRoute splitting `/api` between web-v1 and web-v2 (plus a missing Service
/// and an invalid backendRef, weight 1 each), and a redirect rule without matches or backends.
pub fn http_policy(v1: u32, v2: u32) -> OutboundPolicy {
    let mut v2_backend = svc("web-v2", 80, v2, true);
    v2_backend.filters = vec![HttpFilter::ResponseHeaders(HeaderModifier {
        set: vec![("x-version".into(), "v2".into())],
        ..Default::default()
    })];
    let split = HttpRule {
        matches: vec![HttpMatch {
            path: Some(PathMatch::Prefix("/api".into())),
            headers: vec![HeaderMatch {
                name: "x-canary".into(),
                value: ValueMatch::Exact("1".into()),
            }],
            query_params: vec![QueryParamMatch {
                name: "v".into(),
                value: ValueMatch::Regex("2.*".into()),
            }],
            method: Some("GET".into()),
        }],
        filters: vec![HttpFilter::RequestHeaders(HeaderModifier {
            add: vec![("x-weft".into(), "1".into())],
            ..Default::default()
        })],
        backends: vec![
            svc("web-v1", 80, v1, true),
            v2_backend,
            svc("gone", 80, 1, false),
            invalid("kind Database is not supported"),
        ],
        timeouts: Timeouts {
            request: Some(Duration::from_secs(5)),
            backend_request: Some(Duration::from_secs(1)),
        },
        retry: Some(Retry {
            limit: 3,
            on: vec![(502, 504), (429, 429)],
            timeout: Some(Duration::from_millis(300)),
            backoff: Backoff::from_min(Duration::from_millis(20)),
            max_request_bytes: 4096,
        }),
    };
    let redirect = HttpRule {
        filters: vec![HttpFilter::Redirect(RequestRedirect {
            scheme: Some("https".into()),
            hostname: Some("new.example.com".into()),
            path: Some(PathModifier::Full("/new".into())),
            port: Some(8443),
            status: None,
        })],
        ..Default::default()
    };
    OutboundPolicy {
        http_routes: vec![HttpRoute {
            resource: resource("HTTPRoute", "web-split"),
            hostnames: vec![
                HostMatch::Exact("web.example.com".into()),
                HostMatch::Suffix("example.com".into()),
            ],
            rules: vec![split, redirect],
        }],
        ..base("web", 80)
    }
}

/// `db:5432`, opaque, split 3:1 between db-a and db-b.
pub fn opaque_policy() -> OutboundPolicy {
    OutboundPolicy {
        opaque: true,
        opaque_backends: vec![svc("db-a", 5432, 3, true), svc("db-b", 5432, 1, true)],
        ..base("db", 5432)
    }
}

/// `cart:9090` with one GRPCRoute for `shop.Cart/Add`.
pub fn grpc_policy() -> OutboundPolicy {
    OutboundPolicy {
        grpc_routes: vec![GrpcRoute {
            resource: resource("GRPCRoute", "cart"),
            hostnames: vec![],
            rules: vec![GrpcRule {
                matches: vec![GrpcMatch {
                    service: Some("shop.Cart".into()),
                    method: Some("Add".into()),
                    headers: vec![],
                }],
                filters: vec![HttpFilter::RequestHeaders(HeaderModifier {
                    remove: vec!["x-debug".into()],
                    ..Default::default()
                })],
                backends: vec![svc("cart", 9090, 7, true), invalid("no port")],
                timeouts: Timeouts::default(),
                retry: Some(Retry {
                    limit: 2,
                    on: GrpcCodes {
                        unavailable: true,
                        internal: true,
                        ..GrpcCodes::default()
                    },
                    timeout: None,
                    backoff: Backoff::default(),
                    max_request_bytes: 65536,
                }),
            }],
        }],
        failure_accrual: Some(FailureAccrual::default()),
        ..base("cart", 9090)
    }
}
