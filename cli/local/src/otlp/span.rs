//! Received spans as plain owned values: ids in hex, attributes in sorted maps, each span
//! carrying its resource and instrumentation scope.

use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    trace::v1::{self as proto, ResourceSpans, span::SpanKind as ProtoKind},
};
use std::{collections::BTreeMap, fmt, time::Duration};

/// One received span, flattened with the resource and scope it was exported under.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The span id, 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id in hex; `None` for a root span (an empty id on the wire).
    pub parent_span_id: Option<String>,
    /// The span's name.
    pub name: String,
    /// Whether it is the server or the client side of a call, or something else.
    pub kind: SpanKind,
    /// When it started, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// When it ended, in nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// The span's attributes (`http.request.method`, `url.path`, ...).
    pub attributes: BTreeMap<String, Value>,
    /// The span's status.
    pub status: Status,
    /// The attributes of the resource that exported it (`service.name`, ...).
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope that made it.
    pub scope: Scope,
}

/// What side of an operation a span describes (OTLP `Span.SpanKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// Not set, or a value this receiver does not know.
    Unspecified,
    /// An operation inside one process.
    Internal,
    /// The server side of a call.
    Server,
    /// The client side of a call.
    Client,
    /// The sending side of an asynchronous message.
    Producer,
    /// The receiving side of an asynchronous message.
    Consumer,
}

/// A span's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Unset, ok or error.
    pub code: StatusCode,
    /// The error message, if any.
    pub message: String,
}

/// A span's status code (OTLP `Status.StatusCode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// Not set (also a value this receiver does not know).
    #[default]
    Unset,
    /// Explicitly ok.
    Ok,
    /// Failed.
    Error,
}

/// The instrumentation scope (library) that produced a span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The scope's name; empty when the exporter sent none.
    pub name: String,
    /// The scope's version; empty when the exporter sent none.
    pub version: String,
}

/// An attribute value (OTLP `AnyValue`).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list of values.
    Array(Vec<Value>),
    /// A nested map.
    Map(BTreeMap<String, Value>),
    /// No value: an `AnyValue` with nothing set (or a form traces do not use).
    Empty,
}

// === impl Span ===

impl Span {
    /// The exporting service: the resource's `service.name`, if it is a string.
    pub fn service_name(&self) -> Option<&str> {
        self.resource.get("service.name").and_then(Value::as_str)
    }

    /// The string attribute `key`, if the span has one.
    pub fn attribute_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// The integer attribute `key`, if the span has one.
    pub fn attribute_int(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_int)
    }

    /// How long it took (zero if it claims to end before it starts).
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nanos.saturating_sub(self.start_unix_nanos))
    }
}

// === impl Value ===

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
            Self::Bytes(b) => f.write_str(&hex(b)),
            Self::Array(values) => {
                let items: Vec<String> = values.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", items.join(", "))
            }
            Self::Map(map) => {
                let items: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", items.join(", "))
            }
            Self::Empty => Ok(()),
        }
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unspecified => "UNSPECIFIED",
            Self::Internal => "INTERNAL",
            Self::Server => "SERVER",
            Self::Client => "CLIENT",
            Self::Producer => "PRODUCER",
            Self::Consumer => "CONSUMER",
        })
    }
}

// === conversion from the wire ===

/// Every span of `resource_spans`, each with its resource and scope.
pub(crate) fn flatten(resource_spans: Vec<ResourceSpans>) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in resource_spans {
        let resource = attributes(rs.resource.map(|r| r.attributes).unwrap_or_default());
        for ss in rs.scope_spans {
            let scope = scope(ss.scope);
            out.extend(
                ss.spans
                    .into_iter()
                    .map(|span| convert(span, &resource, &scope)),
            );
        }
    }
    out
}

fn convert(span: proto::Span, resource: &BTreeMap<String, Value>, scope: &Scope) -> Span {
    let status = span.status.unwrap_or_default();
    Span {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
        name: span.name,
        kind: kind(span.kind),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        attributes: attributes(span.attributes),
        status: Status {
            code: match proto::status::StatusCode::try_from(status.code) {
                Ok(proto::status::StatusCode::Ok) => StatusCode::Ok,
                Ok(proto::status::StatusCode::Error) => StatusCode::Error,
                _ => StatusCode::Unset,
            },
            message: status.message,
        },
        resource: resource.clone(),
        scope: scope.clone(),
    }
}

fn kind(kind: i32) -> SpanKind {
    match ProtoKind::try_from(kind) {
        Ok(ProtoKind::Internal) => SpanKind::Internal,
        Ok(ProtoKind::Server) => SpanKind::Server,
        Ok(ProtoKind::Client) => SpanKind::Client,
        Ok(ProtoKind::Producer) => SpanKind::Producer,
        Ok(ProtoKind::Consumer) => SpanKind::Consumer,
        Ok(ProtoKind::Unspecified) | Err(_) => SpanKind::Unspecified,
    }
}

fn scope(scope: Option<InstrumentationScope>) -> Scope {
    let scope = scope.unwrap_or_default();
    Scope {
        name: scope.name,
        version: scope.version,
    }
}

fn attributes(kvs: Vec<KeyValue>) -> BTreeMap<String, Value> {
    kvs.into_iter()
        .map(|kv| (kv.key, value(kv.value)))
        .collect()
}

fn value(any: Option<AnyValue>) -> Value {
    use any_value::Value as V;
    match any.and_then(|v| v.value) {
        Some(V::StringValue(s)) => Value::String(s),
        Some(V::BoolValue(b)) => Value::Bool(b),
        Some(V::IntValue(i)) => Value::Int(i),
        Some(V::DoubleValue(d)) => Value::Double(d),
        Some(V::BytesValue(b)) => Value::Bytes(b),
        Some(V::ArrayValue(a)) => Value::Array(a.values.into_iter().map(Some).map(value).collect()),
        Some(V::KvlistValue(l)) => Value::Map(attributes(l.values)),
        // String-table indexes belong to the profiles signal; traces carry no table to resolve them.
        Some(V::StringValueStrindex(_)) | None => Value::Empty,
    }
}

/// `bytes` as lowercase hex, two digits a byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}
