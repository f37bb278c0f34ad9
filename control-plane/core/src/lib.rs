//! Domain types of the Weft control plane: what the index computes and the gRPC layer serves.
//!
//! Nothing here knows about Kubernetes objects or protobuf. The index turns kube objects into
//! these types and publishes them on `tokio::sync::watch` channels; the gRPC services read the
//! channels through the `Discover*` traits and turn the values into linkerd2-proxy-api messages.

#![forbid(unsafe_code)]

pub mod endpoints;
pub mod inbound;
pub mod outbound;
pub mod resilience;
pub mod service;

pub use endpoints::{Endpoint, EndpointSet, ProtocolHint};
pub use inbound::{
    Authentication, Authorization, DefaultPolicy, InboundProtocol, InboundRoute, InboundRule,
    InboundServer, Network,
};
pub use outbound::{OutboundPolicy, OutboundTarget};
pub use service::{ParseAuthorityError, ServicePort, ServiceRef};

use std::{net::SocketAddr, sync::Arc};
use tokio::sync::watch;

/// Endpoints of service ports (`destination.Destination/Get`).
pub trait DiscoverEndpoints: Clone + Send + Sync + 'static {
    /// The endpoints of `target`, updated as they change. A port of a service that does not
    /// exist (yet) still gets a channel, with `exists: false`, so a client that subscribed early
    /// sees the service appear.
    fn endpoints(&self, target: &ServicePort) -> watch::Receiver<Arc<EndpointSet>>;
}

/// Outbound policy of a service port, looked up by ClusterIP:port or authority
/// (`outbound.OutboundPolicies/Watch`).
pub trait DiscoverOutboundPolicy: Clone + Send + Sync + 'static {
    /// The policy of the service port `target` names, or `None` if no service has that
    /// address (the proxy should then forward to the original destination).
    fn outbound_policy(
        &self,
        target: &OutboundTarget,
    ) -> Option<watch::Receiver<Arc<OutboundPolicy>>>;

    /// What is known about the pod at `addr`'s IP, for an address no service has: its TLS
    /// identity and protocol hint if it is meshed (as a `Destination.Get` endpoint would carry
    /// them), or `None` if no pod has that IP. Apps that dial pod IPs directly (headless
    /// services, StatefulSets) still get mTLS this way.
    fn endpoint(&self, addr: SocketAddr) -> Option<Endpoint>;

    /// Changes whenever the set of service addresses changes, or what [`Self::endpoint`] knows
    /// about pod IPs, so a watch on an unknown target can look again.
    fn services_changed(&self) -> watch::Receiver<u64>;
}

/// Inbound policy of a port of a pod (`inbound.InboundServerPolicies/WatchPort`).
pub trait DiscoverInboundServer: Clone + Send + Sync + 'static {
    /// The server for `port` on the pod `namespace/name`, updated as policy changes.
    fn inbound_server(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> watch::Receiver<Arc<InboundServer>>;
}
