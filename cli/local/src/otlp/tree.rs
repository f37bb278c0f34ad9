//! Spans grouped into traces, each a tree of parent and child spans, and a text rendering of
//! one trace for the demo and for test failures.

use super::span::{Span, StatusCode};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write,
    time::Duration,
};

/// The spans of one trace id, as trees.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The trace id, in hex.
    pub trace_id: String,
    /// Its root spans, earliest first: the real root, and every span whose parent was not
    /// received (flagged [`Node::orphan`]).
    pub roots: Vec<Node>,
}

/// A span and the spans it is the parent of.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The span.
    pub span: Span,
    /// Whether the span names a parent that is not in the trace (not received yet, dropped,
    /// or part of a cycle of parent links), so it stands as a root instead.
    pub orphan: bool,
    /// Its children, earliest first.
    pub children: Vec<Node>,
}

// === impl Trace ===

impl Trace {
    /// Every span of the trace, depth first, parents before their children.
    pub fn spans(&self) -> Vec<&Span> {
        fn walk<'a>(node: &'a Node, out: &mut Vec<&'a Span>) {
            out.push(&node.span);
            for child in &node.children {
                walk(child, out);
            }
        }
        let mut out = Vec::new();
        for root in &self.roots {
            walk(root, &mut out);
        }
        out
    }

    /// How many spans it holds.
    pub fn span_count(&self) -> usize {
        self.spans().len()
    }

    /// When its earliest span started, in nanoseconds since the Unix epoch (0 when empty).
    pub fn start_unix_nanos(&self) -> u64 {
        self.spans()
            .iter()
            .map(|s| s.start_unix_nanos)
            .min()
            .unwrap_or(0)
    }

    /// From the start of its earliest span to the end of its latest.
    pub fn duration(&self) -> Duration {
        let end = self.spans().iter().map(|s| s.end_unix_nanos).max();
        let nanos = end.unwrap_or(0).saturating_sub(self.start_unix_nanos());
        Duration::from_nanos(nanos)
    }
}

/// Groups `spans` by trace id and links each to its parent. Traces come earliest first (by
/// trace id when they start at once), and so do the roots and children within each.
pub fn traces(spans: &[Span]) -> Vec<Trace> {
    let mut by_trace: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
    for span in spans {
        by_trace.entry(&span.trace_id).or_default().push(span);
    }
    let mut traces: Vec<Trace> = by_trace
        .into_iter()
        .map(|(trace_id, spans)| build(trace_id, spans))
        .collect();
    traces.sort_by_key(Trace::start_unix_nanos);
    traces
}

/// The tree of one trace's spans.
fn build(trace_id: &str, mut spans: Vec<&Span>) -> Trace {
    // By start, then by id, so that equal start times still give one order.
    spans.sort_by(|a, b| (a.start_unix_nanos, &a.span_id).cmp(&(b.start_unix_nanos, &b.span_id)));
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        if let Some(parent) = &span.parent_span_id {
            children.entry(parent).or_default().push(i);
        }
    }
    let mut linker = Linker {
        spans: &spans,
        children,
        used: vec![false; spans.len()],
    };
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match &span.parent_span_id {
            None => roots.push(linker.node(i, false)),
            Some(parent) if !ids.contains(parent.as_str()) => roots.push(linker.node(i, true)),
            Some(_) => {}
        }
    }
    // Spans still unplaced have parents, but no chain of them reaches a root: a cycle.
    for i in 0..spans.len() {
        if !linker.used[i] {
            roots.push(linker.node(i, true));
        }
    }
    roots.sort_by_key(|n| n.span.start_unix_nanos);
    Trace {
        trace_id: trace_id.to_string(),
        roots,
    }
}

/// Builds nodes from spans sorted by start time, each span placed once.
struct Linker<'a> {
    spans: &'a [&'a Span],
    /// The indexes of the spans naming each parent id, in start order.
    children: HashMap<&'a str, Vec<usize>>,
    used: Vec<bool>,
}

impl Linker<'_> {
    fn node(&mut self, i: usize, orphan: bool) -> Node {
        self.used[i] = true;
        let span = self.spans[i];
        let mut children = Vec::new();
        // A span id sent twice gets its children under its first copy only.
        let candidates = self
            .children
            .remove(span.span_id.as_str())
            .unwrap_or_default();
        for j in candidates {
            if !self.used[j] {
                children.push(self.node(j, false));
            }
        }
        Node {
            span: span.clone(),
            orphan,
            children,
        }
    }
}

// === rendering ===

/// `trace` as an indented tree: one line a span with its service, kind, request and duration.
///
/// ```text
/// trace 4bf92f3577b34da6a3ce929d0e0e4736 (2 spans, 2.31 ms)
/// └─ client.shop  CLIENT  GET /chain -> 200   2.31 ms
///    └─ web-v1.shop  SERVER  GET /chain -> 200   1.80 ms
/// ```
pub fn render(trace: &Trace) -> String {
    let count = trace.span_count();
    let mut out = format!(
        "trace {} ({count} span{}, {})\n",
        trace.trace_id,
        if count == 1 { "" } else { "s" },
        millis(trace.duration()),
    );
    let last = trace.roots.len().saturating_sub(1);
    for (i, root) in trace.roots.iter().enumerate() {
        render_node(root, "", i == last, &mut out);
    }
    out
}

fn render_node(node: &Node, prefix: &str, last: bool, out: &mut String) {
    let span = &node.span;
    let branch = if last { "└─ " } else { "├─ " };
    let service = span.service_name().unwrap_or("unknown_service");
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{prefix}{branch}{service}  {}  {}",
        span.kind,
        request(span)
    );
    if span.status.code == StatusCode::Error {
        out.push_str("  ERROR");
        if !span.status.message.is_empty() {
            let _ = write!(out, " {}", span.status.message);
        }
    }
    if let (true, Some(parent)) = (node.orphan, &span.parent_span_id) {
        let _ = write!(out, "  (parent {parent} missing)");
    }
    let _ = writeln!(out, "   {}", millis(span.duration()));
    let prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    let last_child = node.children.len().saturating_sub(1);
    for (i, child) in node.children.iter().enumerate() {
        render_node(child, &prefix, i == last_child, out);
    }
}

/// `GET /path -> 200` from the HTTP attributes, or the span's name without them.
fn request(span: &Span) -> String {
    let method = span.attribute_str("http.request.method");
    let path = span.attribute_str("url.path");
    let mut text = match (method, path) {
        (Some(method), Some(path)) => format!("{method} {path}"),
        _ => span.name.clone(),
    };
    if let Some(status) = span.attributes.get("http.response.status_code") {
        let _ = write!(text, " -> {status}");
    }
    text
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
