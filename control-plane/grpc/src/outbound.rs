//! `outbound.OutboundPolicies`: how a proxy routes traffic to a service port.
//!
//! A target is a ClusterIP:port (`addr`) or a service name (`authority`). A known target gets its
//! policy at once and again on every change. An unknown *address* is not a service: following
//! Linkerd's policy controller, it gets a fallback policy that forwards to the address itself
//! (see `convert::fallback`) — with the identity of the pod at that IP, if it is meshed — and
//! the stream switches to the real policy if a service with that address appears later. An unknown *authority* names nothing to forward to, so it is
//! `NotFound`, which proxies take as "no policy".

mod convert;
mod filters;
pub(crate) mod matches;
pub(crate) mod routes;

use crate::drain::{BoxStream, Drain};
use futures::{StreamExt, stream};
use std::{net::SocketAddr, sync::Arc};
use tokio::sync::watch;
use weft_controller_core::{
    DiscoverOutboundPolicy, Endpoint, OutboundPolicy, OutboundTarget, ServicePort,
};
use weft_proto::outbound::{
    self as proto, TrafficSpec, outbound_policies_server, traffic_spec::Target,
};

/// Serves `outbound.OutboundPolicies` from a [`DiscoverOutboundPolicy`].
#[derive(Clone, Debug)]
pub struct OutboundPolicyServer<D> {
    discover: D,
    cluster_domain: Arc<str>,
    drain: Drain,
}

/// What a lookup found.
enum Lookup {
    /// A service port's policy.
    Found(watch::Receiver<Arc<OutboundPolicy>>),
    /// No service has this address; the pod at it, if any; `changed` fires when services or
    /// pod IPs change. It was subscribed before the lookup, so no change between the two is
    /// missed.
    Fallback(SocketAddr, Option<Endpoint>, watch::Receiver<u64>),
}

impl<D: DiscoverOutboundPolicy> OutboundPolicyServer<D> {
    /// Serves policy from `discover`; authorities name services in `cluster_domain`.
    pub fn new(discover: D, cluster_domain: impl Into<Arc<str>>) -> Self {
        Self {
            discover,
            cluster_domain: cluster_domain.into(),
            drain: Drain::never(),
        }
    }

    pub(crate) fn with_drain(mut self, drain: Drain) -> Self {
        self.drain = drain;
        self
    }

    /// The tonic service, to add to a `tonic::transport::Server`.
    pub fn svc(self) -> outbound_policies_server::OutboundPoliciesServer<Self> {
        outbound_policies_server::OutboundPoliciesServer::new(self)
    }

    fn lookup(&self, target: &OutboundTarget) -> Result<Lookup, tonic::Status> {
        let mut changed = self.discover.services_changed();
        changed.borrow_and_update();
        if let Some(rx) = self.discover.outbound_policy(target) {
            return Ok(Lookup::Found(rx));
        }
        match target {
            OutboundTarget::Addr(addr) => Ok(Lookup::Fallback(
                *addr,
                self.discover.endpoint(*addr),
                changed,
            )),
            OutboundTarget::Authority(authority) => Err(
                match ServicePort::parse_authority(authority, &self.cluster_domain) {
                    Err(error) => tonic::Status::not_found(format!("no policy: {error}")),
                    Ok(sp) => tonic::Status::not_found(format!(
                        "no service {} with port {} (asked for {authority:?})",
                        sp.service, sp.port
                    )),
                },
            ),
        }
    }
}

/// The target of a `TrafficSpec`, checked.
fn target(spec: TrafficSpec) -> Result<OutboundTarget, tonic::Status> {
    const EXPECTED: &str = "expected addr (a ClusterIP and port) or authority (<svc>.<ns>.svc.<cluster-domain>:<port>)";
    match spec.target {
        None => Err(tonic::Status::invalid_argument(format!(
            "TrafficSpec has no target; {EXPECTED}"
        ))),
        Some(Target::Addr(tcp)) => {
            let port = tcp.port;
            if !(1..=u32::from(u16::MAX)).contains(&port) {
                return Err(tonic::Status::invalid_argument(format!(
                    "invalid target port {port}: expected 1-65535"
                )));
            }
            let addr = SocketAddr::try_from(tcp).map_err(|error| {
                tonic::Status::invalid_argument(format!("invalid target address: {error}"))
            })?;
            Ok(OutboundTarget::Addr(addr))
        }
        Some(Target::Authority(a)) if a.is_empty() => Err(tonic::Status::invalid_argument(
            format!("TrafficSpec has an empty authority; {EXPECTED}"),
        )),
        Some(Target::Authority(a)) => Ok(OutboundTarget::Authority(a)),
    }
}

#[tonic::async_trait]
impl<D: DiscoverOutboundPolicy> outbound_policies_server::OutboundPolicies
    for OutboundPolicyServer<D>
{
    async fn get(
        &self,
        request: tonic::Request<TrafficSpec>,
    ) -> Result<tonic::Response<proto::OutboundPolicy>, tonic::Status> {
        let target = target(request.into_inner())?;
        let policy = match self.lookup(&target)? {
            Lookup::Found(rx) => convert::policy(&rx.borrow()),
            Lookup::Fallback(addr, pod, _) => convert::fallback(addr, pod.as_ref()),
        };
        Ok(tonic::Response::new(policy))
    }

    type WatchStream = BoxStream<proto::OutboundPolicy>;

    async fn watch(
        &self,
        request: tonic::Request<TrafficSpec>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        let target = target(request.into_inner())?;
        tracing::debug!(?target, "OutboundPolicies.Watch");
        let policies = self.events(target)?.map(|event| {
            event.map(|e| match e {
                Event::Policy(p) => convert::policy(&p),
                Event::Fallback(addr, pod) => convert::fallback(addr, pod.as_ref()),
            })
        });
        Ok(tonic::Response::new(self.drain.wrap(policies)))
    }
}

/// What a target resolves to, as it changes.
pub(crate) enum Event {
    /// A service port's policy.
    Policy(Arc<OutboundPolicy>),
    /// Not a service: forward to the address (the pod there, if any).
    Fallback(SocketAddr, Option<Endpoint>),
}

impl<D: DiscoverOutboundPolicy> OutboundPolicyServer<D> {
    /// What `target` resolves to: at once, then again on every change. Fails at once for an
    /// unknown authority; ends with an error if a named service goes away.
    pub(crate) fn events(
        &self,
        target: OutboundTarget,
    ) -> Result<
        impl futures::Stream<Item = Result<Event, tonic::Status>> + Send + 'static,
        tonic::Status,
    > {
        let phase = Phase::from(self.lookup(&target)?);
        let state = State {
            server: self.clone(),
            target,
            phase,
            fallback_sent: None,
        };
        Ok(stream::unfold(state, |mut s| async move {
            let next = s.next().await?;
            Some((next, s))
        }))
    }
}

// === watch stream ===

/// Where a watch stream is.
enum Phase {
    /// Look the target up again (its service went away, or services changed).
    Lookup,
    /// Following a service port's policy; `send_current` for the first message.
    Watch {
        rx: watch::Receiver<Arc<OutboundPolicy>>,
        send_current: bool,
    },
    /// Not a service: send the fallback (for the pod at the address, if any), then wait for
    /// services or pod IPs to change.
    Fallback(SocketAddr, Option<Endpoint>, watch::Receiver<u64>),
    /// Waiting for services to change.
    Unknown(watch::Receiver<u64>),
    /// Finished.
    Done,
}

impl From<Lookup> for Phase {
    fn from(lookup: Lookup) -> Self {
        match lookup {
            Lookup::Found(rx) => Phase::Watch {
                rx,
                send_current: true,
            },
            Lookup::Fallback(addr, pod, changed) => Phase::Fallback(addr, pod, changed),
        }
    }
}

struct State<D> {
    server: OutboundPolicyServer<D>,
    target: OutboundTarget,
    phase: Phase,
    /// The last message was the fallback for this pod (or no pod), so another one for the
    /// same would be redundant.
    fallback_sent: Option<Option<Endpoint>>,
}

impl<D: DiscoverOutboundPolicy> State<D> {
    /// The next event, or `None` to end the stream.
    async fn next(&mut self) -> Option<Result<Event, tonic::Status>> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Lookup => match self.server.lookup(&self.target) {
                    Ok(lookup) => self.phase = lookup.into(),
                    // A named service went away: the proxy should fall back on its own.
                    Err(status) => return Some(Err(status)),
                },
                Phase::Watch {
                    mut rx,
                    send_current,
                } => {
                    // A dropped sender means the service is gone: look again.
                    if !send_current && rx.changed().await.is_err() {
                        self.phase = Phase::Lookup;
                        continue;
                    }
                    let policy = rx.borrow_and_update().clone();
                    self.phase = Phase::Watch {
                        rx,
                        send_current: false,
                    };
                    self.fallback_sent = None;
                    return Some(Ok(Event::Policy(policy)));
                }
                Phase::Fallback(addr, pod, changed) => {
                    self.phase = Phase::Unknown(changed);
                    if self.fallback_sent.as_ref() != Some(&pod) {
                        self.fallback_sent = Some(pod.clone());
                        return Some(Ok(Event::Fallback(addr, pod)));
                    }
                }
                Phase::Unknown(mut changed) => {
                    // The index is gone (shutting down): end, the proxy reconnects.
                    changed.changed().await.ok()?;
                    self.phase = Phase::Lookup;
                }
            }
        }
    }
}
