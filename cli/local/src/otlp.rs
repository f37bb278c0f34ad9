//! An OpenTelemetry trace collector for local mode: proxies export spans over OTLP/gRPC to a
//! [`Receiver`] in the demo's or a test's process, which keeps them in memory; [`traces`]
//! joins them into trees across hops and [`render`] prints one; [`relay`] forwards what it
//! kept to another collector, such as Jaeger.
//!
//! The receiver speaks the official `opentelemetry.proto.collector.trace.v1.TraceService`
//! (from the `opentelemetry-proto` crate), uncompressed, so any OTLP/gRPC exporter can talk to
//! it. It can be stopped and resumed on the same address, and slowed down, to test how an
//! exporter copes with a collector that is down or lagging.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_cli_local::otlp::{Receiver, render, traces};
//! let receiver = Receiver::start("127.0.0.1:0".parse()?)?;
//! // ... point an exporter at `receiver.endpoint()` and send a request ...
//! let spans = receiver.wait_for(|s| s.len() >= 4, std::time::Duration::from_secs(5))?;
//! for trace in traces(&spans) {
//!     print!("{}", render(&trace));
//! }
//! # Ok(())
//! # }
//! ```

mod receiver;
mod relay;
mod server;
mod span;
mod tree;

#[cfg(test)]
mod tests;

pub use receiver::{Receiver, ReceiverError, WaitError};
pub use relay::{BadCollectorAddr, CollectorAddr, RelayError, Relayed, relay};
pub use span::{Scope, Span, SpanKind, Status, StatusCode, Value};
pub use tree::{Node, Trace, render, traces};

/// The port OTLP/gRPC collectors listen on by convention, and the receiver in an `otel` pod of
/// the demo, the end-to-end tests and the benchmarks.
pub const PORT: u16 = 4317;

/// The trace headers an instrumented app copies from the request it serves onto the calls it
/// makes, so the proxies on both sides join one trace: W3C, and B3 single and multi header.
pub const TRACE_HEADERS: [&str; 7] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
];

/// Copies every value of each of the [`TRACE_HEADERS`] in `from` (the request an app serves)
/// onto `to` (a call it makes), and nothing else.
pub fn forward_trace_headers(
    from: &http::HeaderMap,
    mut to: http::request::Builder,
) -> http::request::Builder {
    for name in TRACE_HEADERS {
        for value in from.get_all(name) {
            to = to.header(name, value);
        }
    }
    to
}

/// The trace id of the context a request carries, in lower case: W3C `traceparent` first, then
/// B3 (`x-b3-traceid`, then single-header `b3`). `None` without one, or if the first of those
/// present has no trace id.
pub fn trace_id(headers: &http::HeaderMap) -> Option<String> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let id = if let Some(traceparent) = header("traceparent") {
        traceparent.split('-').nth(1)?
    } else if let Some(id) = header("x-b3-traceid") {
        id
    } else {
        header("b3")?.split('-').next()?
    };
    Some(id.to_ascii_lowercase())
}
