//! Request deadlines: the route's timeouts and gRPC's `grpc-timeout`, and the answers a
//! request that runs out of time gets (504, or gRPC `DEADLINE_EXCEEDED`).

use super::{PROXY_ERROR, ProxyBody, forward::error};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};
use std::time::Duration;

/// gRPC's `DEADLINE_EXCEEDED`.
const DEADLINE_EXCEEDED: u32 = 4;

/// Whether a request is gRPC (`content-type: application/grpc...`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The `grpc-timeout` header (gRPC over HTTP/2: up to 8 digits and a unit, `H M S m u n`), if
/// it is there and valid. An invalid one is ignored, as gRPC servers do.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The tighter of two optional limits.
pub fn tighter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The answer to a request (`what`: `request`, or one attempt's `response`) that ran out of
/// `after`: 504 with `weft-proxy-error`, or for gRPC a trailers-only `DEADLINE_EXCEEDED`.
pub fn timed_out(grpc: bool, what: &str, after: Duration) -> Response<ProxyBody> {
    let reason = format!("{what} timed out after {after:?}");
    if !grpc {
        return error(StatusCode::GATEWAY_TIMEOUT, &reason);
    }
    grpc_error(DEADLINE_EXCEEDED, &reason)
}

/// A trailers-only gRPC answer with `code`, marked as the proxy's.
pub fn grpc_error(code: u32, reason: &str) -> Response<ProxyBody> {
    let mut rsp = Response::new(Either::Right(Full::new(Bytes::new())));
    let h = rsp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(code));
    if let Ok(v) = HeaderValue::from_str(reason) {
        h.insert("grpc-message", v.clone());
        h.insert(PROXY_ERROR, v);
    }
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(timeout: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "grpc-timeout",
            timeout.parse().expect("a valid header value"),
        );
        h
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let cases = [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("500m", Duration::from_millis(500)),
            ("250u", Duration::from_micros(250)),
            ("99999999n", Duration::from_nanos(99_999_999)),
        ];
        for (text, want) in cases {
            assert_eq!(grpc_timeout(&headers(text)), Some(want), "{text}");
        }
    }

    #[test]
    fn bad_grpc_timeouts_are_ignored() {
        for text in ["", "m", "100", "123456789m", "-1S", "1.5S", "10x", "1 S"] {
            assert_eq!(grpc_timeout(&headers(text)), None, "{text:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn a_timed_out_grpc_call_is_deadline_exceeded() {
        let rsp = timed_out(true, "request", Duration::from_millis(500));
        assert_eq!(rsp.status(), StatusCode::OK);
        assert_eq!(rsp.headers()["grpc-status"], "4");
        assert_eq!(rsp.headers()[PROXY_ERROR], "request timed out after 500ms");
        let rsp = timed_out(false, "response", Duration::from_millis(500));
        assert_eq!(rsp.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(rsp.headers()[PROXY_ERROR], "response timed out after 500ms");
    }
}
