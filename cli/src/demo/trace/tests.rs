//! What the tracing step accepts as the trace of client → web → backend, and what it refuses.

use super::hops;
use std::collections::BTreeMap;
use weft_cli_local::otlp::{Scope, Span, SpanKind, Status, Value, traces};

/// Span `id` of `service`, child of `parent`, answering `path` with 200.
fn span(id: &str, parent: Option<&str>, service: &str, kind: SpanKind, path: &str) -> Span {
    let text = |v: &str| Value::String(v.to_string());
    let start = 1_700_000_000_000_000_000 + u64::from(id.as_bytes()[0]);
    Span {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: id.repeat(16),
        parent_span_id: parent.map(|p| p.repeat(16)),
        name: format!("GET {path}"),
        kind,
        start_unix_nanos: start,
        end_unix_nanos: start + 1000,
        attributes: BTreeMap::from([
            ("url.path".to_string(), text(path)),
            ("http.response.status_code".to_string(), Value::Int(200)),
        ]),
        status: Status::default(),
        resource: BTreeMap::from([("service.name".to_string(), text(service))]),
        scope: Scope::default(),
    }
}

fn chain() -> Vec<Span> {
    vec![
        span("1", None, "client.shop", SpanKind::Client, "/checkout"),
        span("2", Some("1"), "web-v2.shop", SpanKind::Server, "/checkout"),
        span("3", Some("2"), "web-v2.shop", SpanKind::Client, "/"),
        span("4", Some("3"), "web-v1.shop", SpanKind::Server, "/"),
    ]
}

fn check(spans: &[Span]) -> Result<(String, String), String> {
    let [trace] = traces(spans).try_into().map_err(|_| "not one trace")?;
    hops(&trace).map(|h| (h.web, h.backend))
}

#[test]
fn four_hops_through_either_web_pod_are_the_trace() {
    assert_eq!(check(&chain()), Ok(("web-v2".into(), "web-v1".into())));
    let mut other_way = chain();
    for (s, service) in other_way
        .iter_mut()
        .zip(["client", "web-v1", "web-v1", "web-v2"])
    {
        s.resource.insert(
            "service.name".into(),
            Value::String(format!("{service}.shop")),
        );
    }
    assert_eq!(check(&other_way), Ok(("web-v1".into(), "web-v2".into())));
}

#[test]
fn a_missing_misparented_or_failed_hop_is_refused() {
    let mut short = chain();
    short.pop();
    let err = check(&short).expect_err("the backend's span is missing");
    assert!(err.contains("expected"), "{err}");

    let mut orphan = chain();
    orphan.remove(0);
    let err = check(&orphan).expect_err("the client's span is missing");
    assert!(err.contains("parent is missing"), "{err}");

    let mut twins = chain();
    twins[3].parent_span_id = Some("2".repeat(16));
    let err = check(&twins).expect_err("the backend's span hangs off the server span");
    assert!(err.contains("2 children"), "{err}");

    let mut wrong_kind = chain();
    wrong_kind[2].kind = SpanKind::Internal;
    assert!(check(&wrong_kind).is_err());

    let mut failed = chain();
    failed[3]
        .attributes
        .insert("http.response.status_code".into(), Value::Int(503));
    let err = check(&failed).expect_err("the backend failed");
    assert!(err.contains("did not answer 200"), "{err}");
}
