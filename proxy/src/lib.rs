//! The Weft sidecar proxy: takes the pod's redirected connections, detects their protocol and
//! forwards them (inbound to the local app, outbound to where the app was going), exporting
//! metrics on the admin server and draining gracefully on shutdown.

#![forbid(unsafe_code)]

pub mod admin;
pub mod balance;
pub mod config;
pub mod detect;
pub mod discover;
pub mod drain;
pub mod http;
pub mod identity;
pub mod inbound;
pub mod io;
pub mod metrics;
pub mod orig_dst;
pub mod outbound;
pub mod policy;
pub mod proxy;
pub mod retry;
pub mod tcp;
pub mod tls;
pub mod trace;

use crate::{
    admin::Admin,
    config::{Config, Listen},
    http::client::Clients,
    metrics::{Direction, Metrics},
    proxy::Proxy,
};
use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool, atomic::Ordering},
    time::Duration,
};
use tokio::net::TcpListener;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listening address could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// inbound | outbound | admin.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The controller address is unusable.
    #[error(transparent)]
    Controller(#[from] discover::BadAddr),
    /// Mesh TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Span export could not be set up.
    #[error(transparent)]
    Trace(#[from] trace::TraceError),
    /// Signal handlers could not be installed.
    #[error("cannot watch for SIGTERM: {0}")]
    Signal(std::io::Error),
}

/// How long an upstream TCP connect may take before the request fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a mesh TLS handshake may take, either way.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// Listeners bound before anything is served, so a busy port fails start-up at once.
pub struct Bound {
    inbound: Vec<TcpListener>,
    outbound: Vec<TcpListener>,
    admin: Vec<TcpListener>,
}

impl Bound {
    /// Binds every configured address.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            inbound: bind("inbound", &config.inbound).await?,
            outbound: bind("outbound", &config.outbound).await?,
            admin: bind("admin", &config.admin).await?,
        })
    }

    /// The addresses actually bound: inbound, outbound, admin.
    pub fn local_addrs(&self) -> [Vec<SocketAddr>; 3] {
        let addrs = |ls: &[TcpListener]| ls.iter().filter_map(|l| l.local_addr().ok()).collect();
        [
            addrs(&self.inbound),
            addrs(&self.outbound),
            addrs(&self.admin),
        ]
    }
}

async fn bind(what: &'static str, listen: &Listen) -> Result<Vec<TcpListener>, Error> {
    let mut out = Vec::new();
    for &addr in &listen.required {
        out.push(listener(addr).map_err(|source| Error::Bind { what, addr, source })?);
    }
    for &addr in &listen.optional {
        match listener(addr) {
            Ok(l) => out.push(l),
            Err(e) => tracing::debug!(%addr, error = %e, "optional {what} address not bound"),
        }
    }
    Ok(out)
}

/// A listener; IPv6 ones are IPv6-only so `[::]:4143` can sit beside `0.0.0.0:4143`.
fn listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Serves until SIGTERM, SIGINT or `/shutdown`, then drains for up to the grace period.
pub async fn run(config: Config, bound: Bound) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(Error::Signal)?;

    let metrics = Metrics::new();
    let (trigger, drain) = drain::channel();
    let ready = Arc::new(AtomicBool::new(false));
    let opaque_ports = Arc::new(config.opaque_ports.clone());
    // Made before anything that needs it: the data path's TLS and discovery's mTLS.
    let identity: Option<Arc<identity::Identity>> = match config.identity.clone() {
        Some(id) => {
            tracing::info!(identity = %id.name, addr = %id.addr, "certifying with the controller");
            Some(identity::spawn(id, metrics.clone()))
        }
        None => {
            tracing::warn!(
                "no identity configured (WEFT_PROXY_IDENTITY_*): mTLS disabled, mesh traffic is plaintext"
            );
            None
        }
    };
    let discovery = match &config.controller {
        Some(addr) => Some(discover::Discovery::with_identity(
            addr,
            config.workload.clone().unwrap_or_default(),
            config.discovery_timeout,
            metrics.clone(),
            identity.clone(),
        )?),
        None => None,
    };
    let tls = match &identity {
        Some(id) => Some(tls::MeshTls::new(id.clone(), TLS_HANDSHAKE_TIMEOUT)?),
        None => None,
    };
    let observe = http::observe::Observe {
        tracing: match &config.trace {
            Some(t) => {
                tracing::info!(collector = %t.collector, sampling = t.sampling, service = %t.service_name, "exporting spans");
                Some(trace::Tracing::start(t, metrics.trace().clone())?)
            }
            None => None,
        },
        access_log: http::observe::AccessLogger::start(
            config.access_log,
            metrics.access_log_dropped().clone(),
        ),
    };
    let inbound_policies = Arc::new(inbound::InboundPolicies::from_config(
        &config,
        discovery.clone(),
        metrics.clone(),
    ));
    let direction = |direction| {
        Arc::new(Proxy {
            direction,
            opaque_ports: opaque_ports.clone(),
            detect_timeout: config.detect_timeout,
            connect_timeout: CONNECT_TIMEOUT,
            clients: Clients::new(CONNECT_TIMEOUT, tls.clone()),
            metrics: metrics.clone(),
            drain: drain.clone(),
            discovery: match direction {
                Direction::Outbound => discovery.clone(),
                Direction::Inbound => None,
            },
            tls: tls.clone(),
            inbound_policies: match direction {
                Direction::Inbound => Some(inbound_policies.clone()),
                Direction::Outbound => None,
            },
            observe: observe.clone(),
        })
    };
    let (inbound, outbound) = (
        direction(Direction::Inbound),
        direction(Direction::Outbound),
    );
    let admin = Admin {
        metrics: metrics.clone(),
        ready: ready.clone(),
        shutdown: trigger.starter(),
    };
    let [ins, outs, admins] = bound.local_addrs();
    for l in bound.inbound {
        tokio::spawn(inbound.clone().serve(l));
    }
    for l in bound.outbound {
        tokio::spawn(outbound.clone().serve(l));
    }
    for l in bound.admin {
        tokio::spawn(admin.clone().serve(l));
    }
    tracing::info!(?ins, ?outs, ?admins, workload = ?config.workload, "proxy serving");
    // Listeners serve at once; readiness, what Kubernetes gates on, follows the certificate.
    let readiness = tokio::spawn({
        let ready = ready.clone();
        let identity = identity.clone();
        async move {
            match identity {
                Some(identity) => identity.track_readiness(ready).await,
                None => {
                    ready.store(true, Ordering::Release);
                    tracing::info!("proxy ready");
                }
            }
        }
    });

    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: draining"),
        _ = sigint.recv() => tracing::info!("SIGINT: draining"),
        () = drain.signaled() => tracing::info!("shutdown requested: draining"),
    }
    readiness.abort();
    ready.store(false, Ordering::Release);
    let left = trigger.drain(config.shutdown_grace).await;
    if let Some(t) = &observe.tracing {
        t.shutdown();
    }
    if left > 0 {
        tracing::warn!(connections = left, grace = ?config.shutdown_grace, "grace period over; closing what is left");
    } else {
        tracing::info!("drained");
    }
    Ok(())
}
