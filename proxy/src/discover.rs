//! Follows the controller: outbound policy per original destination
//! (`OutboundPolicies/Watch`), endpoints per backend (`Destination/Get`), and inbound policy
//! per port of this pod (`InboundServerPolicies/WatchPort`).
//!
//! Each lookup starts one background task that keeps a watch channel current; connections
//! and requests only read the channel, so discovery never sits on the request path once a
//! target is known. If the controller goes away the tasks keep the last good values and
//! reconnect with backoff. Entries nobody has used for [`IDLE`] are dropped.

pub mod destination;
pub mod inbound;
pub mod outbound;
pub mod profile;

use crate::{
    balance::Endpoint,
    identity::Identity,
    inbound::InboundPolicy,
    policy::OutboundPolicy,
    retry::{Budget, BudgetParams},
};
use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, atomic::AtomicUsize},
    time::Duration,
};
use tokio::{sync::watch, task::JoinHandle, time::Instant};
use tonic::transport::{Channel, Endpoint as GrpcEndpoint};

/// How long an unused target or backend is kept before its watch is cancelled.
pub const IDLE: Duration = Duration::from_secs(600);

/// The endpoints of one backend, as last reported.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    /// Whether the controller has answered at all on the current or a previous stream.
    pub resolved: bool,
    /// `no_endpoints{exists:false}`: the controller does not know the service.
    pub not_found: bool,
    /// The endpoints, for balancing.
    pub endpoints: Arc<[Arc<Endpoint>]>,
}

/// A service's retry budget and the task that keeps it current from the service's profile.
type BudgetEntry = (Arc<Budget>, JoinHandle<()>);

/// Shared discovery state of one proxy.
#[derive(Debug)]
pub struct Discovery {
    channel: Channel,
    workload: String,
    /// How long a new target waits for its first policy before falling back to the original
    /// destination.
    pub timeout: Duration,
    targets: Mutex<HashMap<SocketAddr, Entry<Option<Arc<OutboundPolicy>>>>>,
    backends: Mutex<HashMap<String, Entry<Endpoints>>>,
    ports: Mutex<HashMap<u16, Entry<Option<Arc<InboundPolicy>>>>>,
    /// Retry budgets per original destination, kept current by `GetProfile`.
    budgets: Mutex<HashMap<SocketAddr, BudgetEntry>>,
    /// Requests waiting for each backend to have endpoints.
    queues: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Set when the controller is reached over mTLS: streams wait for the certificate.
    identity: Option<Arc<Identity>>,
}

#[derive(Debug)]
struct Entry<T> {
    tx: Arc<watch::Sender<T>>,
    task: JoinHandle<()>,
    used: Instant,
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the controller address is unusable.
#[derive(Debug, thiserror::Error)]
#[error("invalid controller address {addr:?}: {source}")]
pub struct BadAddr {
    addr: String,
    source: tonic::transport::Error,
}

impl Discovery {
    /// Discovery against the controller at `addr` (`host:port`), connecting lazily so the proxy
    /// starts even while the controller is down.
    pub fn new(
        addr: &str,
        workload: String,
        timeout: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Arc<Self>, BadAddr> {
        Self::with_identity(addr, workload, timeout, metrics, None)
    }

    /// Discovery as with [`Discovery::new`]; with an `identity`, over TLS 1.3 presenting its
    /// certificate and checking the controller's (see [`Identity::controller_connector`]), and
    /// no stream starts before the identity is certified.
    pub fn with_identity(
        addr: &str,
        workload: String,
        timeout: Duration,
        metrics: Arc<crate::metrics::Metrics>,
        identity: Option<Arc<Identity>>,
    ) -> Result<Arc<Self>, BadAddr> {
        // The scheme stays `http`: TLS is the connector's job, not tonic's.
        let endpoint = GrpcEndpoint::from_shared(format!("http://{addr}"))
            .map_err(|source| BadAddr {
                addr: addr.to_string(),
                source,
            })?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let channel = match &identity {
            Some(identity) => endpoint.connect_with_connector_lazy(identity.controller_connector()),
            None => endpoint.connect_lazy(),
        };
        let this = Arc::new(Self {
            channel,
            workload,
            timeout,
            targets: Mutex::default(),
            backends: Mutex::default(),
            ports: Mutex::default(),
            budgets: Mutex::default(),
            queues: Mutex::default(),
            metrics,
            identity,
        });
        let weak = Arc::downgrade(&this);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(IDLE / 4);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                this.sweep();
            }
        });
        Ok(this)
    }

    /// The outbound policy of `target`: `None` until the controller first answers.
    pub fn outbound(&self, target: SocketAddr) -> watch::Receiver<Option<Arc<OutboundPolicy>>> {
        let mut targets = lock(&self.targets);
        if let Some(e) = targets.get_mut(&target) {
            e.used = Instant::now();
            return e.tx.subscribe();
        }
        let (tx, rx) = watch::channel(None);
        let tx = Arc::new(tx);
        let task = tokio::spawn(self.after_certified(outbound::watch(
            self.channel.clone(),
            self.workload.clone(),
            target,
            tx.clone(),
            self.metrics.clone(),
        )));
        targets.insert(
            target,
            Entry {
                tx,
                task,
                used: Instant::now(),
            },
        );
        rx
    }

    /// The inbound policy of this pod's `port` (`WatchPort{workload, port}`): `None` until the
    /// controller first answers with a valid policy.
    pub fn inbound(&self, port: u16) -> watch::Receiver<Option<Arc<InboundPolicy>>> {
        let mut ports = lock(&self.ports);
        if let Some(e) = ports.get_mut(&port) {
            e.used = Instant::now();
            return e.tx.subscribe();
        }
        let (tx, rx) = watch::channel(None);
        let tx = Arc::new(tx);
        let task = tokio::spawn(self.after_certified(inbound::watch(
            self.channel.clone(),
            self.workload.clone(),
            port,
            tx.clone(),
            self.metrics.clone(),
        )));
        ports.insert(
            port,
            Entry {
                tx,
                task,
                used: Instant::now(),
            },
        );
        rx
    }

    /// The endpoints of the backend `path` (a `Destination.Get` path).
    pub fn endpoints(
        &self,
        path: &str,
        rtt: Duration,
        decay: Duration,
    ) -> watch::Receiver<Endpoints> {
        let mut backends = lock(&self.backends);
        if let Some(e) = backends.get_mut(path) {
            e.used = Instant::now();
            return e.tx.subscribe();
        }
        let (tx, rx) = watch::channel(Endpoints::default());
        let tx = Arc::new(tx);
        let task = tokio::spawn(self.after_certified(destination::watch(
            self.channel.clone(),
            path.to_string(),
            destination::Load { rtt, decay },
            tx.clone(),
            self.metrics.clone(),
        )));
        backends.insert(
            path.to_string(),
            Entry {
                tx,
                task,
                used: Instant::now(),
            },
        );
        rx
    }

    /// Runs `watch` once the identity (if any) is certified: the controller wants a client
    /// certificate, and a stream started without one would only fail and back off. Until
    /// then a target waits as for a controller that has not answered yet.
    /// The retry budget of the service behind `target`, shared by every connection to it.
    /// The first call starts following the service's profile for its budget parameters.
    pub fn budget(&self, target: SocketAddr) -> Arc<Budget> {
        let mut budgets = lock(&self.budgets);
        if let Some((b, _)) = budgets.get(&target) {
            return b.clone();
        }
        let budget = Arc::new(Budget::new(BudgetParams::default()));
        let task = tokio::spawn(self.after_certified(profile::watch(
            self.channel.clone(),
            self.workload.clone(),
            target,
            budget.clone(),
            self.metrics.clone(),
        )));
        budgets.insert(target, (budget.clone(), task));
        budget
    }

    /// How many requests wait for `path` to have endpoints (see `Queue`).
    pub fn queue(&self, path: &str) -> Arc<AtomicUsize> {
        let mut queues = lock(&self.queues);
        if let Some(q) = queues.get(path) {
            return q.clone();
        }
        let q = Arc::new(AtomicUsize::new(0));
        queues.insert(path.to_string(), q.clone());
        q
    }

    fn after_certified<F>(&self, watch: F) -> impl Future<Output = ()> + Send + 'static
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let identity = self.identity.clone();
        async move {
            if let Some(identity) = identity {
                identity.certified().await;
            }
            watch.await;
        }
    }

    /// Drops entries that no connection holds and nobody looked up for [`IDLE`].
    fn sweep(&self) {
        let now = Instant::now();
        lock(&self.targets)
            .retain(|_, e| e.tx.receiver_count() > 0 || now.duration_since(e.used) < IDLE);
        lock(&self.backends)
            .retain(|_, e| e.tx.receiver_count() > 0 || now.duration_since(e.used) < IDLE);
        lock(&self.ports)
            .retain(|_, e| e.tx.receiver_count() > 0 || now.duration_since(e.used) < IDLE);
        // Budgets only connections hold; once none does, a new connection starts afresh.
        lock(&self.budgets).retain(|_, (b, task)| {
            let keep = Arc::strong_count(b) > 2;
            if !keep {
                task.abort();
            }
            keep
        });
        lock(&self.queues).retain(|_, q| Arc::strong_count(q) > 1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another task panicked while holding it; the caches stay valid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Exponential backoff with jitter between reconnects: 100 ms doubling to 5 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::MIN }
    }
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    /// Back to the shortest wait, after a success.
    pub fn reset(&mut self) {
        self.next = Self::MIN;
    }

    /// Waits, then lengthens the next wait.
    pub async fn wait(&mut self) {
        let jitter = self.next.mul_f64(fastrand::f64() * 0.5);
        tokio::time::sleep(self.next + jitter).await;
        self.next = (self.next * 2).min(Self::MAX);
    }
}
