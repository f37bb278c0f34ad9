//! The result of a run, as text for people and as one JSON object for scripts.

use crate::{ErrorCounts, LoadConfig, Rate, stats::Stats};
use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};
use std::{fmt, time::Duration, time::Instant};

/// What a run did and how long its requests took.
///
/// Every reported request is counted exactly once: `sent == ok + non_2xx + errors`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The URL requested.
    pub url: String,
    /// `"open-loop"` for a fixed rate, `"closed-loop"` for `--rate max`.
    pub mode: &'static str,
    /// Requests per second asked for; `null` for `--rate max`.
    pub target_rate: Option<u64>,
    /// Keep-alive connections used; with `new_connection_per_request`, how many one-request
    /// connections were open at once.
    pub connections: usize,
    /// Every request had a connection of its own; `achieved_rate` is then connections per
    /// second.
    pub new_connection_per_request: bool,
    /// The measured part of the run, in seconds, as asked for.
    pub duration_s: f64,
    /// The unreported warmup before it, in seconds.
    pub warmup_s: f64,
    /// Requests due (open loop) or started (closed loop) in the measured part.
    pub sent: u64,
    /// Of those, responses with a 2xx status.
    pub ok: u64,
    /// Of those, responses with any other status.
    pub non_2xx: u64,
    /// Of those, requests that got no response.
    pub errors: u64,
    /// `errors`, by what failed.
    pub error_kinds: ErrorCounts,
    /// The first error, to say what went wrong; `null` when there were none.
    pub first_error: Option<String>,
    /// Seconds from the end of the warmup to the last response: `duration_s` or a little more.
    pub elapsed_s: f64,
    /// Responses (2xx or not) per second of `elapsed_s`.
    pub achieved_rate: f64,
    /// Latency of the responses, from when each request was due to when its response ended.
    pub latency_ms: Latency,
}

/// Latency percentiles of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// The median.
    pub p50: Millis,
    /// 90th percentile.
    pub p90: Millis,
    /// 99th percentile.
    pub p99: Millis,
    /// 99.9th percentile.
    pub p99_9: Millis,
    /// The slowest response.
    pub max: Millis,
}

/// A latency kept in whole microseconds, shown and serialized as milliseconds with 3 decimals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis {
    /// The latency in microseconds.
    pub micros: u64,
}

// === impl Report ===

impl Report {
    pub(crate) fn new(config: &LoadConfig, stats: &Stats, measure_from: Instant) -> Self {
        let elapsed = stats.elapsed(measure_from, config.duration);
        let responses = stats.ok + stats.non_2xx;
        let (mode, target_rate) = match config.rate {
            Rate::PerSecond(n) => ("open-loop", Some(n.get())),
            Rate::Max => ("closed-loop", None),
        };
        Self {
            url: config.target.to_string(),
            mode,
            target_rate,
            connections: config.connections.get(),
            new_connection_per_request: config.new_connection_per_request,
            duration_s: config.duration.as_secs_f64(),
            warmup_s: config.warmup.as_secs_f64(),
            sent: stats.sent(),
            ok: stats.ok,
            non_2xx: stats.non_2xx,
            errors: stats.errors.total(),
            error_kinds: stats.errors,
            first_error: stats.first_error.clone(),
            elapsed_s: round_to(elapsed.as_secs_f64(), 3),
            achieved_rate: round_to(responses as f64 / elapsed.as_secs_f64(), 2),
            latency_ms: Latency::from_histogram(&stats.latency),
        }
    }
}

/// Rounds for display; the measurement is not more precise than this anyway.
fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self
            .target_rate
            .map_or_else(|| "max rate".to_owned(), |n| format!("{n} req/s"));
        let secs = |s: f64| match Duration::from_secs_f64(s) {
            Duration::ZERO => "0s".to_owned(),
            d => format!("{d:?}"),
        };
        let connections = match self.new_connection_per_request {
            true => format!(
                "a new connection per request, {} at a time",
                self.connections
            ),
            false => format!("{} connections", self.connections),
        };
        writeln!(
            f,
            "{} {} at {rate} over {connections} for {} (warmup {})",
            self.url,
            self.mode,
            secs(self.duration_s),
            secs(self.warmup_s),
        )?;
        writeln!(
            f,
            "  requests    sent {}  ok {}  non-2xx {}  errors {}",
            self.sent, self.ok, self.non_2xx, self.errors
        )?;
        if self.errors > 0 {
            let kinds = self.error_kinds;
            writeln!(
                f,
                "  errors      connect {}  http {}  timeout {}; first: {}",
                kinds.connect,
                kinds.http,
                kinds.timeout,
                self.first_error.as_deref().unwrap_or("-"),
            )?;
        }
        writeln!(
            f,
            "  throughput  {:.2} req/s over {:.3}s",
            self.achieved_rate, self.elapsed_s
        )?;
        let l = self.latency_ms;
        write!(
            f,
            "  latency ms  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            l.p50, l.p90, l.p99, l.p99_9, l.max
        )
    }
}

// === impl Latency ===

impl Latency {
    /// Reads the percentiles from a histogram of microseconds; all zero when it is empty.
    ///
    /// Each value is the highest one the histogram cannot tell apart from the exact
    /// percentile, so it is never an underestimate.
    pub fn from_histogram(micros: &Histogram<u64>) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        let at = |q: f64| Millis {
            micros: micros.value_at_quantile(q),
        };
        Self {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p99_9: at(0.999),
            max: Millis {
                micros: micros.max(),
            },
        }
    }
}

// === impl Millis ===

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.micros / 1000, self.micros % 1000)
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.micros as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests;
