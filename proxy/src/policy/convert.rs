//! Protocols, routes, rules and distributions from the proto, validated.

use super::{
    At, Backend, Backoff, DEFAULT_DETECT_TIMEOUT, Distribution, FailureAccrual, Filter, HostMatch,
    HttpRoute, HttpRoutes, InvalidPolicy, OpaqueRoutes, PathMatch, Protocol, RequestMatch, Retry,
    RetryOn, RouteBackend, Rule, Timeouts, duration, filter, indexed,
    matches::{anchored, convert::header_matches},
    meta_name, required,
};
use std::sync::Arc;
use weft_proto::{grpc_route, http_route, meta, outbound};

pub(super) fn protocol(kind: outbound::proxy_protocol::Kind) -> Result<Protocol, InvalidPolicy> {
    use outbound::proxy_protocol::Kind;
    Ok(match kind {
        Kind::Detect(d) => Protocol::Detect {
            timeout: duration(d.timeout, "timeout")
                .at("detect")?
                .unwrap_or(DEFAULT_DETECT_TIMEOUT),
            http1: {
                let h = required(d.http1, "http1").at("detect")?;
                http_routes(h.routes, h.failure_accrual).at("detect.http1")?
            },
            http2: {
                let h = required(d.http2, "http2").at("detect")?;
                http_routes(h.routes, h.failure_accrual).at("detect.http2")?
            },
            opaque: opaque_routes(required(d.opaque, "opaque").at("detect")?.routes)
                .at("detect.opaque")?,
        },
        Kind::Opaque(o) => Protocol::Opaque(opaque_routes(o.routes).at("opaque")?),
        Kind::Http1(h) => Protocol::Http1(http_routes(h.routes, h.failure_accrual).at("http1")?),
        Kind::Http2(h) => Protocol::Http2(http_routes(h.routes, h.failure_accrual).at("http2")?),
        Kind::Grpc(g) => Protocol::Grpc(HttpRoutes {
            routes: indexed(g.routes, "routes", grpc_route).at("grpc")?,
            failure_accrual: failure_accrual(g.failure_accrual).at("grpc.failure_accrual")?,
        }),
        Kind::Tls(t) => Protocol::Opaque(tls_routes(t.routes).at("tls")?),
    })
}

fn http_routes(
    routes: Vec<outbound::HttpRoute>,
    accrual: Option<outbound::FailureAccrual>,
) -> Result<HttpRoutes, InvalidPolicy> {
    let failure_accrual = failure_accrual(accrual).at("failure_accrual")?;
    let routes = indexed(routes, "routes", |r| {
        Ok(HttpRoute {
            name: route_name(r.metadata.as_ref()).into(),
            hosts: indexed(r.hosts, "hosts", HostMatch::try_from)?,
            rules: indexed(r.rules, "rules", |rule| {
                // `request_timeout` is deprecated in favour of `timeouts.response`, which
                // controllers set to the same value.
                Ok(Rule {
                    matches: indexed(rule.matches, "matches", RequestMatch::try_from)?,
                    filters: indexed(rule.filters, "filters", filter::convert::http)?,
                    backends: http_distribution(required(rule.backends, "backends")?)
                        .at("backends")?,
                    timeouts: timeouts(rule.timeouts).at("timeouts")?,
                    retry: rule.retry.map(http_retry).transpose().at("retry")?,
                })
            })?,
        })
    })?;
    Ok(HttpRoutes {
        routes,
        failure_accrual,
    })
}

/// Consecutive-failure accrual, from either policy kind. Of `Unified`, only its consecutive
/// part is used: the proxy does not track success-rate EWMAs. A zero threshold is off.
fn failure_accrual(
    proto: Option<outbound::FailureAccrual>,
) -> Result<Option<FailureAccrual>, InvalidPolicy> {
    use outbound::failure_accrual::Kind;
    let Some(kind) = proto.and_then(|p| p.kind) else {
        return Ok(None);
    };
    let (max_failures, backoff, at) = match kind {
        Kind::ConsecutiveFailures(c) => (c.max_failures, c.backoff, "consecutive_failures"),
        Kind::Unified(u) => (u.max_consecutive_failures, u.backoff, "unified"),
    };
    if max_failures == 0 {
        return Ok(None);
    }
    let backoff =
        backoff_of(required(backoff, "backoff").at(at)?).at(format_args!("{at}.backoff"))?;
    Ok(Some(FailureAccrual {
        max_failures,
        backoff,
    }))
}

/// A gRPC route in the HTTP model: an RPC match is a path match on `/service/method`, and
/// every match requires POST, as gRPC does.
fn grpc_route(r: outbound::GrpcRoute) -> Result<HttpRoute, InvalidPolicy> {
    Ok(HttpRoute {
        name: route_name(r.metadata.as_ref()).into(),
        hosts: indexed(r.hosts, "hosts", HostMatch::try_from)?,
        rules: indexed(r.rules, "rules", |rule| {
            Ok(Rule {
                matches: indexed(rule.matches, "matches", grpc_match)?,
                filters: indexed(rule.filters, "filters", filter::convert::grpc)?,
                backends: grpc_distribution(required(rule.backends, "backends")?).at("backends")?,
                timeouts: timeouts(rule.timeouts).at("timeouts")?,
                retry: rule.retry.map(grpc_retry).transpose().at("retry")?,
            })
        })?,
    })
}

/// A gRPC match in the HTTP model, as in [`grpc_route`].
pub(crate) fn grpc_match(m: grpc_route::GrpcRouteMatch) -> Result<RequestMatch, InvalidPolicy> {
    let path = match m.rpc {
        None => None,
        Some(rpc) => match (rpc.service.is_empty(), rpc.method.is_empty()) {
            (false, false) => Some(PathMatch::Exact(format!("/{}/{}", rpc.service, rpc.method))),
            (false, true) => Some(PathMatch::Prefix(format!("/{}/", rpc.service))),
            (true, false) => {
                let re = format!("/[^/]+/{}", regex::escape(&rpc.method));
                Some(PathMatch::Regex(anchored(&re).at("rpc.method")?))
            }
            (true, true) => None,
        },
    };
    Ok(RequestMatch {
        path,
        headers: header_matches(m.headers)?,
        query_params: Vec::new(),
        method: Some(http::Method::POST),
    })
}

/// Opaque routes have no matches, so only one can ever apply: the first route's first rule.
/// No routes at all means no backend (connections are refused).
fn opaque_routes(routes: Vec<outbound::OpaqueRoute>) -> Result<OpaqueRoutes, InvalidPolicy> {
    let Some(route) = routes.into_iter().next() else {
        return Ok(OpaqueRoutes::empty());
    };
    let name = route_name(route.metadata.as_ref());
    let rule = first_rule(route.rules).at("routes[0]")?;
    Ok(OpaqueRoutes {
        name,
        filters: indexed(rule.filters, "filters", filter::convert::opaque)
            .at("routes[0].rules[0]")?,
        distribution: opaque_distribution(required(rule.backends, "backends")?)
            .at("routes[0].rules[0].backends")?,
    })
}

/// TLS is forwarded opaquely; SNI matches are not used, so as for opaque routes the first
/// route's first rule applies.
fn tls_routes(routes: Vec<outbound::TlsRoute>) -> Result<OpaqueRoutes, InvalidPolicy> {
    let Some(route) = routes.into_iter().next() else {
        return Ok(OpaqueRoutes::empty());
    };
    let name = route_name(route.metadata.as_ref());
    let rule = first_rule(route.rules).at("routes[0]")?;
    Ok(OpaqueRoutes {
        name,
        filters: indexed(rule.filters, "filters", tls_filter).at("routes[0].rules[0]")?,
        distribution: tls_distribution(required(rule.backends, "backends")?)
            .at("routes[0].rules[0].backends")?,
    })
}

fn first_rule<R>(rules: Vec<R>) -> Result<R, InvalidPolicy> {
    rules
        .into_iter()
        .next()
        .ok_or_else(|| InvalidPolicy::value("rules", "[]", "at least one rule").within("rules"))
}

fn route_name(meta: Option<&meta::Metadata>) -> String {
    meta_name(meta).unwrap_or_else(|| "unknown".to_string())
}

/// Converts one of the four identical-but-distinct proto `Distribution` messages.
macro_rules! distribution {
    ($name:ident, $module:ident, $filter:expr) => {
        fn $name(d: outbound::$module::Distribution) -> Result<Distribution, InvalidPolicy> {
            use outbound::$module::distribution::Kind;
            let route_backend = |rb: outbound::$module::RouteBackend| {
                let backend = Backend::try_from(required(rb.backend, "backend")?).at("backend")?;
                Ok(RouteBackend {
                    backend: Arc::new(backend),
                    filters: indexed(rb.filters, "filters", $filter)?,
                })
            };
            Ok(match required(d.kind, "kind")? {
                Kind::Empty(_) => Distribution::Empty,
                Kind::FirstAvailable(f) => Distribution::FirstAvailable(
                    indexed(f.backends, "backends", route_backend).at("first_available")?,
                ),
                Kind::RandomAvailable(r) => {
                    let weights = r.backends.iter().map(|wb| wb.weight).collect();
                    let backends = indexed(r.backends, "backends", |wb| {
                        route_backend(required(wb.backend, "backend")?).at("backend")
                    })
                    .at("random_available")?;
                    Distribution::RandomAvailable { backends, weights }
                }
            })
        }
    };
}

distribution!(http_distribution, http_route, filter::convert::http);
distribution!(grpc_distribution, grpc_route, filter::convert::grpc);
distribution!(opaque_distribution, opaque_route, filter::convert::opaque);
distribution!(tls_distribution, tls_route, tls_filter);

/// TLS route filters are the opaque ones under another name.
fn tls_filter(f: outbound::tls_route::Filter) -> Result<Filter, InvalidPolicy> {
    use outbound::{opaque_route::filter::Kind as Opaque, tls_route::filter::Kind as Tls};
    filter::convert::opaque(outbound::opaque_route::Filter {
        kind: f.kind.map(|k| match k {
            Tls::Invalid(i) => Opaque::Invalid(i),
            Tls::Forbidden(f) => Opaque::Forbidden(f),
        }),
    })
}

fn timeouts(t: Option<http_route::Timeouts>) -> Result<Timeouts, InvalidPolicy> {
    let Some(t) = t else {
        return Ok(Timeouts::default());
    };
    Ok(Timeouts {
        response: duration(t.response, "response")?,
        request: duration(t.request, "request")?,
        idle: duration(t.idle, "idle")?,
    })
}

fn http_retry(r: outbound::http_route::Retry) -> Result<Retry, InvalidPolicy> {
    let conditions = required(r.conditions, "conditions")?;
    let ranges = indexed(conditions.status_ranges, "status_ranges", |sr| {
        match (u16::try_from(sr.start), u16::try_from(sr.end)) {
            (Ok(start), Ok(end)) if start <= end && end <= 999 => Ok(start..=end),
            _ => {
                let shown = format!("{}-{}", sr.start, sr.end);
                Err(InvalidPolicy::value(
                    "status range",
                    shown,
                    "start <= end <= 999",
                ))
            }
        }
    })
    .at("conditions")?;
    let on = RetryOn::Statuses(ranges);
    let timeout = duration(r.timeout, "timeout")?;
    retry(r.max_retries, r.max_request_bytes, on, timeout, r.backoff)
}

fn grpc_retry(r: outbound::grpc_route::Retry) -> Result<Retry, InvalidPolicy> {
    let c = required(r.conditions, "conditions")?;
    let codes = [
        (c.cancelled, 1),
        (c.deadine_exceeded, 4),
        (c.resource_exhausted, 8),
        (c.internal, 13),
        (c.unavailable, 14),
    ];
    let codes = codes.iter().filter(|(on, _)| *on).map(|&(_, code)| code);
    let on = RetryOn::GrpcCodes(codes.collect());
    let timeout = duration(r.timeout, "timeout")?;
    retry(r.max_retries, r.max_request_bytes, on, timeout, r.backoff)
}

fn backoff_of(b: outbound::ExponentialBackoff) -> Result<Backoff, InvalidPolicy> {
    let min = duration(b.min_backoff, "min_backoff")?.unwrap_or_default();
    let max = duration(b.max_backoff, "max_backoff")?.unwrap_or(min);
    if max < min {
        let shown = format!("{max:?} < min_backoff {min:?}");
        let expected = "max_backoff >= min_backoff";
        return Err(InvalidPolicy::value("max_backoff", shown, expected).within("max_backoff"));
    }
    if !(b.jitter_ratio.is_finite() && b.jitter_ratio >= 0.0) {
        let expected = "a ratio >= 0";
        return Err(
            InvalidPolicy::value("jitter_ratio", b.jitter_ratio, expected).within("jitter_ratio"),
        );
    }
    Ok(Backoff {
        min,
        max,
        jitter: b.jitter_ratio,
    })
}

fn retry(
    max_retries: u32,
    max_request_bytes: u32,
    on: RetryOn,
    timeout: Option<std::time::Duration>,
    backoff: Option<outbound::ExponentialBackoff>,
) -> Result<Retry, InvalidPolicy> {
    let backoff = backoff.map(backoff_of).transpose().at("backoff")?;
    Ok(Retry {
        max_retries,
        // Zero is the proto's unset.
        max_request_bytes: match max_request_bytes {
            0 => crate::retry::DEFAULT_MAX_REQUEST_BYTES as u32,
            n => n,
        },
        on,
        timeout,
        backoff,
    })
}
