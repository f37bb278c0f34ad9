//! What each connection's worker records; merged into one [`Report`](crate::Report) at the end.

use crate::conn::RequestError;
use hdrhistogram::Histogram;
use http::StatusCode;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The largest latency the histogram tells apart, in microseconds (one hour); longer ones are
/// recorded as one hour.
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// Three significant figures: latencies are reported to 0.1% of their value.
const SIGNIFICANT_FIGURES: u8 = 3;

/// Errors, by what failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// The connection could not be opened or HTTP/1.1 could not be started on it.
    pub connect: u64,
    /// The request could not be sent, or the response could not be read or was not HTTP.
    pub http: u64,
    /// No complete response within the timeout of the request's due time.
    pub timeout: u64,
}

/// Counts and latencies of one worker, or of all of them once merged.
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    /// Microseconds from each request's due time to the end of its response, for every request
    /// that got a response, 2xx or not.
    pub(crate) latency: Histogram<u64>,
    pub(crate) ok: u64,
    pub(crate) non_2xx: u64,
    pub(crate) errors: ErrorCounts,
    /// The first error seen, to tell people what went wrong without logging every one.
    pub(crate) first_error: Option<String>,
    /// When the last reported request finished.
    pub(crate) last_done: Option<Instant>,
}

// === impl ErrorCounts ===

impl ErrorCounts {
    /// All errors.
    pub fn total(&self) -> u64 {
        self.connect + self.http + self.timeout
    }
}

// === impl Stats ===

impl Stats {
    pub(crate) fn new() -> Self {
        let latency = Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_FIGURES)
            .expect("constant histogram bounds are valid: low >= 1, high >= 2 * low, 3 sigfigs");
        Self {
            latency,
            ok: 0,
            non_2xx: 0,
            errors: ErrorCounts::default(),
            first_error: None,
            last_done: None,
        }
    }

    /// Requests that got a response or failed; every reported request does one or the other.
    pub(crate) fn sent(&self) -> u64 {
        self.ok + self.non_2xx + self.errors.total()
    }

    /// Records how a request that was due at `due` ended, at `done`.
    pub(crate) fn record(
        &mut self,
        due: Instant,
        done: Instant,
        outcome: Result<StatusCode, RequestError>,
    ) {
        self.last_done = self.last_done.max(Some(done));
        match outcome {
            Ok(status) => {
                let micros = done.saturating_duration_since(due).as_micros();
                self.latency
                    .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                if status.is_success() {
                    self.ok += 1;
                } else {
                    self.non_2xx += 1;
                }
            }
            Err(error) => {
                let count = match error {
                    RequestError::Connect { .. } | RequestError::Handshake { .. } => {
                        &mut self.errors.connect
                    }
                    RequestError::Http(_)
                    | RequestError::Io { .. }
                    | RequestError::Malformed { .. } => &mut self.errors.http,
                    RequestError::Timeout(_) => &mut self.errors.timeout,
                };
                *count += 1;
                self.first_error.get_or_insert_with(|| chain(&error));
            }
        }
    }

    /// Adds `other`'s counts and latencies to these.
    pub(crate) fn merge(&mut self, other: Stats) {
        self.latency
            .add(&other.latency)
            .expect("every Stats histogram is created with the same bounds");
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.errors.connect += other.errors.connect;
        self.errors.http += other.errors.http;
        self.errors.timeout += other.errors.timeout;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.last_done = self.last_done.max(other.last_done);
    }

    /// How long the measured part of the run took: at least `duration`, longer when responses
    /// to the last requests came in after it ended.
    pub(crate) fn elapsed(&self, measure_from: Instant, duration: Duration) -> Duration {
        let last = self.last_done.map_or(Duration::ZERO, |done| {
            done.saturating_duration_since(measure_from)
        });
        last.max(duration)
    }
}

/// `error` and its causes, as one line: `cannot connect to 10.0.0.1:80: Connection refused`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_separately() {
        let mut stats = Stats::new();
        let due = Instant::now();
        let done = due + Duration::from_micros(1500);
        stats.record(due, done, Ok(StatusCode::OK));
        stats.record(due, done, Ok(StatusCode::SERVICE_UNAVAILABLE));
        stats.record(
            due,
            done,
            Err(RequestError::Timeout(Duration::from_secs(1))),
        );

        let mut other = Stats::new();
        let later = done + Duration::from_secs(1);
        other.record(due, later, Ok(StatusCode::NO_CONTENT));
        stats.merge(other);

        assert_eq!((stats.ok, stats.non_2xx, stats.errors.timeout), (2, 1, 1));
        assert_eq!(stats.sent(), 4);
        // Non-2xx responses are responses: their latency counts.
        assert_eq!(stats.latency.len(), 3);
        assert_eq!(stats.latency.min(), 1500);
        assert_eq!(stats.last_done, Some(later));
        let first = stats.first_error.as_deref().unwrap_or_default();
        assert!(first.contains("no response within 1s"), "{first}");
        assert_eq!(
            stats.elapsed(due, Duration::from_millis(10)),
            Duration::from_micros(1_001_500)
        );
        assert_eq!(
            stats.elapsed(due, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn first_error_says_why() {
        let mut stats = Stats::new();
        let now = Instant::now();
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let addr = ([10, 0, 0, 1], 80).into();
        let error = RequestError::Connect {
            addr,
            source: refused,
        };
        stats.record(now, now, Err(error));
        stats.record(now, now, Err(RequestError::Timeout(Duration::from_secs(1))));
        assert_eq!(
            stats.errors,
            ErrorCounts {
                connect: 1,
                http: 0,
                timeout: 1
            }
        );
        assert_eq!(
            stats.first_error.as_deref(),
            Some("cannot connect to 10.0.0.1:80: connection refused")
        );
        assert_eq!(stats.latency.len(), 0);
    }
}
