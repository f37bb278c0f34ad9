//! HTTP routes and picking the one a request takes, with Gateway API precedence.

#[cfg(test)]
mod tests;

use super::{
    Backend, Distribution, Filter, HostMatch, RequestMatch, RouteBackend, Synthetic, filter,
    matches::{HostRank, MatchRank},
};
use http::{HeaderMap, Method, Uri, header, request, uri::Authority};
use std::{ops::RangeInclusive, sync::Arc, time::Duration};

/// The routes for one HTTP protocol of a target, in the controller's precedence order.
#[derive(Clone, Debug, Default)]
pub struct HttpRoutes {
    /// The routes; on a precedence tie the earlier route wins.
    pub routes: Vec<HttpRoute>,
    /// Circuit breaking for the endpoints these routes reach; `None` is off.
    pub failure_accrual: Option<FailureAccrual>,
}

/// Circuit breaking (`FailureAccrual.ConsecutiveFailures`): after `max_failures` failures in a
/// row an endpoint is ejected from balancing for a wait that grows with each ejection
/// (`backoff`); then a single request probes it, and success restores it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailureAccrual {
    /// Failures in a row that eject an endpoint (at least 1).
    pub max_failures: u32,
    /// How long an ejection lasts: `min` the first time, doubling up to `max`.
    pub backoff: Backoff,
}

/// One route (an `HTTPRoute` or `GRPCRoute`, or a controller default).
#[derive(Clone, Debug)]
pub struct HttpRoute {
    /// The name for the `route` metric label: `shop/web-canary`, or `default:...`.
    pub name: Arc<str>,
    /// Hostnames the route applies to; empty means every host.
    pub hosts: Vec<HostMatch>,
    /// The rules; on a precedence tie the earlier rule wins.
    pub rules: Vec<Rule>,
}

/// A set of matches and what to do with the requests they select.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Any one of these selects the request; no matches at all selects every request.
    pub matches: Vec<RequestMatch>,
    /// Filters applied to every request the rule takes, before a backend is picked.
    pub filters: Vec<Filter>,
    /// Where requests go.
    pub backends: Distribution,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Retries, if enabled.
    pub retry: Option<Retry>,
}

/// A rule's time limits (`HTTPRoute` `timeouts`); `None` is no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// From the end of the request to the end of the response headers.
    pub response: Option<Duration>,
    /// The whole exchange, including retries.
    pub request: Option<Duration>,
    /// No frames in either direction for this long.
    pub idle: Option<Duration>,
}

/// When and how often a failed request is sent again.
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Requests with larger bodies are not buffered, so not retried.
    pub max_request_bytes: u32,
    /// Which responses are retried.
    pub on: RetryOn,
    /// A time limit for each attempt.
    pub timeout: Option<Duration>,
    /// The wait between attempts, if any.
    pub backoff: Option<Backoff>,
}

/// Which responses a retry policy retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryOn {
    /// HTTP responses whose status is in one of these ranges.
    Statuses(Vec<RangeInclusive<u16>>),
    /// gRPC responses with one of these `grpc-status` codes.
    GrpcCodes(Vec<u32>),
}

/// Exponential backoff between retries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first wait.
    pub min: Duration,
    /// The longest wait.
    pub max: Duration,
    /// A random extra, as a fraction of the wait.
    pub jitter: f32,
}

/// The route and rule a request takes.
#[derive(Clone, Copy, Debug)]
pub struct RouteMatch<'a> {
    /// The route.
    pub route: &'a HttpRoute,
    /// The rule within it.
    pub rule: &'a Rule,
    /// The configured path prefix that matched, if the winning match was a prefix match; a
    /// redirect that replaces the prefix needs it.
    pub prefix: Option<&'a str>,
}

// === impl HttpRoutes ===

impl Rule {
    /// Whether every match of the rule names `method`: a rule that only takes, say, POSTs
    /// and has a retry policy says that its POSTs may be retried.
    pub fn names_method(&self, method: &http::Method) -> bool {
        !self.matches.is_empty()
            && self
                .matches
                .iter()
                .all(|m| m.method.as_ref() == Some(method))
    }
}

impl HttpRoutes {
    /// One route with one rule that takes every request to `backend`.
    pub fn forward(backend: Arc<Backend>) -> Self {
        Self {
            routes: vec![HttpRoute {
                name: "default:forward".into(),
                hosts: Vec::new(),
                rules: vec![Rule {
                    matches: Vec::new(),
                    filters: Vec::new(),
                    backends: Distribution::FirstAvailable(vec![RouteBackend::new(backend)]),
                    timeouts: Timeouts::default(),
                    retry: None,
                }],
            }],
            failure_accrual: None,
        }
    }

    /// The route and rule for a request, or `None` if no route matches (the proxy answers 404).
    ///
    /// Precedence, per Gateway API: the host match (an exact name over a wildcard, longer
    /// first, over a route without hosts); then the path (exact, then the longest prefix, then
    /// regex, then none); then a method match; then more header matches; then more query
    /// parameter matches. Ties go to the earlier route, then the earlier rule.
    pub fn select(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<RouteMatch<'_>> {
        let authority = request_authority(uri, headers);
        let host = authority.as_ref().map(Authority::host);
        let mut best: Option<((HostRank, MatchRank), RouteMatch<'_>)> = None;
        for route in &self.routes {
            let Some(host_rank) = route.host_rank(host) else {
                continue;
            };
            for rule in &route.rules {
                let Some((rank, prefix)) = rule.rank(method, uri, headers) else {
                    continue;
                };
                let rank = (host_rank, rank);
                if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                    let found = RouteMatch {
                        route,
                        rule,
                        prefix,
                    };
                    best = Some((rank, found));
                }
            }
        }
        best.map(|(_, found)| found)
    }
}

impl HttpRoute {
    fn host_rank(&self, host: Option<&str>) -> Option<HostRank> {
        if self.hosts.is_empty() {
            return Some(HostRank::Any);
        }
        let host = host?;
        // The first of equally good host matches is as good as any.
        self.hosts.iter().filter_map(|h| h.rank(host)).max()
    }
}

impl Rule {
    fn rank<'a>(
        &'a self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<(MatchRank, Option<&'a str>)> {
        if self.matches.is_empty() {
            return Some((MatchRank::default(), None));
        }
        let mut best: Option<(MatchRank, Option<&'a str>)> = None;
        for m in &self.matches {
            if let Some(found) = m.rank(method, uri.path(), uri.query(), headers)
                && best.as_ref().is_none_or(|(b, _)| found.0 > *b)
            {
                best = Some(found);
            }
        }
        best
    }
}

/// The request's authority: the URI's (HTTP/2, absolute-form HTTP/1) or the `Host` header's.
fn request_authority(uri: &Uri, headers: &HeaderMap) -> Option<Authority> {
    if let Some(a) = uri.authority() {
        return Some(a.clone());
    }
    let host = headers.get(header::HOST)?;
    Authority::try_from(host.as_bytes()).ok()
}

// === impl RouteMatch ===

impl RouteMatch<'_> {
    /// Applies the rule's filters to a request (see [`super::apply_request`]), with the matched
    /// prefix available to a redirect that replaces it.
    pub fn apply_request(&self, parts: &mut request::Parts) -> Result<(), Synthetic> {
        filter::apply_request_matched(&self.rule.filters, self.prefix, parts)
    }
}
