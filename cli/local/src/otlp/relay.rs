//! Relaying what a receiver kept to another OTLP/gRPC collector (Jaeger, an OpenTelemetry
//! Collector). Local-mode pods have no route to the host, so the process that owns the
//! receiver forwards the exports, unchanged, from its own network namespace.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, trace_service_client::TraceServiceClient,
};
use std::{fmt, io, str::FromStr, time::Duration};
use tonic::transport::Endpoint;

/// Spans sent in one relayed export at most, as a proxy batches them: far below the 4 MiB a
/// collector accepts by default.
const BATCH_SPANS: usize = 512;

/// An OTLP/gRPC collector's address, parsed from `HOST:PORT` or `http://HOST:PORT`; it displays
/// as the URL a client dials, `http://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorAddr {
    /// `http://HOST:PORT`.
    uri: String,
}

/// A collector address that is not `HOST:PORT` or `http://HOST:PORT`.
#[derive(Debug, thiserror::Error)]
#[error(
    "{text:?} is not an OTLP/gRPC collector address ({reason}); expected HOST:PORT or \
     http://HOST:PORT, such as 127.0.0.1:4317"
)]
pub struct BadCollectorAddr {
    /// What was given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// What a relay sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relayed {
    /// Spans sent and accepted.
    pub spans: usize,
    /// `Export` calls they took.
    pub exports: usize,
}

/// Why a relay did not send everything.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// No runtime could be made to run the client on.
    #[error("cannot start a runtime to relay spans: {0}")]
    Runtime(#[source] io::Error),
    /// The collector could not be connected to.
    #[error("cannot reach the OTLP/gRPC collector at {to} within {after:?}: {reason}")]
    Unreachable {
        /// The collector.
        to: CollectorAddr,
        /// The connect timeout.
        after: Duration,
        /// Why, with every cause (e.g. `connection refused`).
        reason: String,
    },
    /// The collector answered an export with an error (or stopped answering).
    #[error(
        "the OTLP/gRPC collector at {to} failed an export after {} spans were relayed: {code:?} {message}",
        relayed.spans
    )]
    Failed {
        /// The collector.
        to: CollectorAddr,
        /// What was sent and accepted before.
        relayed: Relayed,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
}

// === impl CollectorAddr ===

impl FromStr for CollectorAddr {
    type Err = BadCollectorAddr;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason| BadCollectorAddr {
            text: text.to_string(),
            reason,
        };
        if text.starts_with("https://") {
            return Err(bad("TLS to the collector is not supported"));
        }
        let bare = text.strip_prefix("http://").unwrap_or(text);
        let bare = bare.strip_suffix('/').unwrap_or(bare);
        let Some((host, port)) = bare.rsplit_once(':') else {
            return Err(bad("no port"));
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            return Err(bad("no host, or a path after it"));
        }
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(bad("the port is not a number from 1 to 65535"));
        }
        let uri = format!("http://{bare}");
        // The check above leaves little to reject, but tonic must take it too.
        Endpoint::from_shared(uri.clone()).map_err(|_| bad("not a valid URL"))?;
        Ok(Self { uri })
    }
}

impl fmt::Display for CollectorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

// === relay ===

/// Sends the spans of `requests` (e.g. [`super::Receiver::raw_requests`]) to the collector at
/// `to`, resources and scopes unchanged, up to [`BATCH_SPANS`] spans an export. `timeout`
/// bounds the connect and each export.
///
/// It blocks the calling thread on a runtime of its own, so it must not be called from inside
/// an async runtime; it dials from the calling thread's network namespace.
pub fn relay(
    requests: &[ExportTraceServiceRequest],
    to: &CollectorAddr,
    timeout: Duration,
) -> Result<Relayed, RelayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RelayError::Runtime)?;
    runtime.block_on(send(batches(requests), to, timeout))
}

async fn send(
    batches: Vec<(ExportTraceServiceRequest, usize)>,
    to: &CollectorAddr,
    timeout: Duration,
) -> Result<Relayed, RelayError> {
    let unreachable = |e: &dyn std::error::Error| RelayError::Unreachable {
        to: to.clone(),
        after: timeout,
        reason: causes(e),
    };
    let endpoint = Endpoint::from_shared(to.uri.clone())
        .map_err(|e| unreachable(&e))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint.connect().await.map_err(|e| unreachable(&e))?;
    let mut client = TraceServiceClient::new(channel);
    let mut relayed = Relayed::default();
    for (request, spans) in batches {
        if let Err(status) = client.export(request).await {
            return Err(RelayError::Failed {
                to: to.clone(),
                relayed,
                code: status.code(),
                message: status.message().to_string(),
            });
        }
        relayed.spans += spans;
        relayed.exports += 1;
    }
    Ok(relayed)
}

/// `requests` merged in order into exports of at most [`BATCH_SPANS`] spans (a larger
/// request goes alone), each with its span count.
fn batches(requests: &[ExportTraceServiceRequest]) -> Vec<(ExportTraceServiceRequest, usize)> {
    let mut out: Vec<(ExportTraceServiceRequest, usize)> = Vec::new();
    for request in requests {
        let spans = span_count(request);
        if spans == 0 {
            continue;
        }
        match out.last_mut() {
            Some((batch, n)) if *n + spans <= BATCH_SPANS => {
                batch
                    .resource_spans
                    .extend(request.resource_spans.iter().cloned());
                *n += spans;
            }
            _ => out.push((request.clone(), spans)),
        }
    }
    out
}

fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// `e` and its sources, `: `-separated (tonic's own message is only "transport error"),
/// skipping a source that says what the one before it said.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if said != last {
            text.push_str(": ");
            text.push_str(&said);
        }
        last = said;
        source = cause.source();
    }
    text
}
