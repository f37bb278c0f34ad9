use super::*;
use crate::{LoadConfig, conn::RequestError, stats::Stats};
use http::StatusCode;
use std::num::{NonZeroU64, NonZeroUsize};

fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for v in values {
        h.record(v).expect("value within bounds");
    }
    h
}

fn ms(micros: u64) -> Millis {
    Millis { micros }
}

#[test]
fn percentiles_of_exact_values() {
    // Below 2048µs three significant figures keep every microsecond, so these are exact.
    let h = histogram(
        [
            (8_999, 800),
            (900, 1_000),
            (90, 1_200),
            (10, 1_500),
            (1, 2_000),
        ]
        .into_iter()
        .flat_map(|(count, micros)| std::iter::repeat_n(micros, count)),
    );
    assert_eq!(h.len(), 10_000);
    let l = Latency::from_histogram(&h);
    assert_eq!(l.p50, ms(800));
    assert_eq!(l.p90, ms(1_000));
    assert_eq!(l.p99, ms(1_200));
    assert_eq!(l.p99_9, ms(1_500));
    assert_eq!(l.max, ms(2_000));
}

#[test]
fn percentiles_within_three_significant_figures() {
    let h = histogram(1..=100_000);
    let l = Latency::from_histogram(&h);
    let near = |got: Millis, want: u64| {
        let error = got.micros.abs_diff(want) as f64 / want as f64;
        assert!(error <= 0.001, "got {got} ms, want {want} µs");
        assert!(got.micros >= want, "{got} ms underestimates {want} µs");
    };
    near(l.p50, 50_000);
    near(l.p90, 90_000);
    near(l.p99, 99_000);
    near(l.p99_9, 99_900);
    near(l.max, 100_000);
}

#[test]
fn empty_histogram_reports_zeros() {
    assert_eq!(Latency::from_histogram(&histogram([])), Latency::default());
}

#[test]
fn millis_have_three_decimals() {
    assert_eq!(ms(0).to_string(), "0.000");
    assert_eq!(ms(153).to_string(), "0.153");
    assert_eq!(ms(12_040).to_string(), "12.040");
    assert_eq!(
        serde_json::to_string(&ms(1_203)).expect("serialize"),
        "1.203"
    );
}

fn config(rate: Rate) -> LoadConfig {
    LoadConfig {
        target: "http://127.0.0.1:8080/".parse().expect("valid URL"),
        rate,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        connections: NonZeroUsize::new(4).expect("4 is not zero"),
        new_connection_per_request: false,
        body_bytes: 0,
        timeout: Duration::from_secs(1),
    }
}

/// 3 responses and 1 error, the last response 2.5s after measuring started.
fn stats(measure_from: Instant) -> Stats {
    let mut stats = Stats::new();
    let due = measure_from + Duration::from_millis(10);
    stats.record(due, due + Duration::from_micros(250), Ok(StatusCode::OK));
    stats.record(due, due + Duration::from_micros(750), Ok(StatusCode::OK));
    stats.record(
        due,
        due + Duration::from_secs(1),
        Err(RequestError::Timeout(Duration::from_secs(1))),
    );
    let last = measure_from + Duration::from_millis(2_500);
    stats.record(
        last - Duration::from_millis(1),
        last,
        Ok(StatusCode::NOT_FOUND),
    );
    stats
}

#[test]
fn report_counts_and_rate() {
    let start = Instant::now();
    let rate = Rate::PerSecond(NonZeroU64::new(1000).expect("not zero"));
    let report = Report::new(&config(rate), &stats(start), start);
    assert_eq!(report.mode, "open-loop");
    assert_eq!(report.target_rate, Some(1000));
    assert_eq!(
        (report.sent, report.ok, report.non_2xx, report.errors),
        (4, 2, 1, 1)
    );
    assert_eq!(report.error_kinds.timeout, 1);
    // Responses over the time until the last one: 3 / 2.5s.
    assert_eq!(report.elapsed_s, 2.5);
    assert_eq!(report.achieved_rate, 1.2);
    assert_eq!(report.latency_ms.p50, ms(750));
    assert_eq!(report.latency_ms.max, ms(1_000));

    let max = Report::new(&config(Rate::Max), &Stats::new(), start);
    assert_eq!((max.mode, max.target_rate), ("closed-loop", None));
    assert_eq!((max.elapsed_s, max.achieved_rate), (2.0, 0.0));
}

#[test]
fn text_report() {
    let start = Instant::now();
    let rate = Rate::PerSecond(NonZeroU64::new(1000).expect("not zero"));
    let text = Report::new(&config(rate), &stats(start), start).to_string();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "http://127.0.0.1:8080/ open-loop at 1000 req/s over 4 connections for 2s (warmup 500ms)",
            "  requests    sent 4  ok 2  non-2xx 1  errors 1",
            "  errors      connect 0  http 0  timeout 1; first: no response within 1s of the request's due time",
            "  throughput  1.20 req/s over 2.500s",
            "  latency ms  p50 0.750  p90 1.000  p99 1.000  p99.9 1.000  max 1.000",
        ]
    );

    let mut per_request = config(Rate::Max);
    per_request.new_connection_per_request = true;
    let text = Report::new(&per_request, &stats(start), start).to_string();
    assert_eq!(
        text.lines().next(),
        Some(
            "http://127.0.0.1:8080/ closed-loop at max rate over a new connection per request, \
             4 at a time for 2s (warmup 500ms)"
        )
    );
}

#[test]
fn json_report() {
    let start = Instant::now();
    let report = Report::new(&config(Rate::Max), &stats(start), start);
    let json = serde_json::to_value(&report).expect("serialize");
    assert_eq!(json["mode"], "closed-loop");
    assert_eq!(json["target_rate"], serde_json::Value::Null);
    assert_eq!(json["new_connection_per_request"], false);
    assert_eq!(json["sent"], 4);
    assert_eq!(json["non_2xx"], 1);
    assert_eq!(json["error_kinds"]["timeout"], 1);
    assert_eq!(json["achieved_rate"], 1.2);
    assert_eq!(json["latency_ms"]["p50"], 0.75);
    assert_eq!(json["latency_ms"]["p99_9"], 1.0);
    assert!(
        json["first_error"]
            .as_str()
            .is_some_and(|e| e.contains("1s"))
    );
}
