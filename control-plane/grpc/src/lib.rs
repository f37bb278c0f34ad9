//! The Weft control plane's gRPC services: linkerd2-proxy-api `destination.Destination`,
//! `outbound.OutboundPolicies` and `inbound.InboundServerPolicies`.
//!
//! The services read results only through the `Discover*` traits of `weft-controller-core`
//! (each a `tokio::sync::watch` channel per target) and turn them into protobuf messages. They
//! never block the index: a watch channel keeps only its latest value, so a slow client simply
//! skips intermediate states and receives the newest one when it reads again.
//!
//! [`serve`] runs all three on one listener, [`serve_with_incoming`] on a stream of accepted
//! connections (TLS); [`services`] builds them for a caller that wants its own
//! `tonic::transport::Server`.

#![forbid(unsafe_code)]

mod destination;
mod drain;
mod inbound;
mod outbound;
mod workload;

pub use destination::DestinationServer;
pub use inbound::InboundServerPolicyServer;
pub use outbound::OutboundPolicyServer;
pub use workload::{InvalidWorkload, Workload};

use drain::Drain;
use std::{future::Future, net::SocketAddr, time::Duration};
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::server::TcpIncoming;
use weft_controller_core::{DiscoverEndpoints, DiscoverInboundServer, DiscoverOutboundPolicy};

/// How the gRPC services interpret requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The cluster's DNS domain (`cluster.local`): `Destination.Get` paths and outbound
    /// authorities name services as `<svc>.<ns>.svc.<cluster_domain>:<port>`.
    pub cluster_domain: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".to_string(),
        }
    }
}

/// The three services over one discovery source, ready to be added to a
/// `tonic::transport::Server` with their `svc()` methods. Their streams end only when the
/// client goes away; [`serve`] also ends them on shutdown.
pub fn services<D>(
    discover: D,
    cluster_domain: String,
) -> (
    DestinationServer<D>,
    OutboundPolicyServer<D>,
    InboundServerPolicyServer<D>,
)
where
    D: DiscoverEndpoints + DiscoverOutboundPolicy + DiscoverInboundServer,
{
    services_with_drain(discover, cluster_domain, Drain::never())
}

fn services_with_drain<D>(
    discover: D,
    cluster_domain: String,
    drain: Drain,
) -> (
    DestinationServer<D>,
    OutboundPolicyServer<D>,
    InboundServerPolicyServer<D>,
)
where
    D: DiscoverEndpoints + DiscoverOutboundPolicy + DiscoverInboundServer,
{
    (
        DestinationServer::new(discover.clone(), cluster_domain.clone()).with_drain(drain.clone()),
        OutboundPolicyServer::new(discover.clone(), cluster_domain).with_drain(drain.clone()),
        InboundServerPolicyServer::new(discover).with_drain(drain),
    )
}

/// Binds `addr` and serves the three services until `shutdown` completes; see
/// [`serve_on_listener`].
pub async fn serve<D>(
    addr: SocketAddr,
    discover: D,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError>
where
    D: DiscoverEndpoints + DiscoverOutboundPolicy + DiscoverInboundServer,
{
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    serve_on_listener(listener, discover, config, shutdown).await
}

/// Serves the three services on `listener` until `shutdown` completes. On shutdown the server
/// stops accepting, ends every open watch stream (they would otherwise hold their connections
/// open forever) and returns once the connections are closed.
pub async fn serve_on_listener<D>(
    listener: TcpListener,
    discover: D,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError>
where
    D: DiscoverEndpoints + DiscoverOutboundPolicy + DiscoverInboundServer,
{
    let local = listener.local_addr().ok();
    // Updates are small and latency matters more than packet count.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tracing::info!(addr = ?local, "serving gRPC");
    serve_with_incoming(incoming, discover, config, shutdown).await
}

/// Serves the three services on the connections `incoming` yields (e.g. after a TLS
/// handshake) until `shutdown` completes, draining like [`serve_on_listener`].
pub async fn serve_with_incoming<D, I, IO, IE>(
    incoming: I,
    discover: D,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError>
where
    D: DiscoverEndpoints + DiscoverOutboundPolicy + DiscoverInboundServer,
    I: tokio_stream::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (signal, drain) = watch::channel(());
    let (dst, outbound, inbound) =
        services_with_drain(discover, config.cluster_domain, Drain::new(drain));
    tonic::transport::Server::builder()
        .add_service(dst.svc())
        .add_service(outbound.svc())
        .add_service(inbound.svc())
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            drop(signal);
        })
        .await
        .map_err(ServeError::Serve)
}

/// Why [`serve`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, or not a local address).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("gRPC server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
}

/// A protobuf duration, or `None` (logged) for one too long to encode.
pub(crate) fn duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d)
        .map_err(|error| tracing::warn!(%error, ?d, "duration does not fit protobuf"))
        .ok()
}
