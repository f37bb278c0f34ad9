//! The span export queue: a bounded buffer that finished spans enter without waiting, and
//! one thread that takes them every [`TICK`] and sends them to the collector in batches.
//!
//! A request never wakes the export thread: it only appends to the buffer under a short lock,
//! so tracing adds no cross-thread wake-ups (and their scheduling jitter) to the data path.
//! The SDK's own batch processor drops spans silently when full; this one counts every span
//! it could not deliver, by reason, so an operator can see a collector that is down or slow.

use crate::{config::TraceConfig, metrics::TraceMetrics};
use opentelemetry_otlp::{ExporterBuildError, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter, SpanProcessor},
};
use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

/// Spans sent in one export at most.
const BATCH: usize = 512;
/// How often the export thread takes what has finished.
const TICK: Duration = Duration::from_millis(50);
/// How long one export may take before its spans count as dropped.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Hands finished spans to the export thread.
#[derive(Debug)]
pub(super) struct Queue {
    buffer: Arc<Buffer>,
    metrics: TraceMetrics,
}

/// Finished spans waiting for the export thread, at most `capacity` of them.
#[derive(Debug)]
struct Buffer {
    spans: Mutex<Vec<SpanData>>,
    capacity: usize,
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, Vec<SpanData>> {
        // A list of finished spans: a panic elsewhere cannot leave it torn.
        self.spans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything waiting, leaving the buffer empty.
    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.lock())
    }
}

/// Builds the exporter for `config.collector` and starts the thread that drains the queue.
///
/// Export runs on a thread and runtime of its own: encoding a batch of spans takes long
/// enough that, on the proxy's workers, it would hold up the requests queued behind it.
pub(super) fn start(
    config: &TraceConfig,
    resource: Resource,
    metrics: TraceMetrics,
) -> Result<Queue, ExportStartError> {
    let buffer = Arc::new(Buffer {
        spans: Mutex::new(Vec::new()),
        capacity: config.queue,
    });
    let (built_tx, built_rx) = std::sync::mpsc::channel();
    let drained = buffer.clone();
    let collector = config.collector.clone();
    let task_metrics = metrics.clone();
    std::thread::Builder::new()
        .name("weft-trace-export".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = built_tx.send(Err(ExportStartError::Runtime(e)));
                    return;
                }
            };
            rt.block_on(async move {
                let built = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(collector.clone())
                    .with_timeout(EXPORT_TIMEOUT)
                    .build();
                let mut exporter = match built {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = built_tx.send(Err(ExportStartError::Exporter(e)));
                        return;
                    }
                };
                exporter.set_resource(&resource);
                let _ = built_tx.send(Ok(()));
                drain(&drained, exporter, task_metrics, collector).await;
            });
        })
        .map_err(ExportStartError::Runtime)?;
    match built_rx.recv() {
        Ok(Ok(())) => Ok(Queue { buffer, metrics }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ExportStartError::Runtime(std::io::Error::other(
            "the export thread ended before it started",
        ))),
    }
}

/// Why span export could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportStartError {
    /// The OTLP exporter refused the configuration.
    #[error(transparent)]
    Exporter(#[from] ExporterBuildError),
    /// The export thread or its runtime could not start.
    #[error("cannot start the export thread: {0}")]
    Runtime(std::io::Error),
}

impl SpanProcessor for Queue {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        // Never wait: a full buffer means the collector is behind, and requests come first.
        let mut spans = self.buffer.lock();
        if spans.len() < self.buffer.capacity {
            spans.push(span);
        } else {
            drop(spans);
            self.metrics.dropped("queue_full", 1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Every [`TICK`], sends what has finished in batches of at most [`BATCH`]; when a batch
/// fails, it and the rest of that tick's spans are counted as dropped. Logs when export starts failing and when
/// it recovers, not for every batch.
async fn drain(
    buffer: &Buffer,
    exporter: opentelemetry_otlp::SpanExporter,
    metrics: TraceMetrics,
    collector: String,
) {
    let mut failing = false;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut spans = buffer.take();
        while !spans.is_empty() {
            let rest = spans.split_off(spans.len().min(BATCH));
            let batch = std::mem::replace(&mut spans, rest);
            let n = batch.len();
            let outcome = tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await;
            let dropped = match outcome {
                Ok(Ok(())) => {
                    metrics.exported(n);
                    if failing {
                        tracing::info!(%collector, "span export works again");
                        failing = false;
                    }
                    continue;
                }
                Ok(Err(error)) => ("export_failed", error.to_string()),
                Err(_) => (
                    "export_timeout",
                    format!("no answer within {EXPORT_TIMEOUT:?}"),
                ),
            };
            // The rest would most likely fail the same way; not trying keeps a collector
            // that hangs from holding up the next tick's spans.
            metrics.dropped(dropped.0, n + spans.len());
            spans.clear();
            if !failing {
                tracing::warn!(%collector, error = %dropped.1, "span export failed; dropping spans until the collector answers");
                failing = true;
            }
        }
    }
}
