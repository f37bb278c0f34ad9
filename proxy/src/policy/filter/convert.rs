//! Filters from the proto, validated.

use super::{
    DEFAULT_REDIRECT_STATUS, Deny, FailureInjector, FailureResponse, Filter, HeaderModifier,
    PathModifier, Redirect,
};
use crate::policy::{At, InvalidPolicy, indexed, required};
use http::{HeaderName, HeaderValue, StatusCode, uri::Authority};
use weft_proto::{grpc_route, http_route, http_types, outbound};

/// An `HttpRoute` filter (on a rule or a backend; the inbound proxy maps its route filters to
/// this message).
pub(crate) fn http(f: outbound::http_route::Filter) -> Result<Filter, InvalidPolicy> {
    use outbound::http_route::filter::Kind;
    Ok(match required(f.kind, "kind")? {
        Kind::RequestHeaderModifier(m) => {
            Filter::RequestHeaders(modifier(m.add, m.set, m.remove).at("request_header_modifier")?)
        }
        Kind::ResponseHeaderModifier(m) => Filter::ResponseHeaders(
            modifier(m.add, m.set, m.remove).at("response_header_modifier")?,
        ),
        Kind::Redirect(r) => Filter::Redirect(redirect(r).at("redirect")?),
        Kind::FailureInjector(f) => {
            let status = status(f.status).at("failure_injector")?;
            let response = FailureResponse::Http(status);
            Filter::FailureInjector(injector(response, f.message, f.ratio).at("failure_injector")?)
        }
    })
}

/// A `GrpcRoute` filter (on a rule or a backend; the inbound proxy maps its route filters to
/// this message).
pub(crate) fn grpc(f: outbound::grpc_route::Filter) -> Result<Filter, InvalidPolicy> {
    use outbound::grpc_route::filter::Kind;
    Ok(match required(f.kind, "kind")? {
        Kind::RequestHeaderModifier(m) => {
            Filter::RequestHeaders(modifier(m.add, m.set, m.remove).at("request_header_modifier")?)
        }
        Kind::FailureInjector(grpc_route::GrpcFailureInjector {
            code,
            message,
            ratio,
        }) => Filter::FailureInjector(
            injector(FailureResponse::Grpc(code), message, ratio).at("failure_injector")?,
        ),
    })
}

/// An `OpaqueRoute` filter (on a route or a backend).
pub(in crate::policy) fn opaque(
    f: outbound::opaque_route::Filter,
) -> Result<Filter, InvalidPolicy> {
    use outbound::opaque_route::filter::Kind;
    Ok(Filter::Deny(match required(f.kind, "kind")? {
        Kind::Forbidden(_) => Deny::Forbidden,
        Kind::Invalid(i) => Deny::Invalid(i.message),
    }))
}

fn modifier(
    add: Option<http_types::Headers>,
    set: Option<http_types::Headers>,
    remove: Vec<String>,
) -> Result<HeaderModifier, InvalidPolicy> {
    let pairs = |headers: Option<http_types::Headers>, field: &str| {
        let headers = headers.map(|h| h.headers).unwrap_or_default();
        indexed(headers, "headers", |h| {
            let name = header_name(&h.name).at("name")?;
            let value = HeaderValue::from_bytes(&h.value).map_err(|_| {
                let shown = String::from_utf8_lossy(&h.value).into_owned();
                InvalidPolicy::value("header value", shown, "visible ASCII or obs-text")
                    .within("value")
            })?;
            Ok((name, value))
        })
        .at(field)
    };
    Ok(HeaderModifier {
        add: pairs(add, "add")?,
        set: pairs(set, "set")?,
        remove: indexed(remove, "remove", |n| header_name(&n))?,
    })
}

fn header_name(name: &str) -> Result<HeaderName, InvalidPolicy> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| InvalidPolicy::value("header name", name, "an HTTP header name"))
}

fn redirect(r: http_route::RequestRedirect) -> Result<Redirect, InvalidPolicy> {
    use http_route::path_modifier::Replace;
    let scheme = r
        .scheme
        .map(|s| {
            let shown = format!("{s:?}");
            http::uri::Scheme::try_from(s)
                .map_err(|_| InvalidPolicy::value("scheme", shown, "http, https or a URI scheme"))
        })
        .transpose()
        .at("scheme")?;
    let host = if r.host.is_empty() {
        None
    } else if Authority::try_from(r.host.as_str()).is_ok_and(|a| a.port().is_none()) {
        Some(r.host)
    } else {
        return Err(InvalidPolicy::value("host", r.host, "a hostname without port").within("host"));
    };
    let port = match r.port {
        0 => None,
        p => Some(
            u16::try_from(p)
                .map_err(|_| InvalidPolicy::value("port", p, "1-65535").within("port"))?,
        ),
    };
    let path = match r.path.and_then(|p| p.replace) {
        None => None,
        Some(Replace::Full(p)) => Some(PathModifier::Full(absolute(p).at("path.full")?)),
        Some(Replace::Prefix(p)) => Some(PathModifier::Prefix(absolute(p).at("path.prefix")?)),
    };
    let status = match r.status {
        0 => DEFAULT_REDIRECT_STATUS,
        s => match status(s)? {
            s if s.is_redirection() => s,
            _ => return Err(InvalidPolicy::value("status", s, "a 3xx status").within("status")),
        },
    };
    Ok(Redirect {
        scheme,
        host,
        port,
        path,
        status,
    })
}

fn absolute(path: String) -> Result<String, InvalidPolicy> {
    if path.starts_with('/') && http::uri::PathAndQuery::try_from(path.as_str()).is_ok() {
        Ok(path)
    } else {
        Err(InvalidPolicy::value(
            "path",
            path,
            "an absolute path like /foo",
        ))
    }
}

fn status(code: u32) -> Result<StatusCode, InvalidPolicy> {
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| InvalidPolicy::value("status", code, "100-999").within("status"))
}

fn injector(
    response: FailureResponse,
    message: String,
    ratio: Option<http_route::Ratio>,
) -> Result<FailureInjector, InvalidPolicy> {
    // No ratio means every request fails.
    let (numerator, denominator) = ratio.map_or((1, 1), |r| (r.numerator, r.denominator));
    if denominator == 0 || numerator > denominator {
        let shown = format!("{numerator}/{denominator}");
        let expected = "numerator <= denominator, denominator > 0";
        return Err(InvalidPolicy::value("ratio", shown, expected).within("ratio"));
    }
    Ok(FailureInjector {
        response,
        message,
        numerator,
        denominator,
    })
}
