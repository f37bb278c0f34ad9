//! HTTP and gRPC routes to protobuf: rules, timeouts and weighted backends.

use super::{
    convert::{Resolved, default_meta, resolve},
    filters::{grpc_failure, grpc_filter, http_failure, http_filter},
    matches::{any_path, grpc_match, host_match, http_match},
};
use crate::duration;
use weft_controller_core::{
    outbound::{GrpcRoute, GrpcRule, HttpRoute, HttpRule, ResourceRef, Timeouts, WeightedBackend},
    resilience::{Backoff, GrpcRetry, HttpRetry},
};
use weft_proto::{
    grpc_route as grpc_proto, http_route as route,
    meta::{self, Metadata},
    outbound::{self as proto, grpc_route, http_route},
};

/// An HTTP route; rule backends fall back to `parent` when a rule names none.
pub(super) fn http(r: &HttpRoute, parent: &proto::Backend) -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: Some(resource_meta(&r.resource)),
        hosts: r.hostnames.iter().map(host_match).collect(),
        rules: r.rules.iter().map(|rule| http_rule(rule, parent)).collect(),
    }
}

/// The route a policy gets when it has no HTTP route: every request to `backends`.
pub(super) fn default_http(
    backends: &[WeightedBackend],
    parent: &proto::Backend,
) -> proto::HttpRoute {
    let route = HttpRoute {
        resource: ResourceRef::Default("http".to_string()),
        hostnames: vec![],
        rules: vec![HttpRule {
            backends: backends.to_vec(),
            ..Default::default()
        }],
    };
    http(&route, parent)
}

/// A route named `name` that sends every request to `backend`.
pub(super) fn forward_http(name: &str, backend: proto::Backend) -> proto::HttpRoute {
    let backends =
        http_route::distribution::Kind::FirstAvailable(http_route::distribution::FirstAvailable {
            backends: vec![http_route::RouteBackend {
                backend: Some(backend),
                ..Default::default()
            }],
        });
    proto::HttpRoute {
        metadata: Some(default_meta(name)),
        hosts: vec![],
        rules: vec![http_route::Rule {
            matches: vec![any_path()],
            backends: Some(http_route::Distribution {
                kind: Some(backends),
            }),
            ..Default::default()
        }],
    }
}

fn http_rule(rule: &HttpRule, parent: &proto::Backend) -> http_route::Rule {
    use http_route::distribution::{FirstAvailable, Kind, RandomAvailable};
    let backends = if rule.backends.is_empty() {
        Kind::FirstAvailable(FirstAvailable {
            backends: vec![http_route::RouteBackend {
                backend: Some(parent.clone()),
                ..Default::default()
            }],
        })
    } else {
        let backends = rule.backends.iter().map(|wb| {
            let (backend, filters) = match resolve(&wb.backend) {
                Resolved::Ok(b) => (b, wb.filters.iter().map(http_filter).collect()),
                Resolved::Invalid(b, message) => (b, vec![http_failure(message)]),
            };
            http_route::WeightedRouteBackend {
                backend: Some(http_route::RouteBackend {
                    backend: Some(backend),
                    filters,
                    ..Default::default()
                }),
                weight: wb.weight,
            }
        });
        Kind::RandomAvailable(RandomAvailable {
            backends: backends.collect(),
        })
    };
    let timeouts = timeouts(&rule.timeouts);
    // The deprecated field carries `timeouts.response` for older proxies, as the proto asks.
    #[allow(deprecated)]
    http_route::Rule {
        // Gateway API: a rule without matches matches every path.
        matches: match rule.matches.as_slice() {
            [] => vec![any_path()],
            matches => matches.iter().map(http_match).collect(),
        },
        filters: rule.filters.iter().map(http_filter).collect(),
        backends: Some(http_route::Distribution {
            kind: Some(backends),
        }),
        request_timeout: timeouts.response,
        timeouts: Some(timeouts),
        retry: rule.retry.as_ref().map(http_retry),
        allow_l5d_request_headers: false,
    }
}

/// A gRPC route; rule backends fall back to `parent` when a rule names none.
pub(super) fn grpc(r: &GrpcRoute, parent: &proto::Backend) -> proto::GrpcRoute {
    proto::GrpcRoute {
        metadata: Some(resource_meta(&r.resource)),
        hosts: r.hostnames.iter().map(host_match).collect(),
        rules: r.rules.iter().map(|rule| grpc_rule(rule, parent)).collect(),
    }
}

fn grpc_rule(rule: &GrpcRule, parent: &proto::Backend) -> grpc_route::Rule {
    use grpc_route::distribution::{FirstAvailable, Kind, RandomAvailable};
    let backends = if rule.backends.is_empty() {
        Kind::FirstAvailable(FirstAvailable {
            backends: vec![grpc_route::RouteBackend {
                backend: Some(parent.clone()),
                ..Default::default()
            }],
        })
    } else {
        let backends = rule.backends.iter().map(|wb| {
            let (backend, filters) = match resolve(&wb.backend) {
                Resolved::Ok(b) => (b, wb.filters.iter().filter_map(grpc_filter).collect()),
                Resolved::Invalid(b, message) => (b, vec![grpc_failure(message)]),
            };
            grpc_route::WeightedRouteBackend {
                backend: Some(grpc_route::RouteBackend {
                    backend: Some(backend),
                    filters,
                    ..Default::default()
                }),
                weight: wb.weight,
            }
        });
        Kind::RandomAvailable(RandomAvailable {
            backends: backends.collect(),
        })
    };
    let timeouts = timeouts(&rule.timeouts);
    #[allow(deprecated)]
    grpc_route::Rule {
        // An empty match (no rpc, no headers) matches every call.
        matches: match rule.matches.as_slice() {
            [] => vec![grpc_proto::GrpcRouteMatch::default()],
            matches => matches.iter().map(grpc_match).collect(),
        },
        filters: rule.filters.iter().filter_map(grpc_filter).collect(),
        backends: Some(grpc_route::Distribution {
            kind: Some(backends),
        }),
        request_timeout: timeouts.response,
        timeouts: Some(timeouts),
        retry: rule.retry.as_ref().map(grpc_retry),
        allow_l5d_request_headers: false,
    }
}

// === retries ===

fn http_retry(r: &HttpRetry) -> http_route::Retry {
    use http_route::retry::{Conditions, conditions::StatusRange};
    http_route::Retry {
        max_retries: r.limit,
        max_request_bytes: r.max_request_bytes,
        conditions: Some(Conditions {
            status_ranges: r
                .on
                .iter()
                .map(|&(start, end)| StatusRange {
                    start: start.into(),
                    end: end.into(),
                })
                .collect(),
        }),
        timeout: r.timeout.and_then(duration),
        backoff: Some(backoff(&r.backoff)),
    }
}

fn grpc_retry(r: &GrpcRetry) -> grpc_route::Retry {
    grpc_route::Retry {
        max_retries: r.limit,
        max_request_bytes: r.max_request_bytes,
        conditions: Some(grpc_route::retry::Conditions {
            cancelled: r.on.cancelled,
            deadine_exceeded: r.on.deadline_exceeded,
            resource_exhausted: r.on.resource_exhausted,
            internal: r.on.internal,
            unavailable: r.on.unavailable,
        }),
        timeout: r.timeout.and_then(duration),
        backoff: Some(backoff(&r.backoff)),
    }
}

/// Exponential backoff as the proto carries it (retries and failure accrual).
pub(super) fn backoff(b: &Backoff) -> proto::ExponentialBackoff {
    proto::ExponentialBackoff {
        min_backoff: duration(b.min),
        max_backoff: duration(b.max),
        jitter_ratio: b.jitter.as_f32(),
        respect_retry_after_hint: false,
    }
}

// === misc ===

fn timeouts(t: &Timeouts) -> route::Timeouts {
    route::Timeouts {
        request: t.request.and_then(duration),
        response: t.backend_request.and_then(duration),
        idle: None,
    }
}

/// The proxy-api metadata naming `r` (a default or a Kubernetes resource).
pub(crate) fn resource_meta(r: &ResourceRef) -> Metadata {
    match r {
        ResourceRef::Default(name) => default_meta(name),
        ResourceRef::Resource {
            group,
            kind,
            namespace,
            name,
        } => Metadata {
            kind: Some(meta::metadata::Kind::Resource(meta::Resource {
                group: group.clone(),
                kind: kind.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                ..Default::default()
            })),
        },
    }
}
