//! `destination.Destination`: the endpoints of a service port as a stream of updates.
//!
//! The contract (destination.proto's header): the first message is sent at once (`add` with all
//! endpoints, or `no_endpoints{exists}`), later messages are deltas, and `no_endpoints` is never
//! sent once an `add` has been, because a client clears its cache on `no_endpoints`. Removing the
//! last endpoint already means `no_endpoints{exists: true}`.

mod profile;
pub(crate) mod updates;

use crate::{
    OutboundPolicyServer,
    drain::{BoxStream, Drain},
};
use futures::{StreamExt, stream};
use std::{net::SocketAddr, sync::Arc};
use tokio::sync::watch;
use updates::Updates;
use weft_controller_core::{
    DiscoverEndpoints, DiscoverOutboundPolicy, EndpointSet, OutboundTarget, ServicePort,
};
use weft_proto::destination::{
    self as proto, DestinationProfile, GetDestination, Update, destination_server,
};

/// Serves `destination.Destination/Get` from a [`DiscoverEndpoints`].
#[derive(Clone, Debug)]
pub struct DestinationServer<D> {
    discover: D,
    cluster_domain: Arc<str>,
    drain: Drain,
}

impl<D: DiscoverEndpoints> DestinationServer<D> {
    /// Serves endpoints from `discover`; paths name services in `cluster_domain`.
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
    pub fn svc(self) -> destination_server::DestinationServer<Self> {
        destination_server::DestinationServer::new(self)
    }

    fn target(&self, path: &str) -> Result<ServicePort, tonic::Status> {
        ServicePort::parse_authority(path, &self.cluster_domain).map_err(|error| {
            tonic::Status::invalid_argument(format!("invalid Destination.Get path: {error}"))
        })
    }
}

#[tonic::async_trait]
impl<D> destination_server::Destination for DestinationServer<D>
where
    D: DiscoverEndpoints + DiscoverOutboundPolicy,
{
    type GetStream = BoxStream<Update>;

    async fn get(
        &self,
        request: tonic::Request<GetDestination>,
    ) -> Result<tonic::Response<Self::GetStream>, tonic::Status> {
        let GetDestination { path, .. } = request.into_inner();
        let target = self.target(&path)?;
        tracing::debug!(%target, "Destination.Get");
        let rx = self.discover.endpoints(&target);
        Ok(tonic::Response::new(self.drain.wrap(updates(rx))))
    }

    type GetProfileStream = BoxStream<DestinationProfile>;

    /// A profile carries only what the outbound policy API cannot: the service's retry budget
    /// (and its name and opaqueness). Routes come from `OutboundPolicies/Watch`.
    async fn get_profile(
        &self,
        request: tonic::Request<GetDestination>,
    ) -> Result<tonic::Response<Self::GetProfileStream>, tonic::Status> {
        let GetDestination { path, .. } = request.into_inner();
        let target = match path.parse::<SocketAddr>() {
            Ok(addr) => OutboundTarget::Addr(addr),
            Err(_) => {
                self.target(&path)?;
                OutboundTarget::Authority(path)
            }
        };
        tracing::debug!(?target, "Destination.GetProfile");
        let outbound =
            OutboundPolicyServer::new(self.discover.clone(), self.cluster_domain.clone());
        let mut last = None;
        let profiles = outbound.events(target)?.filter_map(move |event| {
            let next = event.map(profile::profile);
            // A policy change that leaves the profile as it was sends nothing.
            let send = match &next {
                Ok(p) if last.as_ref() == Some(p) => None,
                Ok(p) => {
                    last = Some(p.clone());
                    Some(next)
                }
                Err(_) => Some(next),
            };
            futures::future::ready(send)
        });
        Ok(tonic::Response::new(self.drain.wrap(profiles)))
    }
}

/// The update stream of one `Get`: the first message at once, then deltas against what this
/// stream has sent. Reading the channel only when the client is ready for another message means
/// a slow client costs nothing: it gets the delta to the latest set when it reads again.
fn updates(
    rx: watch::Receiver<Arc<EndpointSet>>,
) -> impl futures::Stream<Item = Result<Update, tonic::Status>> + Send + 'static {
    struct State {
        rx: watch::Receiver<Arc<EndpointSet>>,
        updates: Option<Updates>,
        queue: std::collections::VecDeque<proto::update::Update>,
    }
    let state = State {
        rx,
        updates: None,
        queue: Default::default(),
    };
    stream::unfold(state, |mut s| async move {
        loop {
            if let Some(update) = s.queue.pop_front() {
                let update = Update {
                    update: Some(update),
                };
                return Some((Ok(update), s));
            }
            match s.updates.as_mut() {
                None => {
                    let set = s.rx.borrow_and_update().clone();
                    let (updates, first) = Updates::first(&set);
                    s.updates = Some(updates);
                    s.queue.push_back(first);
                }
                Some(updates) => {
                    // A dropped sender ends the stream; the client reconnects and starts over.
                    s.rx.changed().await.ok()?;
                    let set = s.rx.borrow_and_update().clone();
                    s.queue.extend(updates.next(&set));
                }
            }
        }
    })
}
