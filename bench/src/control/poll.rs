//! Waiting for a change by polling at a fixed period, with a plain thread sleep between polls.
//!
//! A tokio timer ticks in whole milliseconds and rounds up, so a 1 ms tokio sleep lasts 1–2 ms;
//! like `weft-load`'s pacer, this sleeps the thread instead, with 1 µs timer slack, so the
//! period is what was asked for. It blocks the thread: run it on one of its own (a pod's
//! `run` closure, or [`on_thread`]).

use std::{
    future::Future,
    time::{Duration, Instant},
};

/// When a poll found what it was looking for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    /// From `start` to when the probe that found it returned: an upper bound on when the change
    /// happened, late by at most one period plus one probe.
    pub(crate) elapsed: Duration,
    /// How many probes it took.
    pub(crate) polls: u32,
}

impl Found {
    /// The average time between probes: the measurement's resolution.
    pub(crate) fn period(&self) -> Duration {
        self.elapsed / self.polls.max(1)
    }
}

/// Probes at once, then every `period` after `start`, until `probe` returns `true` (or an
/// error) or `timeout` has passed since `start` (`Ok(None)`). Missed ticks are skipped, not
/// made up.
pub(crate) async fn until<E, F, Fut>(
    start: Instant,
    period: Duration,
    timeout: Duration,
    mut probe: F,
) -> Result<Option<Found>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    tighten_timer_slack();
    let mut polls = 0u32;
    let mut next = start;
    loop {
        polls += 1;
        if probe().await? {
            return Ok(Some(Found {
                elapsed: start.elapsed(),
                polls,
            }));
        }
        if start.elapsed() >= timeout {
            return Ok(None);
        }
        let now = Instant::now();
        while next <= now {
            next += period;
        }
        std::thread::sleep(next - now);
    }
}

/// Runs `f` to completion on a new thread with its own current-thread runtime, so its
/// blocking sleeps stall nothing else.
pub(crate) fn on_thread<F, Fut, T>(f: F) -> std::io::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name("weft-bench-poll".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(f()))
        })?;
    match thread.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn tighten_timer_slack() {
    #[cfg(target_os = "linux")]
    {
        // Only precision is lost if this fails, and then only the default 50 µs.
        let _ = nix::sys::prctl::set_timerslack(1_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_until_found_or_timeout() {
        let found = on_thread(|| async {
            let start = Instant::now();
            let mut n = 0;
            until(
                start,
                Duration::from_millis(1),
                Duration::from_secs(5),
                || {
                    n += 1;
                    let found = n == 5;
                    async move { Ok::<_, ()>(found) }
                },
            )
            .await
        })
        .expect("a thread");
        let found = found.expect("no error").expect("found before the timeout");
        assert_eq!(found.polls, 5);
        // Four sleeps of a millisecond at least.
        assert!(found.elapsed >= Duration::from_millis(4), "{found:?}");

        let never = on_thread(|| async {
            let start = Instant::now();
            until(
                start,
                Duration::from_millis(1),
                Duration::from_millis(20),
                || async { Ok::<_, ()>(false) },
            )
            .await
        })
        .expect("a thread");
        assert!(matches!(never, Ok(None)));
    }
}
