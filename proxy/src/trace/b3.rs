//! Zipkin's B3 trace context, single header (`b3: {trace}-{span}-{sampled}-{parent}`) and
//! multi header (`x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`, `x-b3-flags`), as
//! <https://github.com/openzipkin/b3-propagation> specifies. (The OpenTelemetry crate that
//! carried a B3 propagator is deprecated upstream.)

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};

const SINGLE: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const PARENT_ID: &str = "x-b3-parentspanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";
const FIELDS: [&str; 6] = [SINGLE, TRACE_ID, SPAN_ID, PARENT_ID, SAMPLED, FLAGS];

/// Extracts B3 in either encoding (single header first); injects in `encoding`.
#[derive(Clone, Copy, Debug)]
pub struct B3Propagator {
    encoding: Encoding,
}

/// Which B3 headers to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `b3`.
    Single,
    /// `x-b3-*`.
    Multi,
}

impl B3Propagator {
    /// A propagator that injects `encoding`.
    pub fn new(encoding: Encoding) -> Self {
        Self { encoding }
    }
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let sampled = if sc.is_sampled() { "1" } else { "0" };
        match self.encoding {
            Encoding::Single => injector.set(
                SINGLE,
                format!("{}-{}-{sampled}", sc.trace_id(), sc.span_id()),
            ),
            Encoding::Multi => {
                injector.set(TRACE_ID, sc.trace_id().to_string());
                injector.set(SPAN_ID, sc.span_id().to_string());
                injector.set(SAMPLED, sampled.to_string());
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let sc = match extractor.get(SINGLE) {
            Some(single) => single_header(single),
            None => multi_header(extractor),
        };
        match sc {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        FieldIter::new(NAMES.get_or_init(|| FIELDS.iter().map(|f| f.to_string()).collect()))
    }
}

/// `{trace}-{span}[-{sampling}[-{parent}]]`; a lone sampling state carries no context.
fn single_header(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let trace = trace_id(parts.next()?)?;
    let span = span_id(parts.next()?)?;
    let sampled = match parts.next() {
        None => None,
        Some(s) => Some(sampling(s)?),
    };
    if let Some(parent) = parts.next() {
        span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(context(trace, span, sampled))
}

fn multi_header(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace = trace_id(extractor.get(TRACE_ID)?.trim())?;
    let span = span_id(extractor.get(SPAN_ID)?.trim())?;
    // Debug (`x-b3-flags: 1`) implies sampled.
    let debug = extractor.get(FLAGS).is_some_and(|f| f.trim() == "1");
    let sampled = match extractor.get(SAMPLED) {
        _ if debug => Some(true),
        None => None,
        Some(s) => Some(match s.trim() {
            "1" | "true" => true,
            "0" | "false" => false,
            _ => return None,
        }),
    };
    Some(context(trace, span, sampled))
}

/// A remote parent; an absent sampling decision is taken as sampled, so the caller's trace
/// is continued.
fn context(trace: TraceId, span: SpanId, sampled: Option<bool>) -> SpanContext {
    let flags = if sampled.unwrap_or(true) {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(trace, span, flags, true, TraceState::default())
}

/// 16 or 32 lower-case hex digits, not all zero (a 64-bit id is left-padded).
fn trace_id(s: &str) -> Option<TraceId> {
    if !(s.len() == 16 || s.len() == 32) || !is_hex(s) {
        return None;
    }
    let id = TraceId::from_hex(s).ok()?;
    (id != TraceId::INVALID).then_some(id)
}

fn span_id(s: &str) -> Option<SpanId> {
    if s.len() != 16 || !is_hex(s) {
        return None;
    }
    let id = SpanId::from_hex(s).ok()?;
    (id != SpanId::INVALID).then_some(id)
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn sampling(s: &str) -> Option<bool> {
    match s {
        "1" | "d" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(headers: &[(&str, &str)]) -> Option<SpanContext> {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cx = B3Propagator::new(Encoding::Single).extract(&map);
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const SPAN: &str = "e457b5a2e4d86bd1";

    #[test]
    fn single_and_multi_headers_give_the_same_parent() {
        let single = extract(&[("b3", &format!("{TRACE}-{SPAN}-1-05e3ac9a4f6e3b90"))])
            .expect("a valid single header");
        let multi = extract(&[(TRACE_ID, TRACE), (SPAN_ID, SPAN), (SAMPLED, "1")])
            .expect("valid multi headers");
        assert_eq!(single, multi);
        assert_eq!(single.trace_id().to_string(), TRACE);
        assert_eq!(single.span_id().to_string(), SPAN);
        assert!(single.is_sampled() && single.is_remote());
    }

    #[test]
    fn sampling_states() {
        let unsampled = extract(&[("b3", &format!("{TRACE}-{SPAN}-0"))]).expect("valid");
        assert!(!unsampled.is_sampled());
        let debug = extract(&[
            (TRACE_ID, TRACE),
            (SPAN_ID, SPAN),
            (FLAGS, "1"),
            (SAMPLED, "0"),
        ])
        .expect("valid");
        assert!(debug.is_sampled(), "debug overrides");
        let deferred = extract(&[("b3", &format!("{TRACE}-{SPAN}"))]).expect("valid");
        assert!(
            deferred.is_sampled(),
            "no decision: continue the caller's trace"
        );
        let short = extract(&[("b3", &format!("{}-{SPAN}-1", &TRACE[16..]))]).expect("64-bit id");
        assert_eq!(
            short.trace_id().to_string(),
            format!("{:0>32}", &TRACE[16..])
        );
    }

    #[test]
    fn malformed_headers_carry_no_context() {
        for bad in [
            "0",
            "d",
            "",
            "xyz-abc",
            TRACE,
            &format!("{TRACE}-{SPAN}-2"),
            &format!("{TRACE}-{SPAN}-1-zz"),
            &format!("{TRACE}-{SPAN}-1-{SPAN}-extra"),
            &format!("{}-{SPAN}-1", "0".repeat(32)),
            &format!("{}-{SPAN}-1", TRACE.to_uppercase()),
        ] {
            assert_eq!(extract(&[("b3", bad)]), None, "{bad:?}");
        }
        assert_eq!(extract(&[(TRACE_ID, TRACE)]), None, "no span id");
        assert_eq!(
            extract(&[(TRACE_ID, TRACE), (SPAN_ID, SPAN), (SAMPLED, "yes")]),
            None
        );
    }

    #[test]
    fn injection_writes_the_chosen_encoding() {
        let sc = context(
            TraceId::from_hex(TRACE).expect("hex"),
            SpanId::from_hex(SPAN).expect("hex"),
            Some(true),
        );
        let cx = Context::new().with_remote_span_context(sc);
        let mut single = HashMap::new();
        B3Propagator::new(Encoding::Single).inject_context(&cx, &mut single);
        assert_eq!(single.get("b3"), Some(&format!("{TRACE}-{SPAN}-1")));
        let mut multi = HashMap::new();
        B3Propagator::new(Encoding::Multi).inject_context(&cx, &mut multi);
        assert_eq!(multi.get(TRACE_ID).map(String::as_str), Some(TRACE));
        assert_eq!(multi.get(SPAN_ID).map(String::as_str), Some(SPAN));
        assert_eq!(multi.get(SAMPLED).map(String::as_str), Some("1"));
        assert!(!multi.contains_key("b3"));
    }
}
