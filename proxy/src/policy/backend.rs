//! Backends and how a route spreads requests (or connections) over them.

#[cfg(test)]
mod tests;

use super::{At, Filter, InvalidPolicy, duration, meta_name, required};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use weft_proto::{destination, outbound};

/// Peak-EWMA's starting RTT estimate when the controller does not set one.
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);
/// Peak-EWMA's decay window when the controller does not set one.
pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);

/// How a rule (or an opaque route) picks a backend.
#[derive(Clone, Debug, Default)]
pub enum Distribution {
    /// No backends: requests fail (the controller sends this for invalid backend references).
    #[default]
    Empty,
    /// Use the first backend that is available, in order.
    FirstAvailable(Vec<RouteBackend>),
    /// Pick at random, proportionally to weight (a traffic split).
    RandomAvailable {
        /// The backends.
        backends: Vec<RouteBackend>,
        /// One weight per backend; zero means never picked.
        weights: Vec<u32>,
    },
}

/// A backend as one rule uses it, with the filters applied on the way to it.
#[derive(Clone, Debug)]
pub struct RouteBackend {
    /// The backend.
    pub backend: Arc<Backend>,
    /// Filters applied only when this backend is picked.
    pub filters: Vec<Filter>,
}

/// Where traffic goes: one address, or a load-balanced service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Backend {
    /// The name for the `dst_backend` metric label: `shop/web-v2:8080`, or the forward address.
    pub name: Arc<str>,
    /// How to reach it.
    pub kind: BackendKind,
}

/// How to reach a backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Connect to one address.
    Forward {
        /// The address.
        addr: SocketAddr,
        /// The peer's expected TLS identity (a DNS-like name), if it is meshed.
        identity: Option<Arc<str>>,
    },
    /// Balance over the endpoints `Destination.Get(path)` reports, with P2C peak-EWMA.
    Balancer {
        /// The `Destination.Get` path, e.g. `web.shop.svc.cluster.local:8080`.
        path: String,
        /// Peak-EWMA's RTT estimate for an endpoint with no observations yet.
        default_rtt: Duration,
        /// Peak-EWMA's decay window.
        decay: Duration,
        /// How requests wait while the backend has no endpoint to send to.
        queue: Queue,
    },
    /// The controller sent no way to reach it (an invalid backend reference); requests fail
    /// with 500 and connections are closed.
    Unavailable,
}

/// How many requests may wait for a balanced backend to have an endpoint, and for how long
/// (the proto's `Queue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Queue {
    /// Requests that may wait at once; more are answered 503 at once.
    pub capacity: usize,
    /// How long a request waits for an endpoint before it is answered 503.
    pub failfast: Duration,
}

impl Default for Queue {
    /// Linkerd's defaults: 100 requests, 3 s.
    fn default() -> Self {
        Self {
            capacity: 100,
            failfast: Duration::from_secs(3),
        }
    }
}

/// What to do with connections that are not HTTP.
#[derive(Clone, Debug)]
pub struct OpaqueRoutes {
    /// The route's name (`default:...` for the controller's default route).
    pub name: String,
    /// Route-level filters; see [`super::denied`].
    pub filters: Vec<Filter>,
    /// Where connections go.
    pub distribution: Distribution,
}

// === impl Distribution ===

impl Distribution {
    /// Picks a backend: the first for `FirstAvailable` (the caller moves on to the next one if it
    /// is unavailable), a weighted random one for `RandomAvailable`, `None` when there is none
    /// or every weight is zero.
    pub fn pick(&self) -> Option<&RouteBackend> {
        self.pick_with(fastrand::u64(..))
    }

    /// [`Distribution::pick`] with the random number given: `r` modulo the total weight selects
    /// the backend whose cumulative weight range holds it.
    pub fn pick_with(&self, r: u64) -> Option<&RouteBackend> {
        match self {
            Self::Empty => None,
            Self::FirstAvailable(backends) => backends.first(),
            Self::RandomAvailable { backends, weights } => {
                let weighted = || backends.iter().zip(weights.iter().map(|&w| u64::from(w)));
                let total: u64 = weighted().map(|(_, w)| w).sum();
                if total == 0 {
                    return None;
                }
                let mut r = r % total;
                for (backend, weight) in weighted() {
                    if r < weight {
                        return Some(backend);
                    }
                    r -= weight;
                }
                None
            }
        }
    }

    /// Every backend, in order, whatever its weight (e.g. to start discovery for each).
    pub fn backends(&self) -> &[RouteBackend] {
        match self {
            Self::Empty => &[],
            Self::FirstAvailable(backends) | Self::RandomAvailable { backends, .. } => backends,
        }
    }
}

// === impl Backend ===

impl Backend {
    /// A backend that connects to `addr` without identity.
    pub fn forward(addr: SocketAddr) -> Self {
        Self {
            name: addr.to_string().into(),
            kind: BackendKind::Forward {
                addr,
                identity: None,
            },
        }
    }
}

impl TryFrom<outbound::Backend> for Backend {
    type Error = InvalidPolicy;

    fn try_from(proto: outbound::Backend) -> Result<Self, Self::Error> {
        use outbound::backend::{Kind, balance_p2c::Load, endpoint_discovery};
        let meta = meta_name(proto.metadata.as_ref());
        let kind = match proto.kind {
            // The controller's way to mark a backend it cannot resolve (a missing Service, an
            // unsupported backendRef): its filters answer the request with the reason.
            None => BackendKind::Unavailable,
            Some(Kind::Forward(addr)) => forward(addr).at("forward")?,
            Some(Kind::Balancer(p2c)) => {
                let discovery = required(p2c.discovery, "discovery").at("balancer")?;
                let endpoint_discovery::Kind::Dst(dst) =
                    required(discovery.kind, "kind").at("balancer.discovery")?;
                if dst.path.is_empty() {
                    return Err(InvalidPolicy::value("path", "", "a Destination.Get path")
                        .within("balancer.discovery.dst.path"));
                }
                // Penalty-peak-EWMA's extra knobs (429-aware penalties) are not implemented;
                // its RTT parameters still apply.
                let (rtt, decay) = match p2c.load {
                    Some(Load::PeakEwma(p)) => (p.default_rtt, p.decay),
                    Some(Load::PenaltyPeakEwma(p)) => (p.default_rtt, p.decay),
                    None => (None, None),
                };
                let queue = match proto.queue {
                    None => Queue::default(),
                    Some(q) => Queue {
                        // The proto's zero means unset: a zero capacity would refuse every
                        // request while the backend has no endpoints.
                        capacity: match q.capacity {
                            0 => Queue::default().capacity,
                            n => n as usize,
                        },
                        failfast: duration(q.failfast_timeout, "failfast_timeout")
                            .at("queue")?
                            .unwrap_or(Queue::default().failfast),
                    },
                };
                BackendKind::Balancer {
                    queue,
                    path: dst.path,
                    default_rtt: duration(rtt, "default_rtt")
                        .at("balancer.load")?
                        .unwrap_or(DEFAULT_RTT),
                    decay: duration(decay, "decay")
                        .at("balancer.load")?
                        .unwrap_or(DEFAULT_DECAY),
                }
            }
        };
        let name = meta.unwrap_or_else(|| match &kind {
            BackendKind::Forward { addr, .. } => addr.to_string(),
            BackendKind::Balancer { path, .. } => path.clone(),
            BackendKind::Unavailable => "unavailable".to_string(),
        });
        Ok(Self {
            name: name.into(),
            kind,
        })
    }
}

fn forward(proto: destination::WeightedAddr) -> Result<BackendKind, InvalidPolicy> {
    let tcp = required(proto.addr, "addr")?;
    if tcp.port > u32::from(u16::MAX) {
        return Err(InvalidPolicy::value("port", tcp.port, "0-65535").within("addr.port"));
    }
    let addr = SocketAddr::try_from(tcp).map_err(|_| {
        InvalidPolicy::value("address", format!("{tcp:?}"), "an IPv4 or IPv6 address")
            .within("addr")
    })?;
    let identity = proto
        .tls_identity
        .and_then(crate::discover::destination::tls_server_name);
    Ok(BackendKind::Forward {
        addr,
        identity: identity.map(Arc::from),
    })
}

// === impl RouteBackend ===

impl RouteBackend {
    /// A backend with no filters.
    pub fn new(backend: Arc<Backend>) -> Self {
        Self {
            backend,
            filters: Vec::new(),
        }
    }
}

// === impl OpaqueRoutes ===

impl OpaqueRoutes {
    /// No backend: every connection is refused.
    pub fn empty() -> Self {
        Self {
            name: "none".to_string(),
            filters: Vec::new(),
            distribution: Distribution::Empty,
        }
    }

    /// Every connection to `backend`.
    pub fn forward(backend: Arc<Backend>) -> Self {
        Self {
            name: "default:forward".to_string(),
            filters: Vec::new(),
            distribution: Distribution::FirstAvailable(vec![RouteBackend::new(backend)]),
        }
    }
}
