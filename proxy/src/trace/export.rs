//! The span export queue: a bounded channel that finished spans enter without waiting, and
//! one task that sends them to the collector in batches.
//!
//! The SDK's own batch processor drops spans silently when full; this one counts every span
//! it could not deliver, by reason, so an operator can see a collector that is down or slow.

use crate::{config::TraceConfig, metrics::TraceMetrics};
use opentelemetry_otlp::{ExporterBuildError, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter, SpanProcessor},
};
use std::time::Duration;
use tokio::sync::mpsc;

/// Spans sent in one export at most.
const BATCH: usize = 512;
/// How long a batch waits to fill before it is sent.
const LINGER: Duration = Duration::from_millis(200);
/// How long one export may take before its spans count as dropped.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Hands finished spans to the export task.
#[derive(Debug)]
pub(super) struct Queue {
    tx: mpsc::Sender<SpanData>,
    metrics: TraceMetrics,
}

/// Builds the exporter for `config.collector` and starts the task that drains the queue.
pub(super) fn start(
    config: &TraceConfig,
    resource: Resource,
    metrics: TraceMetrics,
) -> Result<Queue, ExporterBuildError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.collector.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    exporter.set_resource(&resource);
    let (tx, rx) = mpsc::channel(config.queue);
    tokio::spawn(drain(
        rx,
        exporter,
        metrics.clone(),
        config.collector.clone(),
    ));
    Ok(Queue { tx, metrics })
}

impl SpanProcessor for Queue {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        // Never wait: a full queue means the collector is behind, and requests come first.
        match self.tx.try_send(span) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.metrics.dropped("queue_full", 1),
            Err(mpsc::error::TrySendError::Closed(_)) => self.metrics.dropped("shutdown", 1),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Sends batches until every sender is gone; batches the collector did not take are counted
/// as dropped. Logs when export starts failing and when it recovers, not for every batch.
async fn drain(
    mut rx: mpsc::Receiver<SpanData>,
    exporter: opentelemetry_otlp::SpanExporter,
    metrics: TraceMetrics,
    collector: String,
) {
    let mut failing = false;
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::with_capacity(BATCH);
        batch.push(first);
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while batch.len() < BATCH {
            tokio::select! {
                span = rx.recv() => match span {
                    Some(s) => batch.push(s),
                    None => break,
                },
                () = &mut linger => break,
            }
        }
        let n = batch.len();
        let outcome = tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await;
        match outcome {
            Ok(Ok(())) => {
                metrics.exported(n);
                if failing {
                    tracing::info!(%collector, "span export works again");
                    failing = false;
                }
            }
            Ok(Err(error)) => {
                metrics.dropped("export_failed", n);
                if !failing {
                    tracing::warn!(%collector, %error, "span export failed; dropping spans until the collector answers");
                    failing = true;
                }
            }
            Err(_) => {
                metrics.dropped("export_timeout", n);
                if !failing {
                    tracing::warn!(%collector, after = ?EXPORT_TIMEOUT, "span export timed out; dropping spans until the collector answers");
                    failing = true;
                }
            }
        }
    }
}
