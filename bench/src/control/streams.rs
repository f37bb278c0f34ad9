//! Many proxies' worth of streams from one client: an `OutboundPolicies.Watch` and a
//! `Destination.Get` per service, spread over HTTP/2 connections as proxies would spread them,
//! each read by its own task until dropped.

use super::scale::{self, Scale};
use std::{
    net::{SocketAddr, SocketAddrV4},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{sync::mpsc, task::JoinSet};
use tonic::transport::{Channel, Endpoint};
use weft_proto::{
    destination::{GetDestination, destination_client::DestinationClient, update},
    outbound::{TrafficSpec, outbound_policies_client::OutboundPoliciesClient, traffic_spec},
};

/// Why the streams could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// A connection failed.
    #[error("cannot connect to the controller at {addr}: {source}")]
    Connect {
        /// The gRPC address.
        addr: SocketAddr,
        /// Why.
        source: tonic::transport::Error,
    },
    /// A call was refused or its first message did not come.
    #[error("{call} for {service}: {why}")]
    Call {
        /// `OutboundPolicies.Watch` or `Destination.Get`.
        call: &'static str,
        /// The service.
        service: String,
        /// What happened.
        why: String,
    },
}

/// Open streams, each with its first message received. Dropping it ends them.
pub(crate) struct Streams {
    /// Messages received after the first one, on every stream.
    pub(crate) later_messages: Arc<AtomicU64>,
    /// When each later message of the watched service's policy stream arrived.
    pub(crate) watched: mpsc::UnboundedReceiver<Instant>,
    /// HTTP/2 connections used.
    pub(crate) connections: usize,
    /// How long opening them all took, first messages included.
    pub(crate) opened_in: Duration,
    _readers: JoinSet<()>,
}

/// Opens, for every service of `scale`, a policy watch (by ClusterIP, as a proxy asks) and an
/// endpoints stream (by name), at most `per_connection` streams on each connection, and checks
/// each first message. Later messages on the policy stream of service `watched` (if any) are
/// reported on [`Streams::watched`].
pub(crate) async fn open(
    addr: SocketAddr,
    scale: &Scale,
    per_connection: usize,
    watched: Option<usize>,
) -> Result<Streams, StreamError> {
    let started = Instant::now();
    let total = scale.services * 2;
    let per_connection = per_connection.max(1);
    let mut channels = Vec::new();
    for _ in 0..total.div_ceil(per_connection) {
        channels.push(connect(addr).await?);
    }
    let later_messages = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let mut readers = JoinSet::new();
    for i in 0..scale.services {
        let service = scale::service(i);
        let namespace = scale::namespace(scale.namespace_of(i));
        let call = |call, why: String| StreamError::Call {
            call,
            service: format!("{namespace}/{service}"),
            why,
        };

        let channel = channels[(2 * i) / per_connection].clone();
        let target = SocketAddr::V4(SocketAddrV4::new(scale::cluster_ip(i), scale::PORT));
        let spec = TrafficSpec {
            source_workload: format!("{namespace}/{service}-0"),
            target: Some(traffic_spec::Target::Addr(target.into())),
        };
        const WATCH: &str = "OutboundPolicies.Watch";
        let mut policies = OutboundPoliciesClient::new(channel)
            .watch(spec)
            .await
            .map_err(|s| call(WATCH, s.to_string()))?
            .into_inner();
        match policies.message().await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(call(WATCH, "ended before its first message".into())),
            Err(s) => return Err(call(WATCH, s.to_string())),
        }
        let (count, tx) = (
            later_messages.clone(),
            (Some(i) == watched).then(|| tx.clone()),
        );
        readers.spawn(async move {
            while let Ok(Some(_)) = policies.message().await {
                count.fetch_add(1, Ordering::Relaxed);
                if let Some(tx) = &tx {
                    let _ = tx.send(Instant::now());
                }
            }
        });

        let channel = channels[(2 * i + 1) / per_connection].clone();
        const GET: &str = "Destination.Get";
        let path = format!("{service}.{namespace}.svc.cluster.local:{}", scale::PORT);
        let request = GetDestination {
            scheme: "k8s".to_string(),
            path,
            context_token: String::new(),
        };
        let mut endpoints = DestinationClient::new(channel)
            .get(request)
            .await
            .map_err(|s| call(GET, s.to_string()))?
            .into_inner();
        match endpoints.message().await {
            Ok(Some(u)) => match u.update {
                Some(update::Update::Add(set)) if set.addrs.len() == scale.endpoints => {}
                other => {
                    let why = format!("expected {} endpoints, got {other:?}", scale.endpoints);
                    return Err(call(GET, why));
                }
            },
            Ok(None) => return Err(call(GET, "ended before its first message".into())),
            Err(s) => return Err(call(GET, s.to_string())),
        }
        let count = later_messages.clone();
        readers.spawn(async move {
            while let Ok(Some(_)) = endpoints.message().await {
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    Ok(Streams {
        later_messages,
        watched: rx,
        connections: channels.len(),
        opened_in: started.elapsed(),
        _readers: readers,
    })
}

async fn connect(addr: SocketAddr) -> Result<Channel, StreamError> {
    let connect = |source| StreamError::Connect { addr, source };
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(connect)?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(connect)
}

impl Streams {
    /// Messages received after the first ones, on all streams.
    pub(crate) fn later(&self) -> u64 {
        self.later_messages.load(Ordering::Relaxed)
    }
}
