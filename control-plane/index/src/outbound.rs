//! Outbound policy of a service port: HTTPRoutes and GRPCRoutes attached to the Service
//! (GAMMA), else a default route over the Service's TrafficSplit backends, else the Service.

use crate::{
    Index, ObjectKey,
    resilience::{self, RuleDefaults},
    resources::{ParentRef, Route},
};
// HTTPRoute from the experimental channel: a superset of the standard one that carries
// `rules[].retry`. Both are served as `gateway.networking.k8s.io/v1`.
use gateway_api::apis::{experimental::httproutes as http, standard::grpcroutes as grpc};
use std::{collections::BTreeMap, num::NonZeroU16, time::Duration};
use weft_controller_core::{
    OutboundPolicy, ServicePort, ServiceRef,
    outbound::{
        Backend, GrpcMatch, GrpcRoute, GrpcRule, HeaderMatch, HeaderModifier, HostMatch,
        HttpFilter, HttpMatch, HttpRoute, HttpRule, PathMatch, PathModifier, QueryParamMatch,
        RequestRedirect, ResourceRef, Timeouts, ValueMatch, WeightedBackend,
    },
};

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

impl Index {
    /// The policy for `sp`, or `None` if the Service does not exist or lacks the port.
    pub(crate) fn outbound_policy(&self, sp: &ServicePort) -> Option<OutboundPolicy> {
        let svc = self.services.get(&sp.service)?;
        let port_spec = svc.ports.iter().find(|p| p.port == sp.port)?;
        let defaults = &svc.resilience.rules;
        let authority = sp.authority(&self.config.cluster_domain);
        let default_backends = self
            .split_backends(sp)
            .unwrap_or_else(|| vec![self.backend(sp.clone(), 1)]);

        let mut http_routes: Vec<(&ObjectKey, &Route)> = self
            .http_routes
            .iter()
            .filter(|(_, r)| attaches(r, sp))
            .collect();
        let mut grpc_routes: Vec<(&ObjectKey, &Route)> = self
            .grpc_routes
            .iter()
            .filter(|(_, r)| attaches(r, sp))
            .collect();
        // Gateway API precedence among routes: oldest first, then by namespace/name.
        http_routes.sort_by(|a, b| (&a.1.created, a.0).cmp(&(&b.1.created, b.0)));
        grpc_routes.sort_by(|a, b| (&a.1.created, a.0).cmp(&(&b.1.created, b.0)));

        let http_routes: Vec<HttpRoute> = if http_routes.is_empty() {
            vec![HttpRoute {
                resource: ResourceRef::Default("http".to_string()),
                hostnames: vec![],
                rules: vec![HttpRule {
                    backends: default_backends.clone(),
                    timeouts: defaults.timeouts,
                    retry: enabled(defaults.http_retry.clone()),
                    ..HttpRule::default()
                }],
            }]
        } else {
            http_routes
                .iter()
                .map(|(key, route)| HttpRoute {
                    resource: resource("HTTPRoute", key),
                    hostnames: route.hostnames.clone(),
                    rules: route
                        .http_rules
                        .iter()
                        .map(|rule| HttpRule {
                            backends: self.resolve(sp, &rule.backends),
                            timeouts: rule.timeouts.or(defaults.timeouts),
                            retry: enabled(
                                rule.retry.clone().or_else(|| defaults.http_retry.clone()),
                            ),
                            ..rule.clone()
                        })
                        .collect(),
                })
                .collect()
        };
        let grpc_routes = grpc_routes
            .iter()
            .map(|(key, route)| GrpcRoute {
                resource: resource("GRPCRoute", key),
                hostnames: route.hostnames.clone(),
                rules: route
                    .grpc_rules
                    .iter()
                    .map(|rule| GrpcRule {
                        backends: self.resolve(sp, &rule.backends),
                        timeouts: rule.timeouts.or(defaults.timeouts),
                        retry: enabled(rule.retry.clone().or_else(|| defaults.grpc_retry.clone())),
                        ..rule.clone()
                    })
                    .collect(),
            })
            .collect();
        Some(OutboundPolicy {
            parent: sp.clone(),
            authority,
            opaque: port_spec.opaque,
            http_routes,
            grpc_routes,
            opaque_backends: default_backends,
            retry_budget: svc.resilience.retry_budget,
            failure_accrual: svc.resilience.failure_accrual,
        })
    }

    /// The backends of the TrafficSplit whose root is `sp`'s Service, if any. The oldest split
    /// wins when several name the same root. Splits are ignored (with a warning) when an
    /// HTTPRoute attaches to the Service: the HTTPRoute is the more specific, newer API.
    fn split_backends(&self, sp: &ServicePort) -> Option<Vec<WeightedBackend>> {
        let fqdn = sp.service.fqdn(&self.config.cluster_domain);
        let short = format!("{}.{}", sp.service.name, sp.service.namespace);
        let svc = format!("{short}.svc");
        let mut splits: Vec<_> = self
            .splits
            .iter()
            .filter(|(k, s)| {
                k.namespace == sp.service.namespace
                    && [
                        sp.service.name.as_str(),
                        fqdn.as_str(),
                        short.as_str(),
                        svc.as_str(),
                    ]
                    .contains(&s.root.trim_end_matches('.'))
            })
            .collect();
        splits.sort_by(|a, b| (&a.1.created, a.0).cmp(&(&b.1.created, b.0)));
        let (key, split) = splits.first()?;
        if let Some((route, _)) = self.http_routes.iter().find(|(_, r)| attaches(r, sp)) {
            tracing::warn!(
                service = %sp, trafficsplit = %key, httproute = %route,
                "HTTPRoute and TrafficSplit both target this service; the HTTPRoute wins and the TrafficSplit is ignored"
            );
        }
        Some(
            split
                .backends
                .iter()
                .map(|(name, weight)| {
                    let target = ServicePort::new(ServiceRef::new(&key.namespace, name), sp.port);
                    self.backend(target, *weight)
                })
                .collect(),
        )
    }

    fn backend(&self, target: ServicePort, weight: u32) -> WeightedBackend {
        WeightedBackend {
            backend: Backend::Service {
                authority: target.authority(&self.config.cluster_domain),
                exists: self.services.contains_key(&target.service),
                target,
            },
            weight,
            filters: vec![],
        }
    }

    /// Fills in whether backend services exist; an empty list means the parent service.
    fn resolve(&self, parent: &ServicePort, backends: &[WeightedBackend]) -> Vec<WeightedBackend> {
        if backends.is_empty() {
            return vec![self.backend(parent.clone(), 1)];
        }
        backends
            .iter()
            .map(|b| match &b.backend {
                Backend::Service { target, .. } => WeightedBackend {
                    filters: b.filters.clone(),
                    ..self.backend(target.clone(), b.weight)
                },
                Backend::Invalid { .. } => b.clone(),
            })
            .collect()
    }
}

fn attaches(route: &Route, sp: &ServicePort) -> bool {
    route
        .parents
        .iter()
        .any(|p| p.service == sp.service && p.port.is_none_or(|port| port == sp.port.get()))
}

fn resource(kind: &str, key: &ObjectKey) -> ResourceRef {
    ResourceRef::Resource {
        group: GATEWAY_GROUP.to_string(),
        kind: kind.to_string(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
    }
}

fn is_service(group: Option<&str>, kind: Option<&str>) -> bool {
    matches!(group, None | Some("" | "core")) && matches!(kind, None | Some("Service"))
}

fn parents(
    key: &ObjectKey,
    refs: impl Iterator<
        Item = (
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            Option<i32>,
        ),
    >,
) -> Vec<ParentRef> {
    refs.filter(|(group, kind, ..)| {
        // Only GAMMA parents: a Service. Routes for Gateways belong to a gateway controller.
        matches!(group.as_deref(), Some("" | "core")) && kind.as_deref() == Some("Service")
    })
    .filter_map(|(_, _, name, namespace, port)| {
        Some(ParentRef {
            service: ServiceRef::new(namespace.unwrap_or_else(|| key.namespace.clone()), name),
            port: match port {
                None => None,
                Some(p) => Some(u16::try_from(p).ok().filter(|p| *p > 0)?),
            },
        })
    })
    .collect()
}

fn hostnames(hosts: Option<&Vec<String>>) -> Vec<HostMatch> {
    hosts
        .into_iter()
        .flatten()
        .map(|h| match h.strip_prefix("*.") {
            Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
            None => HostMatch::Exact(h.to_ascii_lowercase()),
        })
        .collect()
}

fn backend_ref(
    key: &ObjectKey,
    group: Option<&str>,
    kind: Option<&str>,
    name: &str,
    namespace: Option<&str>,
    port: Option<i32>,
    weight: Option<i32>,
) -> WeightedBackend {
    let weight = u32::try_from(weight.unwrap_or(1).max(0)).unwrap_or(0);
    let ns = namespace.unwrap_or(&key.namespace);
    let invalid = |message: String| WeightedBackend {
        backend: Backend::Invalid {
            name: format!("{ns}/{name}"),
            message,
        },
        weight,
        filters: vec![],
    };
    if !is_service(group, kind) {
        return invalid(format!(
            "backendRef kind {}/{} is not supported; only Services",
            group.unwrap_or(""),
            kind.unwrap_or("Service")
        ));
    }
    let Some(port) = port
        .and_then(|p| u16::try_from(p).ok())
        .and_then(NonZeroU16::new)
    else {
        return invalid("backendRef to a Service needs a port".to_string());
    };
    let target = ServicePort::new(ServiceRef::new(ns, name), port);
    WeightedBackend {
        backend: Backend::Service {
            authority: String::new(),
            exists: false,
            target,
        },
        weight,
        filters: vec![],
    }
}

fn value_match(regex: bool, value: &str) -> ValueMatch {
    if regex {
        ValueMatch::Regex(value.to_string())
    } else {
        ValueMatch::Exact(value.to_string())
    }
}

fn duration(route: &ObjectKey, field: &str, value: Option<&String>) -> Option<Duration> {
    let value = value?;
    match resilience::parse_duration(value) {
        Ok(d) => Some(d),
        Err(error) => {
            tracing::warn!(%route, field, %value, %error, "ignoring invalid Gateway API duration");
            None
        }
    }
}

/// A retry policy, unless it allows no retries (an annotation turned inherited retries off).
fn enabled<On>(
    retry: Option<weft_controller_core::resilience::Retry<On>>,
) -> Option<weft_controller_core::resilience::Retry<On>> {
    retry.filter(|r| r.limit > 0)
}

/// Converts any of the generated `*HeaderModifier` types, which differ only in name.
macro_rules! modifier {
    ($m:expr) => {{
        let m = $m;
        header_modifier(
            pairs(m.add.as_ref(), |h| (h.name.clone(), h.value.clone())),
            pairs(m.set.as_ref(), |h| (h.name.clone(), h.value.clone())),
            m.remove.as_ref(),
        )
    }};
}

fn header_modifier(
    add: Vec<(String, String)>,
    set: Vec<(String, String)>,
    remove: Option<&Vec<String>>,
) -> HeaderModifier {
    HeaderModifier {
        add,
        set,
        remove: remove.cloned().unwrap_or_default(),
    }
}

/// Converts an HTTPRoute once, when it is applied.
pub(crate) fn convert_http_route(
    key: &ObjectKey,
    annotations: &BTreeMap<String, String>,
    spec: &http::HttpRouteSpec,
    created: Option<String>,
) -> Route {
    let defaults = resilience::rule_defaults(key, annotations);
    let parents = parents(
        key,
        spec.parent_refs.iter().flatten().map(|p| {
            (
                p.group.clone(),
                p.kind.clone(),
                p.name.clone(),
                p.namespace.clone(),
                p.port,
            )
        }),
    );
    let http_rules = spec
        .rules
        .iter()
        .flatten()
        .map(|rule| {
            let matches = rule.matches.iter().flatten().map(http_match).collect();
            let filters = rule
                .filters
                .iter()
                .flatten()
                .filter_map(|f| http_filter(key, f))
                .collect();
            let backends = rule
                .backend_refs
                .iter()
                .flatten()
                .map(|b| {
                    let mut wb = backend_ref(
                        key,
                        b.group.as_deref(),
                        b.kind.as_deref(),
                        &b.name,
                        b.namespace.as_deref(),
                        b.port,
                        b.weight,
                    );
                    wb.filters = b
                        .filters
                        .iter()
                        .flatten()
                        .filter_map(|f| backend_filter(key, f))
                        .collect();
                    wb
                })
                .collect();
            let timeouts = rule.timeouts.as_ref().map(|t| Timeouts {
                request: duration(key, "timeouts.request", t.request.as_ref()),
                backend_request: duration(
                    key,
                    "timeouts.backendRequest",
                    t.backend_request.as_ref(),
                ),
            });
            let retry = match &rule.retry {
                Some(r) => Some(resilience::gateway_retry(
                    key,
                    r.attempts,
                    r.codes.as_deref(),
                    r.backoff.as_deref(),
                    defaults.http_retry.as_ref(),
                )),
                None => defaults.http_retry.clone(),
            };
            HttpRule {
                matches,
                filters,
                backends,
                timeouts: timeouts.unwrap_or_default().or(defaults.timeouts),
                retry,
            }
        })
        .collect();
    let servers = crate::inbound::server_parents(
        key,
        spec.parent_refs.iter().flatten().map(|p| {
            (
                p.group.as_deref(),
                p.kind.as_deref(),
                p.name.as_str(),
                p.namespace.as_deref(),
            )
        }),
    );
    Route {
        parents,
        hostnames: hostnames(spec.hostnames.as_ref()),
        http_rules,
        grpc_rules: vec![],
        servers,
        created,
    }
}

fn http_match(m: &http::HttpRouteRulesMatches) -> HttpMatch {
    use http::{
        HttpRouteRulesMatchesHeadersType as H, HttpRouteRulesMatchesPathType as P,
        HttpRouteRulesMatchesQueryParamsType as Q,
    };
    HttpMatch {
        // Gateway API: a match without a path matches the prefix `/`, and ranks as one.
        path: Some(m.path.as_ref().map_or_else(
            || PathMatch::Prefix("/".to_string()),
            |p| {
                let value = p.value.clone().unwrap_or_else(|| "/".to_string());
                match p.r#type {
                    Some(P::Exact) => PathMatch::Exact(value),
                    Some(P::RegularExpression) => PathMatch::Regex(value),
                    Some(P::PathPrefix) | None => PathMatch::Prefix(value),
                }
            },
        )),
        headers: m
            .headers
            .iter()
            .flatten()
            .map(|h| HeaderMatch {
                name: h.name.to_ascii_lowercase(),
                value: value_match(h.r#type == Some(H::RegularExpression), &h.value),
            })
            .collect(),
        query_params: m
            .query_params
            .iter()
            .flatten()
            .map(|q| QueryParamMatch {
                name: q.name.clone(),
                value: value_match(q.r#type == Some(Q::RegularExpression), &q.value),
            })
            .collect(),
        method: m.method.as_ref().and_then(|method| {
            serde_json::to_value(method)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        }),
    }
}

fn pairs<T>(items: Option<&Vec<T>>, f: impl Fn(&T) -> (String, String)) -> Vec<(String, String)> {
    items.into_iter().flatten().map(f).collect()
}

fn http_filter(key: &ObjectKey, f: &http::HttpRouteRulesFilters) -> Option<HttpFilter> {
    if let Some(m) = &f.request_header_modifier {
        return Some(HttpFilter::RequestHeaders(modifier!(m)));
    }
    if let Some(m) = &f.response_header_modifier {
        return Some(HttpFilter::ResponseHeaders(modifier!(m)));
    }
    if let Some(r) = &f.request_redirect {
        use http::HttpRouteRulesFiltersRequestRedirectScheme as S;
        return Some(HttpFilter::Redirect(RequestRedirect {
            scheme: r.scheme.as_ref().map(|s| match s {
                S::Http => "http".to_string(),
                S::Https => "https".to_string(),
            }),
            hostname: r.hostname.clone(),
            path: r.path.as_ref().and_then(|p| {
                p.replace_full_path
                    .clone()
                    .map(PathModifier::Full)
                    .or_else(|| p.replace_prefix_match.clone().map(PathModifier::Prefix))
            }),
            port: r.port.and_then(|p| u16::try_from(p).ok()),
            status: r.status_code.and_then(|s| u16::try_from(s).ok()),
        }));
    }
    tracing::warn!(route = %key, filter = ?f.r#type, "unsupported HTTPRoute filter ignored");
    None
}

fn backend_filter(
    key: &ObjectKey,
    f: &http::HttpRouteRulesBackendRefsFilters,
) -> Option<HttpFilter> {
    if let Some(m) = &f.request_header_modifier {
        return Some(HttpFilter::RequestHeaders(modifier!(m)));
    }
    if let Some(m) = &f.response_header_modifier {
        return Some(HttpFilter::ResponseHeaders(modifier!(m)));
    }
    tracing::warn!(route = %key, filter = ?f.r#type, "unsupported backendRef filter ignored");
    None
}

/// Converts a GRPCRoute once, when it is applied.
pub(crate) fn convert_grpc_route(
    key: &ObjectKey,
    annotations: &BTreeMap<String, String>,
    spec: &grpc::GrpcRouteSpec,
    created: Option<String>,
) -> Route {
    // GRPCRoute has no `retry` or `timeouts` fields: its annotations carry them.
    let RuleDefaults {
        grpc_retry,
        timeouts,
        ..
    } = resilience::rule_defaults(key, annotations);
    let parents = parents(
        key,
        spec.parent_refs.iter().flatten().map(|p| {
            (
                p.group.clone(),
                p.kind.clone(),
                p.name.clone(),
                p.namespace.clone(),
                p.port,
            )
        }),
    );
    let grpc_rules = spec
        .rules
        .iter()
        .flatten()
        .map(|rule| {
            let matches = rule
                .matches
                .iter()
                .flatten()
                .map(|m| GrpcMatch {
                    service: m.method.as_ref().and_then(|x| x.service.clone()),
                    method: m.method.as_ref().and_then(|x| x.method.clone()),
                    headers: m
                        .headers
                        .iter()
                        .flatten()
                        .map(|h| HeaderMatch {
                            name: h.name.to_ascii_lowercase(),
                            value: value_match(
                                h.r#type
                                    == Some(
                                        grpc::GrpcRouteRulesMatchesHeadersType::RegularExpression,
                                    ),
                                &h.value,
                            ),
                        })
                        .collect(),
                })
                .collect();
            let filters = rule
                .filters
                .iter()
                .flatten()
                .filter_map(|f| {
                    let m = f.request_header_modifier.as_ref()?;
                    Some(HttpFilter::RequestHeaders(modifier!(m)))
                })
                .collect();
            let backends = rule
                .backend_refs
                .iter()
                .flatten()
                .map(|b| {
                    let mut wb = backend_ref(
                        key,
                        b.group.as_deref(),
                        b.kind.as_deref(),
                        &b.name,
                        b.namespace.as_deref(),
                        b.port,
                        b.weight,
                    );
                    wb.filters = b
                        .filters
                        .iter()
                        .flatten()
                        .filter_map(|f| {
                            let m = f.request_header_modifier.as_ref()?;
                            Some(HttpFilter::RequestHeaders(modifier!(m)))
                        })
                        .collect();
                    wb
                })
                .collect();
            GrpcRule {
                matches,
                filters,
                backends,
                timeouts,
                retry: grpc_retry.clone(),
            }
        })
        .collect();
    Route {
        parents,
        hostnames: hostnames(spec.hostnames.as_ref()),
        http_rules: vec![],
        grpc_rules,
        servers: vec![],
        created,
    }
}
