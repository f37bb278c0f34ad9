//! Failure accrual (circuit breaking) per endpoint: after `max_failures` failures in a row an
//! endpoint is ejected from balancing for a backoff that doubles with each ejection in a row;
//! when it runs out, one request at a time probes the endpoint: a success restores it, a
//! failure ejects it again for longer.
//!
//! The state is a few atomics on the endpoint, so checking it costs no lock on the request path.

use crate::{policy::FailureAccrual, retry};
use std::sync::{
    OnceLock,
    atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
};
use std::time::Duration;
use tokio::time::Instant;

/// One endpoint's failure state.
#[derive(Debug, Default)]
pub struct Health {
    /// Failures in a row.
    consecutive: AtomicU32,
    /// Ejections in a row (no success between them): the backoff exponent.
    ejections: AtomicU32,
    /// Ejected until this many nanoseconds after [`epoch`]; 0 when not ejected.
    until_ns: AtomicU64,
    /// A probe request is in flight after an ejection ran out.
    probing: AtomicBool,
}

/// What a request may do with an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Healthy: send as usual.
    Ready,
    /// The ejection ran out and this request is the probe.
    Probe,
    /// Ejected, or another request is probing.
    No,
}

/// An ejection that a failure just caused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ejected {
    /// How long the endpoint is out.
    pub for_: Duration,
}

impl Health {
    /// Whether the endpoint can take a request now, without claiming a probe.
    pub fn available(&self, now: Instant) -> bool {
        match self.until_ns.load(Ordering::Acquire) {
            0 => true,
            until => nanos_since_epoch(now) >= until && !self.probing.load(Ordering::Acquire),
        }
    }

    /// Whether the endpoint is ejected (or being probed) rather than healthy.
    pub fn ejected(&self) -> bool {
        self.until_ns.load(Ordering::Acquire) != 0
    }

    /// Claims the endpoint for a request: [`Admit::Probe`] for exactly one request once an
    /// ejection has run out.
    pub fn admit(&self, now: Instant) -> Admit {
        match self.until_ns.load(Ordering::Acquire) {
            0 => Admit::Ready,
            until if nanos_since_epoch(now) < until => Admit::No,
            _ => match self.probing.compare_exchange(
                false,
                true,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => Admit::Probe,
                Err(_) => Admit::No,
            },
        }
    }

    /// Records a request's outcome under `accrual`; returns the ejection a failure caused.
    /// `probe` is whether the request was admitted as [`Admit::Probe`].
    pub fn record(
        &self,
        success: bool,
        probe: bool,
        accrual: &FailureAccrual,
        now: Instant,
    ) -> Option<Ejected> {
        if success {
            self.consecutive.store(0, Ordering::Release);
            if probe || self.ejected() {
                self.ejections.store(0, Ordering::Release);
                self.until_ns.store(0, Ordering::Release);
                self.probing.store(false, Ordering::Release);
            }
            return None;
        }
        let failures = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
        let tripped = if probe {
            true
        } else {
            // A request sent before an ejection may fail during it; it does not eject again.
            failures >= accrual.max_failures.max(1) && !self.ejected()
        };
        if !tripped {
            return None;
        }
        let n = self.ejections.fetch_add(1, Ordering::AcqRel);
        let for_ = retry::backoff(&accrual.backoff, n, fastrand::f64());
        let until = nanos_since_epoch(now + for_).max(1);
        self.until_ns.store(until, Ordering::Release);
        self.probing.store(false, Ordering::Release);
        Some(Ejected { for_ })
    }

    /// A probe ended without an outcome (cancelled): let another request probe.
    pub fn release_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }
}

/// Nanoseconds since a process-wide starting instant (tokio's clock, so tests can pause it).
fn nanos_since_epoch(t: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| Instant::now() - Duration::from_secs(1));
    u64::try_from(t.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}
