//! Route and backend filters: header changes, redirects, injected failures.

pub(super) mod convert;
mod redirect;
#[cfg(test)]
mod tests;

use http::{
    HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Uri, header, request, uri::Scheme,
};

/// The redirect status when the controller sends none: the proto says 301 (Gateway API's own
/// default, 302, is filled in by the API server before the controller sees the route).
pub const DEFAULT_REDIRECT_STATUS: StatusCode = StatusCode::MOVED_PERMANENTLY;

/// Something a route or backend does to requests or responses.
#[derive(Clone, Debug)]
pub enum Filter {
    /// Change request headers.
    RequestHeaders(HeaderModifier),
    /// Change response headers.
    ResponseHeaders(HeaderModifier),
    /// Answer with a redirect instead of forwarding.
    Redirect(Redirect),
    /// Answer some requests with an error instead of forwarding.
    FailureInjector(FailureInjector),
    /// The controller refuses this traffic (opaque routes' `Forbidden` and `Invalid`).
    Deny(Deny),
}

/// Header changes, applied in the proto's order: add, then set, then remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderModifier {
    /// Appended, keeping existing values.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Replacing any existing values.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Removed.
    pub remove: Vec<HeaderName>,
}

/// A redirect; each part not set is taken from the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The new scheme.
    pub scheme: Option<Scheme>,
    /// The new host.
    pub host: Option<String>,
    /// The new port; when unset, a new scheme implies its well-known port, else the request's.
    pub port: Option<u16>,
    /// How the path changes.
    pub path: Option<PathModifier>,
    /// The response status (3xx).
    pub status: StatusCode,
}

/// How a redirect changes the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathModifier {
    /// Replace the whole path (and the query, if this has one).
    Full(String),
    /// Replace the prefix that matched; only valid when the rule matched by prefix.
    Prefix(String),
}

/// Fails a share of requests with a fixed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureInjector {
    /// The response to fail with.
    pub response: FailureResponse,
    /// Why, for the response and the logs.
    pub message: String,
    /// Fail `numerator` in `denominator` requests.
    pub numerator: u32,
    /// Not zero.
    pub denominator: u32,
}

/// The failure an injector answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureResponse {
    /// An HTTP status.
    Http(StatusCode),
    /// A gRPC status code, sent in a trailers-only response.
    Grpc(u32),
}

/// Why the controller refuses traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deny {
    /// Traffic to this route is not allowed.
    Forbidden,
    /// The route is misconfigured; the message says how.
    Invalid(String),
}

/// A response the proxy sends itself instead of forwarding the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Synthetic {
    /// A redirect.
    Redirect {
        /// A 3xx status.
        status: StatusCode,
        /// The `Location`.
        location: Uri,
    },
    /// An HTTP error.
    Failure {
        /// The status.
        status: StatusCode,
        /// The reason, sent in `weft-proxy-error`.
        message: String,
    },
    /// A gRPC error (HTTP 200, trailers-only).
    GrpcFailure {
        /// The `grpc-status` code.
        code: u32,
        /// The `grpc-message`.
        message: String,
    },
}

/// Applies request filters in order. Header changes edit `parts`; a redirect, an injected
/// failure or a denial stops there and returns the response to send instead. A redirect that
/// replaces a prefix needs the matched prefix: use [`super::RouteMatch::apply_request`] for a
/// rule's filters.
pub fn apply_request(filters: &[Filter], parts: &mut request::Parts) -> Result<(), Synthetic> {
    apply_request_matched(filters, None, parts)
}

pub(super) fn apply_request_matched(
    filters: &[Filter],
    prefix: Option<&str>,
    parts: &mut request::Parts,
) -> Result<(), Synthetic> {
    for filter in filters {
        match filter {
            Filter::RequestHeaders(m) => m.apply(&mut parts.headers),
            Filter::ResponseHeaders(_) => {}
            Filter::Redirect(r) => return Err(r.respond(prefix, &parts.uri, &parts.headers)),
            Filter::FailureInjector(f) => {
                if f.sample_with(&mut fastrand::Rng::new()) {
                    return Err(f.synthetic());
                }
            }
            Filter::Deny(d) => return Err(d.synthetic()),
        }
    }
    Ok(())
}

/// Applies response header filters in order.
pub fn apply_response(filters: &[Filter], headers: &mut HeaderMap) {
    for filter in filters {
        if let Filter::ResponseHeaders(m) = filter {
            m.apply(headers);
        }
    }
}

/// The first denial among `filters`: an opaque connection meeting one is closed.
pub fn denied(filters: &[Filter]) -> Option<&Deny> {
    filters.iter().find_map(|f| match f {
        Filter::Deny(d) => Some(d),
        _ => None,
    })
}

// === impl HeaderModifier ===

impl HeaderModifier {
    /// Applies the changes to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.add {
            headers.append(name, value.clone());
        }
        for (name, value) in &self.set {
            headers.insert(name, value.clone());
        }
        for name in &self.remove {
            headers.remove(name);
        }
    }
}

// === impl FailureInjector ===

impl FailureInjector {
    /// Whether this request fails, drawing from `rng`.
    pub fn sample_with(&self, rng: &mut fastrand::Rng) -> bool {
        if self.denominator == 0 {
            return false;
        }
        self.numerator >= self.denominator || rng.u32(..self.denominator) < self.numerator
    }

    /// The response a failed request gets.
    pub fn synthetic(&self) -> Synthetic {
        let message = self.message.clone();
        match self.response {
            FailureResponse::Http(status) => Synthetic::Failure { status, message },
            FailureResponse::Grpc(code) => Synthetic::GrpcFailure { code, message },
        }
    }
}

impl Deny {
    fn synthetic(&self) -> Synthetic {
        match self {
            Self::Forbidden => Synthetic::Failure {
                status: StatusCode::FORBIDDEN,
                message: "forbidden by route".to_string(),
            },
            Self::Invalid(why) => Synthetic::Failure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("invalid route: {why}"),
            },
        }
    }
}

// === impl Synthetic ===

impl Synthetic {
    /// The response, with an empty body: redirects carry `Location`, HTTP errors
    /// `weft-proxy-error`, gRPC errors `grpc-status` and `grpc-message` (trailers-only).
    pub fn to_response(&self) -> Response<()> {
        let mut rsp = Response::new(());
        let headers = rsp.headers_mut();
        let status = match self {
            Self::Redirect { status, location } => {
                if let Ok(v) = HeaderValue::try_from(location.to_string()) {
                    headers.insert(header::LOCATION, v);
                }
                *status
            }
            Self::Failure { status, message } => {
                headers.insert(crate::http::PROXY_ERROR, header_text(message));
                *status
            }
            Self::GrpcFailure { code, message } => {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                headers.insert("grpc-status", HeaderValue::from(*code));
                headers.insert("grpc-message", header_text(message));
                StatusCode::OK
            }
        };
        *rsp.status_mut() = status;
        rsp
    }
}

/// Text as a header value, percent-encoding what a header cannot carry (and `%` itself, as
/// `grpc-message` requires).
fn header_text(text: &str) -> HeaderValue {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (b' '..=b'~').contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::try_from(out).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
