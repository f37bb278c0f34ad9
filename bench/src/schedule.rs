//! The open-loop timetable, and the pacer thread that releases requests on it.
//!
//! Request `i` is due at `start + i / rate`, whatever happened to the requests before it. Each
//! request's latency is measured from that due time, so time a request spends waiting for a free
//! connection (because the target is slow) is counted instead of silently skipped: this is what
//! avoids coordinated omission.

use std::{num::NonZeroU64, thread, time::Duration, time::Instant};
use tokio::sync::mpsc;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Timer slack for the pacer thread. Linux lets a sleeping thread wake up to 50µs late by
/// default, and that lateness would be counted as latency; 1µs keeps the pacer honest at the
/// cost of a few more wake-ups.
#[cfg(target_os = "linux")]
const PACER_TIMER_SLACK_NS: std::ffi::c_ulong = 1_000;

/// When each request of an open-loop run is due, relative to the start of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    rate: NonZeroU64,
    warmup_requests: u64,
    total_requests: u64,
}

/// One request released for sending.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Due {
    /// When the request should have been sent; its latency is measured from here.
    pub(crate) at: Instant,
    /// False for warmup requests, which are sent but not reported.
    pub(crate) measured: bool,
}

// === impl Schedule ===

impl Schedule {
    /// The timetable for `rate` requests per second: `warmup` of unreported requests, then
    /// `duration` of measured ones.
    pub fn new(rate: NonZeroU64, warmup: Duration, duration: Duration) -> Self {
        let warmup_requests = requests_before(rate, warmup);
        let total_requests = requests_before(rate, warmup.saturating_add(duration));
        Self {
            rate,
            warmup_requests,
            total_requests,
        }
    }

    /// How long after the start request `i` is due: `i / rate`, rounded down to the nanosecond.
    pub fn offset(&self, i: u64) -> Duration {
        let nanos = u128::from(i) * NANOS_PER_SEC / u128::from(self.rate.get());
        // i < 2^64 and rate >= 1 give at most 2^64 * 10^9 ns, which `Duration` holds as seconds.
        Duration::new(
            (nanos / NANOS_PER_SEC) as u64,
            (nanos % NANOS_PER_SEC) as u32,
        )
    }

    /// Requests due during the warmup, which are sent but not reported.
    pub fn warmup_requests(&self) -> u64 {
        self.warmup_requests
    }

    /// Requests due during the measured part of the run.
    pub fn measured_requests(&self) -> u64 {
        self.total_requests - self.warmup_requests
    }

    /// Requests due over the whole run, warmup included.
    pub fn total_requests(&self) -> u64 {
        self.total_requests
    }

    /// Whether request `i` is reported (it is due after the warmup).
    pub fn is_measured(&self, i: u64) -> bool {
        i >= self.warmup_requests
    }
}

/// How many `i` have `offset(i) < span`: `ceil(span * rate)`, since `offset` rounds down.
fn requests_before(rate: NonZeroU64, span: Duration) -> u64 {
    let scaled = span.as_nanos() * u128::from(rate.get());
    u64::try_from(scaled.div_ceil(NANOS_PER_SEC)).unwrap_or(u64::MAX)
}

/// Starts the pacer: a plain thread that sleeps until each request is due and then queues it.
///
/// A thread rather than a task because tokio's timer wheel fires on whole milliseconds, which
/// would add up to a millisecond of made-up latency to every request; `thread::sleep` is
/// accurate to microseconds. When the pacer falls behind it queues the overdue requests at once
/// with their original due times, so the lateness is reported rather than hidden. It stops after
/// the last request or when the workers hang up.
pub(crate) fn spawn_pacer(
    schedule: Schedule,
    start: Instant,
    queue: mpsc::UnboundedSender<Due>,
) -> std::io::Result<()> {
    thread::Builder::new()
        .name("weft-load-pacer".into())
        .spawn(move || {
            #[cfg(target_os = "linux")]
            {
                // Only precision is lost if this fails, and then only as much as the default.
                let _ = nix::sys::prctl::set_timerslack(PACER_TIMER_SLACK_NS);
            }
            for i in 0..schedule.total_requests() {
                let at = start + schedule.offset(i);
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                let due = Due {
                    at,
                    measured: schedule.is_measured(i),
                };
                if queue.send(due).is_err() {
                    return;
                }
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).expect("test rates are not zero")
    }

    #[test]
    fn request_i_is_due_at_i_over_rate() {
        let s = Schedule::new(rate(1000), Duration::ZERO, Duration::from_secs(1));
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(1));
        assert_eq!(s.offset(999), Duration::from_millis(999));

        // Rounding never accumulates: each offset is computed from i, not from the previous one.
        let s = Schedule::new(rate(3), Duration::ZERO, Duration::from_secs(1));
        assert_eq!(s.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(s.offset(2), Duration::from_nanos(666_666_666));
        assert_eq!(s.offset(3), Duration::from_secs(1));
        assert_eq!(s.offset(3_000_000), Duration::from_secs(1_000_000));

        let s = Schedule::new(rate(u64::MAX), Duration::ZERO, Duration::ZERO);
        assert_eq!(s.offset(u64::MAX), Duration::from_secs(1));
    }

    #[test]
    fn counts_requests_due_within_the_run() {
        let s = Schedule::new(rate(1000), Duration::from_secs(2), Duration::from_secs(10));
        assert_eq!(s.warmup_requests(), 2_000);
        assert_eq!(s.measured_requests(), 10_000);
        assert_eq!(s.total_requests(), 12_000);
        assert!(!s.is_measured(1_999));
        assert!(s.is_measured(2_000));
        // The last request is due strictly before the end of the run.
        assert!(s.offset(11_999) < Duration::from_secs(12));

        let s = Schedule::new(rate(1000), Duration::ZERO, Duration::from_millis(200));
        assert_eq!(s.measured_requests(), 200);

        // 3 req/s for 1.5s: due at 0, 1/3, 2/3, 1, 4/3 seconds.
        let s = Schedule::new(rate(3), Duration::ZERO, Duration::from_millis(1500));
        assert_eq!(s.total_requests(), 5);
        assert!(s.offset(4) < Duration::from_millis(1500));
        assert!(s.offset(5) >= Duration::from_millis(1500));

        let s = Schedule::new(rate(7), Duration::ZERO, Duration::ZERO);
        assert_eq!(s.total_requests(), 0);
    }

    #[test]
    fn pacer_releases_every_request_in_order() {
        let s = Schedule::new(
            rate(100_000),
            Duration::from_micros(50),
            Duration::from_micros(100),
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let start = Instant::now();
        spawn_pacer(s, start, tx).expect("spawn pacer thread");

        let mut released = Vec::new();
        while let Some(due) = rx.blocking_recv() {
            released.push(due);
        }
        assert_eq!(released.len(), 15);
        for (i, due) in released.iter().enumerate() {
            assert_eq!(due.at, start + s.offset(i as u64));
            assert_eq!(due.measured, i >= 5, "request {i}");
        }
    }
}
