//! Traces built from hand-made spans, and their exact rendering.

use crate::otlp::{Span, SpanKind, Status, StatusCode, Value, render, traces};
use std::collections::BTreeMap;

const T0: u64 = 1_700_000_000_000_000_000;

/// Span `id` of trace `trace` in `service`, child of `parent`, `start_us` after [`T0`] and
/// lasting `micros`, for `method path -> status` when `http` is given.
fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    (service, kind): (&str, SpanKind),
    (start_us, micros): (u64, u64),
    http: Option<(&str, &str, i64)>,
) -> Span {
    let mut attributes = BTreeMap::new();
    if let Some((method, path, status)) = http {
        let s = |v: &str| Value::String(v.to_string());
        attributes.insert("http.request.method".to_string(), s(method));
        attributes.insert("url.path".to_string(), s(path));
        attributes.insert("http.response.status_code".to_string(), Value::Int(status));
    }
    Span {
        trace_id: trace.to_string(),
        span_id: id.to_string(),
        parent_span_id: parent.map(str::to_string),
        name: format!("{kind} span {id}"),
        kind,
        start_unix_nanos: T0 + start_us * 1000,
        end_unix_nanos: T0 + (start_us + micros) * 1000,
        attributes,
        status: Status::default(),
        resource: BTreeMap::from([(
            "service.name".to_string(),
            Value::String(service.to_string()),
        )]),
        scope: Default::default(),
    }
}

const A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const B: &str = "0af7651916cd43dd8448eb211c80319c";

/// The four hops of a call from the client through web-v1 to web-v2, given out of order.
fn chain() -> Vec<Span> {
    use SpanKind::{Client, Server};
    vec![
        span(
            A,
            "03",
            Some("02"),
            ("web-v1.shop", Client),
            (900, 620),
            Some(("GET", "/", 200)),
        ),
        span(
            A,
            "01",
            None,
            ("client.shop", Client),
            (0, 2310),
            Some(("GET", "/chain", 200)),
        ),
        span(
            A,
            "04",
            Some("03"),
            ("web-v2.shop", Server),
            (1050, 310),
            Some(("GET", "/", 200)),
        ),
        span(
            A,
            "02",
            Some("01"),
            ("web-v1.shop", Server),
            (250, 1800),
            Some(("GET", "/chain", 200)),
        ),
    ]
}

#[test]
fn a_chain_of_hops_is_one_tree() {
    let traces = traces(&chain());
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    assert_eq!(trace.trace_id, A);
    assert_eq!(trace.span_count(), 4);
    assert!(!trace.roots.iter().any(|root| root.orphan));
    let ids: Vec<&str> = trace.spans().iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids, ["01", "02", "03", "04"]);
    assert_eq!(trace.roots.len(), 1);
    assert_eq!(
        trace.roots[0].children[0].children[0].children[0]
            .span
            .span_id,
        "04"
    );
    assert_eq!(trace.duration().as_micros(), 2310);
}

#[test]
fn renders_a_chain_exactly() {
    let expected = "\
trace 4bf92f3577b34da6a3ce929d0e0e4736 (4 spans, 2.31 ms)
└─ client.shop  CLIENT  GET /chain -> 200   2.31 ms
   └─ web-v1.shop  SERVER  GET /chain -> 200   1.80 ms
      └─ web-v1.shop  CLIENT  GET / -> 200   0.62 ms
         └─ web-v2.shop  SERVER  GET / -> 200   0.31 ms
";
    assert_eq!(render(&traces(&chain())[0]), expected);
}

#[test]
fn children_come_in_start_order_and_traces_earliest_first() {
    use SpanKind::{Client, Internal, Server};
    let spans = vec![
        span(B, "b2", Some("b1"), ("web", Client), (600, 100), None),
        span(A, "a1", None, ("client", Client), (100, 50), None),
        span(B, "b3", Some("b1"), ("web", Internal), (300, 100), None),
        span(B, "b1", None, ("web", Server), (0, 1000), None),
    ];
    let traces = traces(&spans);
    let ids: Vec<&str> = traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids, [B, A], "trace B starts first");
    let children: Vec<&str> = traces[0].roots[0]
        .children
        .iter()
        .map(|n| n.span.span_id.as_str())
        .collect();
    assert_eq!(children, ["b3", "b2"]);
}

#[test]
fn spans_whose_parent_is_missing_are_flagged_roots() {
    use SpanKind::{Client, Server};
    let spans = vec![
        span(A, "01", None, ("client", Client), (0, 1000), None),
        span(A, "05", Some("04"), ("web-v2", Server), (300, 200), None),
        span(A, "06", Some("05"), ("web-v2", Client), (350, 100), None),
    ];
    let trace = &traces(&spans)[0];
    assert!(trace.roots.iter().any(|root| root.orphan));
    let roots: Vec<(&str, bool)> = trace
        .roots
        .iter()
        .map(|n| (n.span.span_id.as_str(), n.orphan))
        .collect();
    assert_eq!(roots, [("01", false), ("05", true)]);
    assert_eq!(trace.roots[1].children[0].span.span_id, "06");
    assert!(!trace.roots[1].children[0].orphan);
}

#[test]
fn cycles_and_repeated_span_ids_lose_no_span() {
    use SpanKind::Server;
    let spans = vec![
        span(A, "01", Some("02"), ("web", Server), (0, 10), None),
        span(A, "02", Some("01"), ("web", Server), (5, 10), None),
        span(B, "01", None, ("web", Server), (0, 10), None),
        span(B, "01", None, ("web", Server), (0, 10), None),
        span(B, "02", Some("01"), ("web", Server), (2, 5), None),
    ];
    let traces = traces(&spans);
    let counts: Vec<(&str, usize)> = traces
        .iter()
        .map(|t| (t.trace_id.as_str(), t.span_count()))
        .collect();
    assert_eq!(counts, [(B, 3), (A, 2)], "equal starts: by trace id");
    let cycle = traces.iter().find(|t| t.trace_id == A).expect("trace A");
    assert_eq!(cycle.roots.len(), 1);
    assert!(cycle.roots[0].orphan, "a cycle has no true root");
}

#[test]
fn renders_branches_orphans_errors_and_missing_attributes() {
    use SpanKind::{Client, Internal, Server};
    let mut failed = span(B, "03", Some("01"), ("web", Client), (400, 1250), None);
    failed.status = Status {
        code: StatusCode::Error,
        message: "connection refused".to_string(),
    };
    let mut anonymous = span(B, "04", Some("01"), ("web", Internal), (1700, 5), None);
    anonymous.resource.clear();
    let spans = vec![
        span(
            B,
            "01",
            None,
            ("web", Server),
            (0, 2000),
            Some(("POST", "/cart", 503)),
        ),
        span(B, "02", Some("03"), ("db", Server), (500, 100), None),
        failed,
        anonymous,
        span(
            B,
            "06",
            Some("05"),
            ("cache", Server),
            (2500, 500),
            Some(("GET", "/k", 200)),
        ),
    ];
    let expected = "\
trace 0af7651916cd43dd8448eb211c80319c (5 spans, 3.00 ms)
├─ web  SERVER  POST /cart -> 503   2.00 ms
│  ├─ web  CLIENT  CLIENT span 03  ERROR connection refused   1.25 ms
│  │  └─ db  SERVER  SERVER span 02   0.10 ms
│  └─ unknown_service  INTERNAL  INTERNAL span 04   0.01 ms
└─ cache  SERVER  GET /k -> 200  (parent 05 missing)   0.50 ms
";
    assert_eq!(render(&traces(&spans)[0]), expected);
}

#[test]
fn a_lone_span_says_span() {
    let spans = [span(A, "01", None, ("web", SpanKind::Server), (0, 1), None)];
    let text = render(&traces(&spans)[0]);
    assert!(
        text.starts_with(&format!("trace {A} (1 span, 0.00 ms)\n")),
        "{text}"
    );
}
