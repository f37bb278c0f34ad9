//! OpenTelemetry spans: a server span for each inbound request and a client span for each
//! outbound one, joined to the caller's trace context (W3C `traceparent` first, B3 single or
//! multi header accepted) and exported over OTLP/gRPC.
//!
//! Export never slows a request down: finished spans go into a bounded queue that one task
//! drains in batches; when the collector is slow or gone the queue fills and further spans are
//! dropped and counted (`trace_spans_dropped_total`), never waited for.

mod b3;
mod export;

use crate::{config::TraceConfig, metrics::TraceMetrics};
use b3::{B3Propagator, Encoding};
use http::HeaderMap;
use opentelemetry::{
    Context, KeyValue,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
    trace::{SpanKind, TraceContextExt, Tracer as _, TracerProvider as _},
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracer, SdkTracerProvider},
};
use std::sync::Arc;

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The OTLP exporter could not be built for the collector address.
    #[error("cannot export spans to {collector}: {source}")]
    Exporter {
        /// The collector's URL.
        collector: String,
        /// Why.
        source: export::ExportStartError,
    },
}

/// The proxy's tracer, its propagators and its export queue.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// Extracts W3C trace context, falling back to B3.
    extract: TextMapCompositePropagator,
    w3c: TraceContextPropagator,
}

/// The B3 headers a request carried, so the forwarded request carries them updated too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum B3 {
    /// `b3: {trace}-{span}-{sampled}`.
    Single,
    /// `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`.
    Multi,
}

impl Tracing {
    /// Starts the export thread and the tracer for `config`.
    pub fn start(config: &TraceConfig, metrics: TraceMetrics) -> Result<Arc<Self>, TraceError> {
        let resource = resource(config);
        let processor = export::start(config, resource.clone(), metrics).map_err(|source| {
            TraceError::Exporter {
                collector: config.collector.clone(),
                source,
            }
        })?;
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sampling,
            ))))
            .with_resource(resource)
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("weft-proxy");
        // The later propagator wins when both find a context: W3C is consulted last.
        let extract = TextMapCompositePropagator::new(vec![
            Box::new(B3Propagator::new(Encoding::Single)),
            Box::new(TraceContextPropagator::new()),
        ]);
        Ok(Arc::new(Self {
            provider,
            tracer,
            extract,
            w3c: TraceContextPropagator::new(),
        }))
    }

    /// The caller's trace context in `headers` (empty if there is none), and which B3
    /// headers it used, if any.
    pub fn extract(&self, headers: &HeaderMap) -> (Context, Option<B3>) {
        let cx = self.extract.extract(&HeaderExtractor(headers));
        let b3 = if headers.contains_key("b3") {
            Some(B3::Single)
        } else if headers.contains_key("x-b3-traceid") {
            Some(B3::Multi)
        } else {
            None
        };
        (cx, b3)
    }

    /// A span named `name` of `kind` under `parent`; the sampler decides whether it records
    /// (a sampled parent's child does, an unsampled parent's does not, a root by ratio).
    pub fn span(
        &self,
        kind: SpanKind,
        name: String,
        attributes: Vec<KeyValue>,
        parent: &Context,
    ) -> Context {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, parent);
        parent.with_span(span)
    }

    /// Writes the context of `cx`'s span into `headers`: `traceparent` (and `tracestate`)
    /// always, and the B3 headers the request came with, replaced.
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap, b3: Option<B3>) {
        self.w3c.inject_context(cx, &mut HeaderInjector(headers));
        if let Some(b3) = b3 {
            for h in [
                "b3",
                "x-b3-traceid",
                "x-b3-spanid",
                "x-b3-parentspanid",
                "x-b3-sampled",
            ] {
                headers.remove(h);
            }
            let encoding = match b3 {
                B3::Single => Encoding::Single,
                B3::Multi => Encoding::Multi,
            };
            B3Propagator::new(encoding).inject_context(cx, &mut HeaderInjector(headers));
        }
    }

    /// Stops taking spans and hands what is queued to the export task, which sends it if
    /// the collector answers before the proxy exits.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "tracer shutdown");
        }
    }
}

/// `service.name` and where the workload runs.
fn resource(config: &TraceConfig) -> Resource {
    let mut attrs = vec![KeyValue::new("service.name", config.service_name.clone())];
    let optional = [
        ("k8s.namespace.name", &config.namespace),
        ("k8s.pod.name", &config.pod),
        ("k8s.node.name", &config.node),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            attrs.push(KeyValue::new(key, v.clone()));
        }
    }
    Resource::builder_empty().with_attributes(attrs).build()
}
