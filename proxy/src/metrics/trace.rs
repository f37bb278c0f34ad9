//! Counters of span export: how many spans reached the collector, and how many did not and why.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    /// `queue_full`, `export_failed` or `export_timeout`.
    reason: &'static str,
}

/// `trace_spans_exported_total` and `trace_spans_dropped_total{reason}`.
#[derive(Clone, Debug, Default)]
pub struct TraceMetrics {
    exported: Counter,
    dropped: Family<DropLabels, Counter>,
}

impl TraceMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "trace_spans_exported",
            "Spans the collector accepted",
            self.exported.clone(),
        );
        registry.register(
            "trace_spans_dropped",
            "Spans not exported: the queue was full, or the collector failed or timed out",
            self.dropped.clone(),
        );
    }

    /// `n` spans reached the collector.
    pub fn exported(&self, n: usize) {
        self.exported.inc_by(n as u64);
    }

    /// `n` spans were dropped for `reason`.
    pub fn dropped(&self, reason: &'static str, n: usize) {
        self.dropped
            .get_or_create(&DropLabels { reason })
            .inc_by(n as u64);
    }
}
