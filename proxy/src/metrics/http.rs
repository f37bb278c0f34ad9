//! HTTP request metrics: `request_total`, `response_total` and `response_latency_ms`, labelled
//! by what a request turned out to be — its service, route, backend and the identity at the
//! other end — never by raw paths or hosts, so the number of series stays bounded by the
//! mesh's configuration.

use super::{Direction, Shared};
use crate::http::notes::Notes;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use std::sync::{Arc, Mutex};

/// Labels of requests and latencies.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// inbound | outbound.
    pub direction: Direction,
    /// Where the proxy forwards to: the original destination.
    pub target_addr: Shared,
    /// Outbound: the service called; inbound: the Server that took the request.
    pub dst_service: Shared,
    /// The route that took the request (empty: none did).
    pub route: Shared,
    /// Outbound: the backend the request went to.
    pub dst_backend: Shared,
    /// Whether the hop to (outbound) or from (inbound) the other proxy was mesh TLS.
    pub tls: bool,
    /// Inbound: the meshed client's identity.
    pub client_id: Shared,
    /// Outbound: the identity the endpoint proved.
    pub server_id: Shared,
}

/// Labels of a response: the request's, plus what came back.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    /// The request's labels.
    #[prometheus(flatten)]
    pub request: RequestLabels,
    /// The HTTP status, 0 when no response came.
    pub status_code: u16,
    /// success | failure (5xx, a gRPC error status, or no response).
    pub classification: &'static str,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// Latency buckets in milliseconds: fine below 10 ms where the proxy's own cost shows.
const LATENCY_MS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 300.0, 500.0, 1_000.0,
    2_000.0, 5_000.0, 10_000.0, 30_000.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_MS.iter().copied())
}

/// The three HTTP families.
#[derive(Clone, Debug)]
pub(super) struct HttpFamilies {
    requests: Family<RequestLabels, Counter>,
    responses: Family<ResponseLabels, Counter>,
    latency: HistogramFamily,
}

impl HttpFamilies {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let f = Self {
            requests: Family::default(),
            responses: Family::default(),
            latency: HistogramFamily::new_with_constructor(latency_histogram),
        };
        registry.register("request", "HTTP requests received", f.requests.clone());
        registry.register("response", "HTTP responses sent", f.responses.clone());
        registry.register(
            "response_latency_ms",
            "Time to response headers, in milliseconds",
            f.latency.clone(),
        );
        f
    }
}

/// One HTTP connection's metrics: what all its requests share, and the series its last
/// request used, which the next one usually uses too.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    families: HttpFamilies,
    conn: Arc<ConnPart>,
    last: Arc<Mutex<Option<Series>>>,
}

/// The series of one label set: its request counter, latency histogram, and the response
/// counters seen so far by status and classification.
#[derive(Debug)]
struct Series {
    labels: RequestLabels,
    requests: Counter,
    latency: Histogram,
    responses: Vec<((u16, bool), Counter)>,
}

/// The labels fixed by the connection.
#[derive(Debug)]
struct ConnPart {
    direction: Direction,
    target_addr: Shared,
    /// Inbound: mesh TLS from the client, and its identity.
    tls: bool,
    client_id: Shared,
}

impl HttpMetrics {
    pub(super) fn new(
        families: &HttpFamilies,
        direction: Direction,
        target_addr: Shared,
        client_id: Option<&str>,
    ) -> Self {
        Self {
            families: families.clone(),
            conn: Arc::new(ConnPart {
                direction,
                target_addr,
                tls: client_id.is_some(),
                client_id: Shared::new(client_id.unwrap_or("")),
            }),
            last: Arc::default(),
        }
    }

    /// Records a finished request: what `notes` say it was, its status (0: no response)
    /// and the time to its response headers. The families are looked up only when the
    /// labels differ from the last request's.
    pub fn response(&self, notes: &Notes, status: u16, failure: bool, elapsed_ms: f64) {
        let labels = self.labels(notes);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let series = match last.as_mut() {
            Some(s) if s.labels == labels => s,
            _ => last.insert(Series {
                requests: self.families.requests.get_or_create(&labels).clone(),
                latency: self.families.latency.get_or_create(&labels).clone(),
                responses: Vec::new(),
                labels,
            }),
        };
        series.requests.inc();
        series.latency.observe(elapsed_ms);
        let key = (status, failure);
        if let Some((_, c)) = series.responses.iter().find(|(k, _)| *k == key) {
            c.inc();
            return;
        }
        let response = ResponseLabels {
            request: series.labels.clone(),
            status_code: status,
            classification: if failure { "failure" } else { "success" },
        };
        let counter = self.families.responses.get_or_create(&response).clone();
        counter.inc();
        series.responses.push((key, counter));
    }

    fn labels(&self, notes: &Notes) -> RequestLabels {
        let shared = |v: &Option<Arc<str>>| v.clone().map_or_else(Shared::empty, Shared);
        let c = &self.conn;
        RequestLabels {
            direction: c.direction,
            target_addr: c.target_addr.clone(),
            dst_service: shared(&notes.parent),
            route: shared(&notes.route),
            dst_backend: shared(&notes.backend),
            tls: match c.direction {
                Direction::Inbound => c.tls,
                Direction::Outbound => notes.server_id.is_some(),
            },
            client_id: c.client_id.clone(),
            server_id: shared(&notes.server_id),
        }
    }
}
