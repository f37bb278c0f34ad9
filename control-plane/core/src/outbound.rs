//! Outbound policy of a service port: its protocol, routes and weighted backends.

use crate::{
    ServicePort,
    resilience::{FailureAccrual, GrpcRetry, HttpRetry, RetryBudget},
};
use std::{net::SocketAddr, time::Duration};

/// What a proxy asks outbound policy for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OutboundTarget {
    /// The original destination of a connection (a ClusterIP and port).
    Addr(SocketAddr),
    /// A name, `<svc>.<ns>.svc.<cluster-domain>:<port>`.
    Authority(String),
}

/// The policy for one service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// The service port this policy is for.
    pub parent: ServicePort,
    /// Its authority, `name.ns.svc.<cluster-domain>:port`.
    pub authority: String,
    /// Whether the port is opaque (`appProtocol: tcp`/`weft.dev/opaque-ports`).
    pub opaque: bool,
    /// HTTP routes, from HTTPRoutes or one default route.
    pub http_routes: Vec<HttpRoute>,
    /// gRPC routes from GRPCRoutes; empty unless some GRPCRoute names this service.
    pub grpc_routes: Vec<GrpcRoute>,
    /// Where opaque (and undetected) traffic goes: the TrafficSplit's backends or the service.
    pub opaque_backends: Vec<WeightedBackend>,
    /// How many retries the service's clients may send (`weft.dev/retry-budget`).
    pub retry_budget: RetryBudget,
    /// Circuit breaking of the service's endpoints (`weft.dev/failure-accrual`), if on.
    pub failure_accrual: Option<FailureAccrual>,
}

/// Which resource a route or backend came from, for metrics and debugging.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceRef {
    /// A route the controller made up (no HTTPRoute applies).
    Default(String),
    /// A Kubernetes resource.
    Resource {
        /// API group (`gateway.networking.k8s.io`, `split.smi-spec.io`, `core`).
        group: String,
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
}

/// An HTTP route: host matches and ordered rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRoute {
    /// Where the route came from.
    pub resource: ResourceRef,
    /// Hostnames the route applies to; empty means any.
    pub hostnames: Vec<HostMatch>,
    /// Rules, in the route's order.
    pub rules: Vec<HttpRule>,
}

/// A gRPC route: host matches and ordered rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcRoute {
    /// Where the route came from.
    pub resource: ResourceRef,
    /// Hostnames the route applies to; empty means any.
    pub hostnames: Vec<HostMatch>,
    /// Rules, in the route's order.
    pub rules: Vec<GrpcRule>,
}

/// A hostname match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostMatch {
    /// This host exactly.
    Exact(String),
    /// `*.example.com`: any host under the suffix (stored without `*.`).
    Suffix(String),
}

/// One rule of an HTTP route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRule {
    /// Any of these matches selects the rule; empty matches everything.
    pub matches: Vec<HttpMatch>,
    /// Applied to matching requests and their responses.
    pub filters: Vec<HttpFilter>,
    /// Where matching requests go.
    pub backends: Vec<WeightedBackend>,
    /// Request and backend timeouts.
    pub timeouts: Timeouts,
    /// Retries, if any.
    pub retry: Option<HttpRetry>,
}

/// One rule of a gRPC route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrpcRule {
    /// Any of these matches selects the rule; empty matches everything.
    pub matches: Vec<GrpcMatch>,
    /// Request header modifiers.
    pub filters: Vec<HttpFilter>,
    /// Where matching requests go.
    pub backends: Vec<WeightedBackend>,
    /// Request and backend timeouts.
    pub timeouts: Timeouts,
    /// Retries, if any.
    pub retry: Option<GrpcRetry>,
}

/// Timeouts of a route rule (Gateway API `timeouts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole request, retries included.
    pub request: Option<Duration>,
    /// One try against a backend.
    pub backend_request: Option<Duration>,
}

impl Timeouts {
    /// These timeouts, with each one not set taken from `fallback`.
    pub fn or(self, fallback: Timeouts) -> Timeouts {
        Timeouts {
            request: self.request.or(fallback.request),
            backend_request: self.backend_request.or(fallback.backend_request),
        }
    }
}

/// A request match: every present part must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpMatch {
    /// The path.
    pub path: Option<PathMatch>,
    /// Headers.
    pub headers: Vec<HeaderMatch>,
    /// Query parameters.
    pub query_params: Vec<QueryParamMatch>,
    /// The method, upper case.
    pub method: Option<String>,
}

/// A gRPC request match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrpcMatch {
    /// Service (`package.Service`), if matched.
    pub service: Option<String>,
    /// Method, if matched.
    pub method: Option<String>,
    /// Headers.
    pub headers: Vec<HeaderMatch>,
}

/// How a path matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// Exactly this path.
    Exact(String),
    /// This path prefix, by whole segments.
    Prefix(String),
    /// A regular expression over the whole path.
    Regex(String),
}

/// How a value (header or query parameter) matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueMatch {
    /// Exactly this value.
    Exact(String),
    /// A regular expression over the whole value.
    Regex(String),
}

/// A header match; names are compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMatch {
    /// The header name, lower case.
    pub name: String,
    /// The value.
    pub value: ValueMatch,
}

/// A query parameter match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryParamMatch {
    /// The parameter name.
    pub name: String,
    /// The value.
    pub value: ValueMatch,
}

/// A filter on a route rule or backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpFilter {
    /// Change request headers.
    RequestHeaders(HeaderModifier),
    /// Change response headers.
    ResponseHeaders(HeaderModifier),
    /// Answer with a redirect instead of forwarding.
    Redirect(RequestRedirect),
}

/// Header changes: add (append), set (replace), remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderModifier {
    /// Appended.
    pub add: Vec<(String, String)>,
    /// Replacing any existing value.
    pub set: Vec<(String, String)>,
    /// Removed.
    pub remove: Vec<String>,
}

/// A redirect response (Gateway API `RequestRedirect`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestRedirect {
    /// `http` or `https`.
    pub scheme: Option<String>,
    /// New host.
    pub hostname: Option<String>,
    /// New path.
    pub path: Option<PathModifier>,
    /// New port.
    pub port: Option<u16>,
    /// 301 or 302 (default 302).
    pub status: Option<u16>,
}

/// How a redirect changes the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathModifier {
    /// Replace the whole path.
    Full(String),
    /// Replace the matched prefix.
    Prefix(String),
}

/// A backend with its share of traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedBackend {
    /// Where traffic goes.
    pub backend: Backend,
    /// Relative weight; 0 sends nothing.
    pub weight: u32,
    /// Filters applied only for this backend.
    pub filters: Vec<HttpFilter>,
}

/// A backend of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A service port, balanced over its endpoints.
    Service {
        /// The service port.
        target: ServicePort,
        /// Its authority, the `Destination.Get` path.
        authority: String,
        /// Whether the service exists; requests to a missing backend fail with 500.
        exists: bool,
    },
    /// A backend that cannot be used, with the reason (unsupported kind, bad port, ...).
    Invalid {
        /// What the backendRef named.
        name: String,
        /// Why it is unusable.
        message: String,
    },
}
