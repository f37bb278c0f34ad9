//! Outbound policy to protobuf, following what Linkerd's policy controller sends
//! (`policy-controller/grpc/src/outbound.rs` and `outbound/http.rs` in linkerd/linkerd2), so a
//! proxy that follows Linkerd's controller follows Weft's:
//!
//! - A service backend is a `Balancer` (peak-EWMA P2C, default RTT 30ms, decay 10s) discovering
//!   endpoints with `Destination.Get` on the service's authority, behind a queue of 100 requests
//!   that fails fast after 3s.
//! - An unusable backend (a backendRef to a missing Service, or one Weft cannot route to) is still
//!   listed with its weight, so traffic shares stay right, but as a `Backend` with no `kind` and
//!   a failure-injector filter that fails every request (`ratio` unset means all) with status
//!   500 and the reason, which the proxy reports in `l5d-proxy-err`. Its metadata names the
//!   missing Service, or is `Default("invalid")`.
//! - An unknown ClusterIP gets a fallback policy, metadata `Default("egress-fallback")`:
//!   protocol detection (10s) whose HTTP/1, HTTP/2 and opaque routes all send to one `Forward`
//!   backend, the original destination with weight 1, as `FirstAvailable`. When the address is
//!   a pod's IP, the `Forward` address carries what a `Destination.Get` endpoint would (TLS
//!   identity of a meshed pod, protocol hint, metric labels), so the proxy uses mTLS to it.

use super::routes;
use crate::{destination::updates::weighted_addr, duration};
use std::{net::SocketAddr, time::Duration};
use weft_controller_core::{
    Endpoint, OutboundPolicy, ServicePort,
    outbound::{Backend, WeightedBackend},
    resilience::FailureAccrual,
};
use weft_proto::{
    destination::WeightedAddr,
    meta::{Metadata, Resource, metadata},
    opaque_route::Invalid,
    outbound::{self as proto, OpaqueRoute, backend, opaque_route, proxy_protocol},
};

/// How long the proxy waits for the first bytes before treating a connection as opaque.
const DETECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The proto policy of a service port.
pub(crate) fn policy(policy: &OutboundPolicy) -> proto::OutboundPolicy {
    let parent = service_backend(&policy.parent, &policy.authority);
    let accrual = policy.failure_accrual.as_ref().map(failure_accrual);
    let opaque = || proxy_protocol::Opaque {
        routes: vec![opaque_route_to(
            "opaque",
            distribution(&policy.opaque_backends, &parent),
        )],
    };
    let kind = if policy.opaque {
        proxy_protocol::Kind::Opaque(opaque())
    } else if !policy.grpc_routes.is_empty() {
        proxy_protocol::Kind::Grpc(proxy_protocol::Grpc {
            routes: policy
                .grpc_routes
                .iter()
                .map(|r| routes::grpc(r, &parent))
                .collect(),
            failure_accrual: accrual,
        })
    } else {
        let mut http: Vec<proto::HttpRoute> = policy
            .http_routes
            .iter()
            .map(|r| routes::http(r, &parent))
            .collect();
        if http.is_empty() {
            // The index always sends a default route; an empty list would 404 everything.
            http.push(routes::default_http(&policy.opaque_backends, &parent));
        }
        proxy_protocol::Kind::Detect(proxy_protocol::Detect {
            timeout: duration(DETECT_TIMEOUT),
            opaque: Some(opaque()),
            http1: Some(proxy_protocol::Http1 {
                routes: http.clone(),
                failure_accrual: accrual,
            }),
            http2: Some(proxy_protocol::Http2 {
                routes: http,
                failure_accrual: accrual,
            }),
        })
    };
    proto::OutboundPolicy {
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
        metadata: Some(service_meta(&policy.parent)),
    }
}

/// The policy for an address no service has: forward to it, whatever the protocol. `pod` is
/// the pod at that address, if any, as a `Destination.Get` endpoint.
pub(crate) fn fallback(addr: SocketAddr, pod: Option<&Endpoint>) -> proto::OutboundPolicy {
    const NAME: &str = "egress-fallback";
    let forward = match pod {
        Some(ep) => WeightedAddr {
            addr: Some(addr.into()),
            weight: 1,
            ..weighted_addr(ep)
        },
        None => WeightedAddr {
            addr: Some(addr.into()),
            weight: 1,
            ..Default::default()
        },
    };
    let backend = proto::Backend {
        metadata: Some(default_meta(NAME)),
        queue: Some(queue()),
        kind: Some(backend::Kind::Forward(forward)),
    };
    let opaque = proxy_protocol::Opaque {
        routes: vec![opaque_route_to(
            NAME,
            opaque_route::distribution::Kind::FirstAvailable(
                opaque_route::distribution::FirstAvailable {
                    backends: vec![opaque_route::RouteBackend {
                        backend: Some(backend.clone()),
                        filters: vec![],
                    }],
                },
            ),
        )],
    };
    let http = vec![routes::forward_http(NAME, backend)];
    proto::OutboundPolicy {
        protocol: Some(proto::ProxyProtocol {
            kind: Some(proxy_protocol::Kind::Detect(proxy_protocol::Detect {
                timeout: duration(DETECT_TIMEOUT),
                opaque: Some(opaque),
                http1: Some(proxy_protocol::Http1 {
                    routes: http.clone(),
                    failure_accrual: None,
                }),
                http2: Some(proxy_protocol::Http2 {
                    routes: http,
                    failure_accrual: None,
                }),
            })),
        }),
        metadata: Some(default_meta(NAME)),
    }
}

// === backends ===

/// A core backend as a proto backend, or the unusable backend and why.
pub(super) enum Resolved {
    Ok(proto::Backend),
    Invalid(proto::Backend, String),
}

pub(super) fn resolve(backend: &Backend) -> Resolved {
    let unusable = |metadata, message| {
        let backend = proto::Backend {
            metadata: Some(metadata),
            queue: Some(queue()),
            kind: None,
        };
        Resolved::Invalid(backend, message)
    };
    match backend {
        Backend::Service {
            target,
            authority,
            exists: true,
        } => Resolved::Ok(service_backend(target, authority)),
        Backend::Service { target, .. } => unusable(
            service_meta(target),
            format!("Service not found {}", target.service),
        ),
        Backend::Invalid { message, .. } => unusable(default_meta("invalid"), message.clone()),
    }
}

/// The balancer over a service port's endpoints.
pub(super) fn service_backend(sp: &ServicePort, authority: &str) -> proto::Backend {
    proto::Backend {
        metadata: Some(service_meta(sp)),
        queue: Some(queue()),
        kind: Some(backend::Kind::Balancer(backend::BalanceP2c {
            discovery: Some(backend::EndpointDiscovery {
                kind: Some(backend::endpoint_discovery::Kind::Dst(
                    backend::endpoint_discovery::DestinationGet {
                        path: authority.to_string(),
                    },
                )),
            }),
            load: Some(backend::balance_p2c::Load::PeakEwma(
                backend::balance_p2c::PeakEwma {
                    default_rtt: duration(Duration::from_millis(30)),
                    decay: duration(Duration::from_secs(10)),
                },
            )),
        })),
    }
}

fn failure_accrual(fa: &FailureAccrual) -> proto::FailureAccrual {
    use proto::failure_accrual::{ConsecutiveFailures, Kind};
    proto::FailureAccrual {
        kind: Some(Kind::ConsecutiveFailures(ConsecutiveFailures {
            max_failures: fa.max_failures,
            backoff: Some(routes::backoff(&fa.backoff)),
        })),
        ejection: None,
    }
}

fn queue() -> proto::Queue {
    proto::Queue {
        capacity: 100,
        failfast_timeout: duration(Duration::from_secs(3)),
    }
}

/// Weighted `backends`, or the parent service if there are none.
fn distribution(
    backends: &[WeightedBackend],
    parent: &proto::Backend,
) -> opaque_route::distribution::Kind {
    use opaque_route::distribution::{FirstAvailable, Kind, RandomAvailable};
    if backends.is_empty() {
        return Kind::FirstAvailable(FirstAvailable {
            backends: vec![opaque_route::RouteBackend {
                backend: Some(parent.clone()),
                filters: vec![],
            }],
        });
    }
    let backends = backends
        .iter()
        .map(|wb| {
            let (backend, filters) = match resolve(&wb.backend) {
                Resolved::Ok(b) => (b, vec![]),
                Resolved::Invalid(b, message) => (
                    b,
                    vec![opaque_route::Filter {
                        kind: Some(opaque_route::filter::Kind::Invalid(Invalid { message })),
                    }],
                ),
            };
            opaque_route::WeightedRouteBackend {
                backend: Some(opaque_route::RouteBackend {
                    backend: Some(backend),
                    filters,
                }),
                weight: wb.weight,
            }
        })
        .collect();
    Kind::RandomAvailable(RandomAvailable { backends })
}

fn opaque_route_to(name: &str, backends: opaque_route::distribution::Kind) -> OpaqueRoute {
    OpaqueRoute {
        metadata: Some(default_meta(name)),
        rules: vec![opaque_route::Rule {
            backends: Some(opaque_route::Distribution {
                kind: Some(backends),
            }),
            filters: vec![],
        }],
    }
}

// === metadata ===

pub(super) fn service_meta(sp: &ServicePort) -> Metadata {
    Metadata {
        kind: Some(metadata::Kind::Resource(Resource {
            group: "core".to_string(),
            kind: "Service".to_string(),
            namespace: sp.service.namespace.clone(),
            name: sp.service.name.clone(),
            section: String::new(),
            port: u32::from(sp.port.get()),
        })),
    }
}

pub(super) fn default_meta(name: &str) -> Metadata {
    Metadata {
        kind: Some(metadata::Kind::Default(name.to_string())),
    }
}
