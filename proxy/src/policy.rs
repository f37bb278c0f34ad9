//! The outbound policy model: what the controller's `OutboundPolicies/Watch` says about a target,
//! validated once (regexes compiled, names parsed) into plain data the proxy can route with.
//!
//! Everything here is synchronous and pure: converting a policy, picking a route for a request,
//! applying filters and picking a backend. Watching the controller and connecting live elsewhere.

mod backend;
mod convert;
mod filter;
mod matches;
mod route;

#[cfg(test)]
mod tests;

pub use self::{
    backend::{
        Backend, BackendKind, DEFAULT_DECAY, DEFAULT_RTT, Distribution, OpaqueRoutes, Queue,
        RouteBackend,
    },
    filter::{
        DEFAULT_REDIRECT_STATUS, Deny, FailureInjector, FailureResponse, Filter, HeaderModifier,
        PathModifier, Redirect, Synthetic, apply_request, apply_response, denied,
    },
    matches::{HeaderMatch, HostMatch, PathMatch, QueryParamMatch, RequestMatch, ValueMatch},
    route::{
        Backoff, FailureAccrual, HttpRoute, HttpRoutes, Retry, RetryOn, RouteMatch, Rule, Timeouts,
    },
};
// The inbound proxy converts its routes with the same matchers and filters.
pub(crate) use self::{
    convert::grpc_match,
    filter::convert::{grpc as grpc_filter, http as http_filter},
};
use std::{fmt, net::SocketAddr, sync::Arc, time::Duration};
use weft_proto::{meta, outbound};

/// How long detection waits for a client's first bytes when the controller does not say.
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The controller's policy for one outbound target.
#[derive(Clone, Debug)]
pub struct OutboundPolicy {
    /// A human name for the target, from its metadata: `Service shop/web:8080`,
    /// `default:<name>` for a controller default, or the address for [`OutboundPolicy::forward`].
    pub parent: Arc<str>,
    /// How to treat connections to the target.
    pub protocol: Protocol,
}

/// How connections to a target are handled.
#[derive(Clone, Debug)]
pub enum Protocol {
    /// Detect the protocol from the first bytes and route with the matching table.
    Detect {
        /// How long to wait for the client's first bytes before treating it as opaque.
        timeout: Duration,
        /// Routes for HTTP/1 requests.
        http1: HttpRoutes,
        /// Routes for HTTP/2 requests.
        http2: HttpRoutes,
        /// Routes for connections that are not HTTP.
        opaque: OpaqueRoutes,
    },
    /// Known HTTP/1 without detection.
    Http1(HttpRoutes),
    /// Known HTTP/2 without detection.
    Http2(HttpRoutes),
    /// Known gRPC; its routes are converted to the HTTP model (gRPC is HTTP/2).
    Grpc(HttpRoutes),
    /// Forward bytes without looking at them. The proto's `Tls` kind lands here too: the proxy
    /// does not terminate or route on SNI, it forwards the TLS stream as it is.
    Opaque(OpaqueRoutes),
}

impl OutboundPolicy {
    /// The policy for a target the controller does not know: detect the protocol, send every
    /// HTTP request and every opaque connection to `addr` itself.
    pub fn forward(addr: SocketAddr) -> Self {
        let backend = Arc::new(Backend::forward(addr));
        let http = HttpRoutes::forward(backend.clone());
        Self {
            parent: addr.to_string().into(),
            protocol: Protocol::Detect {
                timeout: DEFAULT_DETECT_TIMEOUT,
                http1: http.clone(),
                http2: http,
                opaque: OpaqueRoutes::forward(backend),
            },
        }
    }
}

impl TryFrom<outbound::OutboundPolicy> for OutboundPolicy {
    type Error = InvalidPolicy;

    fn try_from(proto: outbound::OutboundPolicy) -> Result<Self, Self::Error> {
        let parent = parent_name(proto.metadata.as_ref());
        let protocol = required(proto.protocol, "protocol")?;
        let kind = required(protocol.kind, "kind").at("protocol")?;
        let protocol = convert::protocol(kind).at("protocol")?;
        Ok(Self {
            parent: parent.into(),
            protocol,
        })
    }
}

// === errors ===

/// A policy the controller sent that the proxy cannot use, and where in it the problem is.
#[derive(Debug, thiserror::Error)]
#[error("{}{kind}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct InvalidPolicy {
    /// The field path in proto names, e.g. `protocol.detect.http1.routes[0].rules[1]`.
    pub path: String,
    /// What is wrong there.
    pub kind: Invalid,
}

/// What is wrong with one field of a policy.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// A required field is not set.
    #[error("missing")]
    Missing,
    /// A regular expression does not compile.
    #[error("invalid regex {regex:?}: {error}")]
    Regex {
        /// The expression as sent.
        regex: String,
        /// Why it does not compile.
        error: Box<regex::Error>,
    },
    /// Any other bad value: what it was and what is accepted.
    #[error("invalid {what} {value:?}: {expected}")]
    Value {
        /// The kind of value (`header name`, `status`, ...).
        what: &'static str,
        /// The value as sent.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

impl InvalidPolicy {
    pub(crate) fn new(kind: Invalid) -> Self {
        Self {
            path: String::new(),
            kind,
        }
    }

    pub(crate) fn value(
        what: &'static str,
        value: impl fmt::Display,
        expected: &'static str,
    ) -> Self {
        Self::new(Invalid::Value {
            what,
            value: value.to_string(),
            expected,
        })
    }

    /// Puts the error under `segment` (the enclosing field).
    fn within(mut self, segment: impl fmt::Display) -> Self {
        self.path = if self.path.is_empty() {
            segment.to_string()
        } else {
            format!("{segment}.{}", self.path)
        };
        self
    }
}

/// Prefixes an error's path with the field it came from.
pub(crate) trait At<T> {
    fn at(self, segment: impl fmt::Display) -> Result<T, InvalidPolicy>;
}

impl<T> At<T> for Result<T, InvalidPolicy> {
    fn at(self, segment: impl fmt::Display) -> Result<T, InvalidPolicy> {
        self.map_err(|e| e.within(segment))
    }
}

/// Converts a repeated field, naming the failing element `field[i]`.
pub(crate) fn indexed<P, T>(
    items: Vec<P>,
    field: &str,
    mut convert: impl FnMut(P) -> Result<T, InvalidPolicy>,
) -> Result<Vec<T>, InvalidPolicy> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| convert(item).at(format_args!("{field}[{i}]")))
        .collect()
}

/// A required proto field.
pub(crate) fn required<T>(field: Option<T>, name: &str) -> Result<T, InvalidPolicy> {
    field.ok_or_else(|| InvalidPolicy::new(Invalid::Missing).within(name))
}

/// A proto duration (generic so the proxy needs no prost-types dependency); `None` when unset
/// or zero, so callers can apply their default.
pub(crate) fn duration<D>(d: Option<D>, name: &str) -> Result<Option<Duration>, InvalidPolicy>
where
    D: Copy + fmt::Debug,
    Duration: TryFrom<D>,
{
    let Some(d) = d else { return Ok(None) };
    let std = Duration::try_from(d).map_err(|_| {
        InvalidPolicy::value("duration", format!("{d:?}"), "a non-negative duration").within(name)
    })?;
    Ok((!std.is_zero()).then_some(std))
}

// === names ===

/// `Service shop/web:8080`, `default:all-unauthenticated`, or `unknown`.
fn parent_name(meta: Option<&meta::Metadata>) -> String {
    match meta.and_then(|m| m.kind.as_ref()) {
        Some(meta::metadata::Kind::Resource(r)) if !r.kind.is_empty() => {
            format!("{} {}", r.kind, resource_name(r))
        }
        Some(meta::metadata::Kind::Resource(r)) => resource_name(r),
        Some(meta::metadata::Kind::Default(name)) => format!("default:{name}"),
        None => "unknown".to_string(),
    }
}

/// `shop/web-v2:8080` for a resource, `default:<name>` for a default, `None` when unset.
pub(crate) fn meta_name(meta: Option<&meta::Metadata>) -> Option<String> {
    match meta.and_then(|m| m.kind.as_ref())? {
        meta::metadata::Kind::Resource(r) => Some(resource_name(r)),
        meta::metadata::Kind::Default(name) => Some(format!("default:{name}")),
    }
}

fn resource_name(r: &meta::Resource) -> String {
    let mut name = if r.namespace.is_empty() {
        r.name.clone()
    } else {
        format!("{}/{}", r.namespace, r.name)
    };
    if r.port != 0 {
        name.push_str(&format!(":{}", r.port));
    }
    name
}
