//! What an app forwards of the request it serves, and the trace id read from W3C and B3.

use crate::otlp::{forward_trace_headers, trace_id};
use http::{HeaderMap, HeaderName, HeaderValue};

#[test]
fn forward_trace_headers_copies_every_value_of_the_trace_headers_only() {
    let mut from = HeaderMap::new();
    for (name, value) in [
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("tracestate", "a=1"),
        ("tracestate", "b=2"),
        ("x-b3-sampled", "1"),
        ("authorization", "Bearer secret"),
    ] {
        from.append(name, HeaderValue::from_static(value));
    }
    let call = forward_trace_headers(&from, http::Request::get("http://web/"))
        .body(())
        .expect("a request");
    let sent = call.headers();
    for name in ["traceparent", "tracestate", "x-b3-sampled"] {
        let sent: Vec<_> = sent.get_all(name).iter().collect();
        let got: Vec<_> = from.get_all(name).iter().collect();
        assert_eq!(sent, got, "{name}");
    }
    assert!(!sent.contains_key("authorization"));
}

#[test]
fn the_trace_id_comes_from_traceparent_then_b3() {
    let headers = |pairs: &[(&'static str, &'static str)]| -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    };
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    for (pairs, expected) in [
        (
            &[
                (
                    "traceparent",
                    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                ),
                ("x-b3-traceid", "ffffffffffffffffffffffffffffffff"),
            ][..],
            Some(id),
        ),
        (&[("x-b3-traceid", id), ("b3", "ff-ff-1")][..], Some(id)),
        (
            &[("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1")][..],
            Some(id),
        ),
        (&[("traceparent", "garbage")][..], None),
        (&[][..], None),
    ] {
        assert_eq!(trace_id(&headers(pairs)).as_deref(), expected, "{pairs:?}");
    }
}
