//! `inbound.InboundServerPolicies`: the policy of one port of one pod.

mod convert;

use crate::{
    Workload,
    drain::{BoxStream, Drain},
};
use futures::stream;
use std::sync::Arc;
use tokio::sync::watch;
use weft_controller_core::{DiscoverInboundServer, InboundServer};
use weft_proto::inbound::{PortSpec, Server, inbound_server_policies_server};

/// Serves `inbound.InboundServerPolicies` from a [`DiscoverInboundServer`].
#[derive(Clone, Debug)]
pub struct InboundServerPolicyServer<D> {
    discover: D,
    drain: Drain,
}

impl<D: DiscoverInboundServer> InboundServerPolicyServer<D> {
    /// Serves inbound policy from `discover`.
    pub fn new(discover: D) -> Self {
        Self {
            discover,
            drain: Drain::never(),
        }
    }

    pub(crate) fn with_drain(mut self, drain: Drain) -> Self {
        self.drain = drain;
        self
    }

    /// The tonic service, to add to a `tonic::transport::Server`.
    pub fn svc(self) -> inbound_server_policies_server::InboundServerPoliciesServer<Self> {
        inbound_server_policies_server::InboundServerPoliciesServer::new(self)
    }

    fn subscribe(
        &self,
        spec: PortSpec,
    ) -> Result<watch::Receiver<Arc<InboundServer>>, tonic::Status> {
        let workload: Workload = spec
            .workload
            .parse()
            .map_err(|e| tonic::Status::invalid_argument(format!("{e}")))?;
        let port = u16::try_from(spec.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                tonic::Status::invalid_argument(format!(
                    "invalid port {}: expected 1-65535",
                    spec.port
                ))
            })?;
        tracing::debug!(%workload, port, "InboundServerPolicies");
        Ok(self
            .discover
            .inbound_server(&workload.namespace, &workload.pod, port))
    }
}

#[tonic::async_trait]
impl<D: DiscoverInboundServer> inbound_server_policies_server::InboundServerPolicies
    for InboundServerPolicyServer<D>
{
    async fn get_port(
        &self,
        request: tonic::Request<PortSpec>,
    ) -> Result<tonic::Response<Server>, tonic::Status> {
        let rx = self.subscribe(request.into_inner())?;
        let server = convert::server(&rx.borrow());
        Ok(tonic::Response::new(server))
    }

    type WatchPortStream = BoxStream<Server>;

    async fn watch_port(
        &self,
        request: tonic::Request<PortSpec>,
    ) -> Result<tonic::Response<Self::WatchPortStream>, tonic::Status> {
        let rx = self.subscribe(request.into_inner())?;
        // The current server at once, then each change; a slow client skips to the latest.
        let servers = stream::unfold((rx, true), |(mut rx, first)| async move {
            if !first {
                // A dropped sender ends the stream; the proxy reconnects.
                rx.changed().await.ok()?;
            }
            let server = convert::server(&rx.borrow_and_update());
            Some((Ok(server), (rx, false)))
        });
        Ok(tonic::Response::new(self.drain.wrap(servers)))
    }
}
