//! Picking an endpoint of a balanced backend: power of two choices (P2C), comparing the two
//! candidates by peak-EWMA load for requests, or by open connections for opaque TCP.
//!
//! Peak-EWMA follows tower 0.5's `tower::load::PeakEwma` (itself Finagle's): an endpoint's cost
//! is its RTT estimate times (pending requests + 1); a slower observed RTT replaces the estimate
//! at once (the peak), a faster one is blended in with weight `1 - exp(-elapsed / decay)`, and
//! every read of the cost decays the estimate toward zero the same way, so an endpoint that was
//! slow a while ago is tried again. Unlike tower, a request that fails or is cancelled counts
//! as a slow one (see [`InFlight`]), so an endpoint that fails fast does not attract traffic.

mod accrual;
#[cfg(test)]
mod tests;

pub use accrual::{Admit, Ejected, Health};

use crate::policy::FailureAccrual;
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// The weight the Destination API gives an endpoint by default; weights are relative to it.
pub const DEFAULT_WEIGHT: u32 = 10_000;

/// A failed or cancelled request counts as an RTT this many times the current estimate (and at
/// least this many times the default RTT)...
const FAILURE_FACTOR: f64 = 2.0;
/// ...but repeated failures stop compounding at this many times the default RTT (3 s with the
/// 30 ms default), so an endpoint recovers within a few decay windows once it works again.
const FAILURE_CAP_FACTOR: f64 = 100.0;
/// Finagle's cost for an endpoint with requests in flight but no RTT estimate at all.
const PENALTY_NS: f64 = 1e14;

/// One endpoint of a balanced backend, with its load.
#[derive(Debug)]
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The peer's expected TLS identity, if it is meshed.
    pub identity: Option<Arc<str>>,
    /// Relative capacity ([`DEFAULT_WEIGHT`] is normal); 0 means unweighted.
    pub weight: u32,
    /// Metric labels from discovery.
    pub labels: BTreeMap<String, String>,
    default_rtt_ns: f64,
    decay_ns: f64,
    pending: AtomicU32,
    connections: AtomicU32,
    rtt: Mutex<RttEstimate>,
    /// Failure accrual: whether the endpoint is ejected.
    pub health: Health,
}

#[derive(Debug)]
struct RttEstimate {
    rtt_ns: f64,
    update_at: Instant,
}

/// A request in flight to an endpoint. Call [`InFlight::complete`] when the response arrives;
/// dropping it otherwise (an error, a cancellation) records a failure: an RTT of twice the
/// current estimate (at least twice the default RTT, at most 100 × it, or the time actually
/// taken if longer), which makes the endpoint less attractive until the penalty decays.
#[derive(Debug)]
#[must_use = "dropping an InFlight records a failure"]
pub struct InFlight {
    endpoint: Arc<Endpoint>,
    start: Instant,
    succeeded: bool,
    /// The request is the probe of an ejected endpoint.
    probe: bool,
    /// The outcome went to failure accrual.
    recorded: bool,
}

/// An open opaque connection to an endpoint; dropping it closes the count.
#[derive(Debug)]
#[must_use = "dropping a ConnGuard ends the connection's count"]
pub struct ConnGuard {
    endpoint: Arc<Endpoint>,
}

// === impl Endpoint ===

impl Endpoint {
    /// An endpoint with no load yet; its RTT estimate starts at `default_rtt` and moves over a
    /// `decay` window.
    pub fn new(
        addr: SocketAddr,
        identity: Option<String>,
        weight: u32,
        labels: BTreeMap<String, String>,
        default_rtt: Duration,
        decay: Duration,
    ) -> Self {
        Self {
            addr,
            identity: identity.map(Arc::from),
            weight,
            labels,
            default_rtt_ns: nanos(default_rtt),
            // A zero window would divide zero by zero; one nanosecond means "no memory".
            decay_ns: nanos(decay).max(1.0),
            pending: AtomicU32::new(0),
            connections: AtomicU32::new(0),
            rtt: Mutex::new(RttEstimate {
                rtt_ns: nanos(default_rtt),
                update_at: Instant::now(),
            }),
            health: Health::default(),
        }
    }

    /// Whether `other` describes the same endpoint (address, identity, weight, labels), so a
    /// discovery update can keep this one and its load state.
    pub fn same_as(&self, other: &Endpoint) -> bool {
        self.addr == other.addr
            && self.identity == other.identity
            && self.weight == other.weight
            && self.labels == other.labels
    }

    /// Starts a request: counts it as pending until the returned guard completes or drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.start_as(Admit::Ready)
    }

    /// [`Endpoint::start`] for a request [`Health::admit`] let through as `admit`.
    pub fn start_as(self: &Arc<Self>, admit: Admit) -> InFlight {
        self.pending.fetch_add(1, Ordering::AcqRel);
        InFlight {
            endpoint: self.clone(),
            start: Instant::now(),
            succeeded: false,
            probe: admit == Admit::Probe,
            recorded: false,
        }
    }

    /// Counts an open connection until the returned guard drops.
    pub fn open_connection(self: &Arc<Self>) -> ConnGuard {
        self.connections.fetch_add(1, Ordering::AcqRel);
        ConnGuard {
            endpoint: self.clone(),
        }
    }

    /// Requests in flight.
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Acquire)
    }

    /// Open connections.
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }

    /// The RTT estimate now (reading it decays it, as reading the load does).
    pub fn rtt_estimate(&self) -> Duration {
        Duration::from_nanos(self.decayed_rtt_ns() as u64)
    }

    /// The peak-EWMA load: RTT estimate (ns) × (pending + 1), as tower's `PeakEwma::load`.
    pub fn load(&self) -> f64 {
        let pending = self.pending();
        let estimate = self.decayed_rtt_ns();
        if estimate == 0.0 && pending > 0 {
            return PENALTY_NS + f64::from(pending);
        }
        estimate * f64::from(pending + 1)
    }

    /// [`Endpoint::load`] divided by the endpoint's relative weight; what P2C compares.
    pub fn cost(&self) -> f64 {
        self.weighted(self.load())
    }

    /// (open connections + 1) divided by the relative weight; what least-connections compares.
    pub fn connection_cost(&self) -> f64 {
        self.weighted(f64::from(self.connections()) + 1.0)
    }

    fn weighted(&self, cost: f64) -> f64 {
        if self.weight == 0 {
            return cost;
        }
        cost / (f64::from(self.weight) / f64::from(DEFAULT_WEIGHT))
    }

    fn estimate(&self) -> std::sync::MutexGuard<'_, RttEstimate> {
        // The estimate is two numbers; a panic while holding the lock cannot leave them torn.
        self.rtt.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decayed_rtt_ns(&self) -> f64 {
        self.estimate().update(0.0, self.decay_ns)
    }

    fn observe(&self, rtt_ns: f64) {
        self.estimate().update(rtt_ns, self.decay_ns);
    }

    fn observe_failure(&self, elapsed_ns: f64) {
        let mut estimate = self.estimate();
        let current = estimate.rtt_ns;
        let penalty = (FAILURE_FACTOR * current.max(self.default_rtt_ns))
            .min(FAILURE_CAP_FACTOR * self.default_rtt_ns)
            // Never below the current estimate: a failure must not make an endpoint look faster.
            .max(current)
            .max(elapsed_ns);
        estimate.update(penalty, self.decay_ns);
    }
}

impl RttEstimate {
    /// tower's `RttEstimate::update`: a peak is taken at once, anything else is blended in by
    /// how long it has been since the last update. Returns the new estimate.
    fn update(&mut self, rtt_ns: f64, decay_ns: f64) -> f64 {
        let now = Instant::now();
        if self.rtt_ns < rtt_ns {
            self.rtt_ns = rtt_ns;
        } else {
            let elapsed = nanos(now.saturating_duration_since(self.update_at));
            let decay = (-elapsed / decay_ns).exp();
            self.rtt_ns = self.rtt_ns * decay + rtt_ns * (1.0 - decay);
        }
        self.update_at = now;
        self.rtt_ns
    }
}

// === impl InFlight ===

impl InFlight {
    /// The response arrived: records the RTT.
    pub fn complete(mut self) {
        self.succeeded = true;
    }

    /// Records the outcome: the RTT (or a failure's penalty) and, under `accrual`, the
    /// endpoint's failure count. Returns the ejection a failure caused.
    pub fn finish(mut self, success: bool, accrual: Option<&FailureAccrual>) -> Option<Ejected> {
        self.succeeded = success;
        let accrual = accrual?;
        self.recorded = true;
        self.endpoint
            .health
            .record(success, self.probe, accrual, Instant::now())
    }

    /// The endpoint the request went to.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = nanos(self.start.elapsed());
        if self.succeeded {
            self.endpoint.observe(elapsed);
        } else {
            self.endpoint.observe_failure(elapsed);
        }
        self.endpoint.pending.fetch_sub(1, Ordering::AcqRel);
        if self.probe && !self.recorded {
            self.endpoint.health.release_probe();
        }
    }
}

impl ConnGuard {
    /// The endpoint connected to.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.endpoint.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

// === P2C ===

/// Picks an endpoint for a request: the cheaper by [`Endpoint::cost`] of two distinct ones
/// drawn at random. `None` only when there are none.
pub fn p2c_peak_ewma(endpoints: &[Arc<Endpoint>]) -> Option<&Arc<Endpoint>> {
    p2c_with(endpoints, &mut fastrand::Rng::new(), Endpoint::cost)
}

/// What [`p2c_available`] found.
#[derive(Debug)]
pub enum Pick<'a> {
    /// This endpoint, admitted as this.
    Endpoint(&'a Arc<Endpoint>, Admit),
    /// There are endpoints, but every one is ejected (or being probed).
    AllEjected,
    /// There are no endpoints.
    Empty,
}

/// [`p2c_peak_ewma`] over the endpoints failure accrual has not ejected. When none is
/// ejected (the usual case) this allocates nothing.
pub fn p2c_available(endpoints: &[Arc<Endpoint>]) -> Pick<'_> {
    if endpoints.is_empty() {
        return Pick::Empty;
    }
    if !endpoints.iter().any(|e| e.health.ejected()) {
        return match p2c_peak_ewma(endpoints) {
            Some(e) => Pick::Endpoint(e, Admit::Ready),
            None => Pick::Empty,
        };
    }
    let now = Instant::now();
    let mut candidates: Vec<&Arc<Endpoint>> = endpoints
        .iter()
        .filter(|e| e.health.available(now))
        .collect();
    let mut rng = fastrand::Rng::new();
    while !candidates.is_empty() {
        let i = pick_index(&candidates, &mut rng);
        let Some(&e) = candidates.get(i) else { break };
        match e.health.admit(now) {
            Admit::No => {
                // Another request claimed the probe meanwhile.
                candidates.swap_remove(i);
            }
            admit => return Pick::Endpoint(e, admit),
        }
    }
    Pick::AllEjected
}

/// P2C's choice among `candidates` by cost, as an index.
fn pick_index(candidates: &[&Arc<Endpoint>], rng: &mut fastrand::Rng) -> usize {
    match candidates.len() {
        0 | 1 => 0,
        n => {
            let i = rng.usize(..n);
            let j = rng.usize(..n - 1);
            let j = if j >= i { j + 1 } else { j };
            if candidates[j].cost() < candidates[i].cost() {
                j
            } else {
                i
            }
        }
    }
}

/// Picks an endpoint for an opaque connection: the one with fewer open connections (by
/// [`Endpoint::connection_cost`]) of two distinct ones drawn at random.
pub fn p2c_least_connections(endpoints: &[Arc<Endpoint>]) -> Option<&Arc<Endpoint>> {
    p2c_with(
        endpoints,
        &mut fastrand::Rng::new(),
        Endpoint::connection_cost,
    )
}

/// Power of two choices with the randomness and the cost given; on a tie the first draw wins.
pub fn p2c_with<'a>(
    endpoints: &'a [Arc<Endpoint>],
    rng: &mut fastrand::Rng,
    mut cost: impl FnMut(&Endpoint) -> f64,
) -> Option<&'a Arc<Endpoint>> {
    match endpoints.len() {
        0 => None,
        1 => endpoints.first(),
        n => {
            let i = rng.usize(..n);
            // Draw from the n - 1 others so the two are always distinct.
            let j = rng.usize(..n - 1);
            let j = if j >= i { j + 1 } else { j };
            let (a, b) = (endpoints.get(i)?, endpoints.get(j)?);
            if cost(b) < cost(a) { Some(b) } else { Some(a) }
        }
    }
}

fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}
