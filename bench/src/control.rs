//! Control-plane benchmarks, run by `weft-bench-control`: how long a change in the files
//! source takes to reach a proxy ([`propagation`]), and what the controller costs in memory
//! with a thousand services and a stream per service and kind open ([`memory`]).
//!
//! Both run the real release binaries (found next to the benchmark with
//! [`weft_cli_local::bin_path`]) and remove what they start, also when they fail.

pub mod admin;
pub mod memory;
mod poll;
pub mod process;
pub mod propagation;
pub mod scale;
mod streams;

use crate::Millis;
use serde::Serialize;
use std::{fmt, time::Duration};

/// Any error, boxed, as the local-mode crate returns them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a benchmark could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Pods, processes, files or connections could not be set up.
    #[error("cannot {what}: {source}")]
    Setup {
        /// What was being done, e.g. `start weft-controller`.
        what: String,
        /// Why it failed.
        source: BoxError,
    },
    /// Something the benchmark waits for did not happen in time.
    #[error("{what} did not happen within {after:?}{}", details(.log))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        after: Duration,
        /// Logs that may say why.
        log: String,
    },
    /// The system under test misbehaved: failed requests, a wrong split, missing objects.
    #[error("{what}{}", details(.log))]
    Failed {
        /// What was wrong.
        what: String,
        /// Logs that may say why.
        log: String,
    },
}

fn details(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("\n{log}")
    }
}

impl Error {
    /// Makes errors into [`Error::Setup`]s of `what`, for `map_err`.
    pub fn setup<E: Into<BoxError>>(what: impl Into<String>) -> impl FnOnce(E) -> Self {
        let what = what.into();
        move |source| Self::Setup {
            what,
            source: source.into(),
        }
    }
}

/// Percentiles of a set of durations, exact (nearest rank): with 100 samples, p99 is the
/// second slowest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// The median.
    pub p50: Millis,
    /// 99th percentile.
    pub p99: Millis,
    /// The slowest.
    pub max: Millis,
    /// The fastest.
    pub min: Millis,
}

// === impl Summary ===

impl Summary {
    /// Summarizes `samples`; all zero when there are none.
    pub fn of(samples: &[Duration]) -> Self {
        let mut micros: Vec<u64> = samples.iter().map(|d| millis(*d).micros).collect();
        micros.sort_unstable();
        let rank = |q: f64| {
            let n = micros.len();
            // Nearest rank: the smallest sample with at least q of them at or below it.
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            Millis { micros: micros[i] }
        };
        match (micros.first(), micros.last()) {
            (Some(&min), Some(&max)) => Self {
                count: micros.len(),
                p50: rank(0.5),
                p99: rank(0.99),
                max: Millis { micros: max },
                min: Millis { micros: min },
            },
            _ => Self::default(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:>8}  p99 {:>8}  max {:>8}  min {:>8}  (n={})",
            self.p50.to_string(),
            self.p99.to_string(),
            self.max.to_string(),
            self.min.to_string(),
            self.count
        )
    }
}

/// `d` to the microsecond, as reports show it.
pub(crate) fn millis(d: Duration) -> Millis {
    Millis {
        micros: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
    }
}

/// `x` to three decimals: more digits than a measurement here has.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// `bytes` in MiB, for reports.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let samples: Vec<Duration> = (1..=100).rev().map(ms).collect();
        let s = Summary::of(&samples);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, Millis { micros: 50_000 });
        assert_eq!(s.p99, Millis { micros: 99_000 });
        assert_eq!(s.max, Millis { micros: 100_000 });
        assert_eq!(s.min, Millis { micros: 1_000 });

        let few = Summary::of(&[ms(3), ms(1), ms(2)]);
        assert_eq!((few.p50.micros, few.p99.micros), (2_000, 3_000));
        assert_eq!(Summary::of(&[]), Summary::default());
    }
}
