//! When to renew and when to retry: pure functions of the certificate's expiry and the clock,
//! so they are tested without a controller.

use std::time::{Duration, SystemTime};

/// How long to keep a certificate valid until `not_after` before renewing: 70% of what is
/// left, ±5% (`jitter` in [0, 1)) so proxies started together do not renew together.
pub(super) fn refresh_delay(not_after: SystemTime, now: SystemTime, jitter: f64) -> Duration {
    let left = not_after.duration_since(now).unwrap_or_default();
    left.mul_f64(0.65 + 0.10 * jitter.clamp(0.0, 1.0))
}

/// Waits between failed attempts: 1 s doubling to 60 s, ±10%, and never more than half of what
/// is left of the current certificate, so a renewal keeps trying before it expires.
#[derive(Debug)]
pub(super) struct Retry {
    next: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { next: Self::MIN }
    }
}

impl Retry {
    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    /// After a success, start again from the shortest wait.
    pub(super) fn reset(&mut self) {
        self.next = Self::MIN;
    }

    /// The next wait (`jitter` in [0, 1)), lengthening the one after.
    pub(super) fn next(
        &mut self,
        expiry: Option<SystemTime>,
        now: SystemTime,
        jitter: f64,
    ) -> Duration {
        let mut wait = self.next.mul_f64(0.9 + 0.2 * jitter.clamp(0.0, 1.0));
        self.next = (self.next * 2).min(Self::MAX);
        if let Some(left) = expiry.and_then(|t| t.duration_since(now).ok()) {
            wait = wait.min((left / 2).max(Self::MIN));
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_at_seventy_percent_of_what_is_left_give_or_take_five() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let not_after = now + Duration::from_secs(100);
        assert_eq!(refresh_delay(not_after, now, 0.0), Duration::from_secs(65));
        assert_eq!(refresh_delay(not_after, now, 0.5), Duration::from_secs(70));
        assert_eq!(refresh_delay(not_after, now, 1.0), Duration::from_secs(75));
        assert_eq!(
            refresh_delay(now, not_after, 0.5),
            Duration::ZERO,
            "already expired"
        );
    }

    #[test]
    fn retries_back_off_to_a_minute_but_not_past_half_the_remaining_life() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut retry = Retry::default();
        let waits: Vec<u64> = (0..8)
            .map(|_| retry.next(None, now, 0.5).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);

        let expiry = Some(now + Duration::from_secs(20));
        assert_eq!(retry.next(expiry, now, 0.5), Duration::from_secs(10));
        let almost = Some(now + Duration::from_millis(500));
        assert_eq!(
            retry.next(almost, now, 0.5),
            Duration::from_secs(1),
            "at least a second"
        );

        retry.reset();
        assert_eq!(retry.next(None, now, 0.5), Duration::from_secs(1));
        let low = retry.next(None, now, 0.0);
        let high = Retry {
            next: Duration::from_secs(2),
        }
        .next(None, now, 1.0);
        assert_eq!(
            (low, high),
            (Duration::from_millis(1800), Duration::from_millis(2200))
        );
    }
}
