//! A retry budget per service (Linkerd's and Finagle's): over a sliding window of `ttl`,
//! retries may be at most `ratio` of the requests plus `min_per_sec × ttl`.

use std::{sync::Mutex, time::Duration};
use tokio::time::Instant;

/// The window is kept as this many slots, so it slides in steps of `ttl / SLOTS`.
const SLOTS: usize = 10;

/// What a budget allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetParams {
    /// Retries per request in the window, e.g. 0.2 for 20 %.
    pub ratio: f64,
    /// Retries per second allowed whatever the request rate, so a quiet service can retry.
    pub min_per_sec: u32,
    /// How long a request counts toward the budget.
    pub ttl: Duration,
}

impl Default for BudgetParams {
    /// 20 % of requests plus 10 retries a second over 10 s: DESIGN.md's default.
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_sec: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

/// One service's budget: requests deposit, retries withdraw.
#[derive(Debug)]
pub struct Budget {
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    params: BudgetParams,
    slot_len: Duration,
    /// Requests and retries per slot; `current` is the newest.
    slots: [(u64, u64); SLOTS],
    current: usize,
    current_start: Instant,
}

impl Budget {
    /// An empty budget.
    pub fn new(params: BudgetParams) -> Self {
        Self::new_at(params, Instant::now())
    }

    /// [`Budget::new`] at a given time (for tests).
    pub fn new_at(params: BudgetParams, now: Instant) -> Self {
        Self {
            window: Mutex::new(Window::new(params, now)),
        }
    }

    /// Takes new parameters (the controller changed the service's budget), keeping the counts.
    pub fn set_params(&self, params: BudgetParams) {
        let mut w = self.lock();
        if w.params != params {
            // The counts carry over; only the allowance and the slot length change.
            w.slot_len = slot_len(params.ttl);
            w.params = params;
        }
    }

    /// A request was sent for the first time.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// Asks to send a retry: `true` (and the retry is counted) if the budget allows it.
    pub fn withdraw(&self) -> bool {
        self.withdraw_at(Instant::now())
    }

    /// [`Budget::deposit`] at a given time.
    pub fn deposit_at(&self, now: Instant) {
        let mut w = self.lock();
        w.advance(now);
        let i = w.current;
        w.slots[i].0 += 1;
    }

    /// [`Budget::withdraw`] at a given time.
    pub fn withdraw_at(&self, now: Instant) -> bool {
        let mut w = self.lock();
        w.advance(now);
        let (requests, retries) = w
            .slots
            .iter()
            .fold((0u64, 0u64), |(a, b), (r, t)| (a + r, b + t));
        if (retries + 1) as f64 > w.allowance(requests) {
            return false;
        }
        let i = w.current;
        w.slots[i].1 += 1;
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // Counters only; a panic elsewhere cannot leave them unusable.
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Window {
    fn new(params: BudgetParams, now: Instant) -> Self {
        Self {
            params,
            slot_len: slot_len(params.ttl),
            slots: [(0, 0); SLOTS],
            current: 0,
            current_start: now,
        }
    }

    /// Retries allowed in a window that holds `requests` requests.
    fn allowance(&self, requests: u64) -> f64 {
        let reserve =
            f64::from(self.params.min_per_sec) * self.slot_len.as_secs_f64() * SLOTS as f64;
        reserve + self.params.ratio.max(0.0) * requests as f64
    }

    /// Moves the window to `now`, emptying the slots that fell out of it.
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.current_start);
        let steps = (elapsed.as_nanos() / self.slot_len.as_nanos().max(1)) as u64;
        if steps == 0 {
            return;
        }
        if steps >= SLOTS as u64 {
            self.slots = [(0, 0); SLOTS];
        } else {
            for _ in 0..steps {
                self.current = (self.current + 1) % SLOTS;
                self.slots[self.current] = (0, 0);
            }
        }
        let into_slot = elapsed.as_nanos() % self.slot_len.as_nanos().max(1);
        self.current_start = now - Duration::from_nanos(into_slot as u64);
    }
}

/// A slot is a tenth of the window, and at least a millisecond.
fn slot_len(ttl: Duration) -> Duration {
    (ttl / SLOTS as u32).max(Duration::from_millis(1))
}
