//! One direction of the proxy: accept redirected connections, find where they were going,
//! detect the protocol, and forward them.

use crate::{
    config::PortSet,
    detect::{self, Protocol},
    discover::Discovery,
    drain::Drain,
    http::{self, Version, client::Clients, forward::Forward, record::RecordLayer},
    io::{CountedIo, PrefixedIo},
    metrics::{self, ConnLabels, Direction, Metrics},
    orig_dst::{OrigDst, orig_dst},
    outbound::{self, Policies, RouteHttp},
    tcp,
};
use bytes::Bytes;
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use tokio::net::{TcpListener, TcpStream};

/// Settings and shared state of one direction.
#[derive(Debug)]
pub struct Proxy {
    /// inbound | outbound.
    pub direction: Direction,
    /// Ports forwarded without detection.
    pub opaque_ports: Arc<PortSet>,
    /// How long detection waits for the client's first bytes.
    pub detect_timeout: Duration,
    /// How long an upstream connect may take.
    pub connect_timeout: Duration,
    /// Upstream HTTP connection pools.
    pub clients: Clients,
    /// Where counters go.
    pub metrics: Arc<Metrics>,
    /// Stops accepting and winds connections down.
    pub drain: Drain,
    /// The controller's view of targets; `None` forwards to original destinations.
    pub discovery: Option<Arc<Discovery>>,
}

impl Proxy {
    /// Accepts connections until the drain starts, then drops the listener.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                () = self.drain.signaled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let this = self.clone();
                    self.drain
                        .spawn(async move { this.handle(tcp, peer).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(direction = self.direction.as_str(), error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Where a connection to `orig` goes: the original destination outbound, the same port on
    /// loopback inbound (the app in this pod).
    pub fn target(&self, OrigDst(orig): OrigDst) -> SocketAddr {
        match self.direction {
            Direction::Outbound => orig,
            Direction::Inbound => {
                let lo = match orig.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                };
                SocketAddr::new(lo, orig.port())
            }
        }
    }

    async fn handle(self: Arc<Self>, mut tcp: TcpStream, peer: SocketAddr) {
        let direction = self.direction.as_str();
        let _ = tcp.set_nodelay(true);
        let orig = match orig_dst(&tcp) {
            Ok(orig) => orig,
            Err(e) => {
                tracing::warn!(direction, error = %e, "dropping connection");
                return;
            }
        };
        let target = self.target(orig);
        let policies = match &self.discovery {
            Some(d) => Some((d.clone(), Arc::new(Policies::resolve(d, orig.0).await))),
            None => None,
        };
        let known_opaque = policies.as_ref().is_some_and(|(_, p)| {
            matches!(p.current().protocol, crate::policy::Protocol::Opaque(_))
        });
        let (protocol, prefix) = if known_opaque || self.opaque_ports.contains(orig.0.port()) {
            (Protocol::Opaque, Bytes::new())
        } else {
            match detect::detect(&mut tcp, self.detect_timeout).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(direction, %peer, error = %e, "client failed during detection");
                    return;
                }
            }
        };
        let label = metrics::target_label(target);
        let conn = self.metrics.connection(&ConnLabels {
            direction: self.direction,
            target_addr: label.clone(),
            protocol: protocol_label(protocol),
        });
        let io = CountedIo::new(
            PrefixedIo::new(prefix, tcp),
            conn.read.clone(),
            conn.write.clone(),
        );
        tracing::debug!(direction, %peer, %target, ?protocol, "forwarding");
        match protocol {
            Protocol::Http1 | Protocol::Http2 => {
                let version = if protocol == Protocol::Http1 {
                    Version::Http1
                } else {
                    Version::Http2
                };
                let record = RecordLayer(self.metrics.http(self.direction, &label));
                let served = match policies {
                    Some((discovery, policies)) => {
                        let svc = tower::ServiceBuilder::new()
                            .layer(record)
                            .service(RouteHttp::new(self.clone(), discovery, policies, version));
                        http::server::serve(io, version, svc, &self.drain).await
                    }
                    None => {
                        let svc = tower::ServiceBuilder::new()
                            .layer(record)
                            .service(Forward::new(
                                self.clients.get(target, version),
                                target,
                                self.drain.clone(),
                            ));
                        http::server::serve(io, version, svc, &self.drain).await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(direction, %peer, %target, error = %e, "HTTP connection ended with an error");
                }
            }
            Protocol::Tls | Protocol::Opaque => {
                let (upstream, _guard) = match &policies {
                    Some((discovery, policies)) => {
                        let policy = policies.current();
                        match outbound::opaque_routes(&policy) {
                            Some(routes) => {
                                match outbound::opaque_target(discovery, routes).await {
                                    Ok(t) => t,
                                    Err(why) => {
                                        tracing::info!(direction, %peer, %target, reason = %why, "closing connection");
                                        return;
                                    }
                                }
                            }
                            None => (target, None),
                        }
                    }
                    None => (target, None),
                };
                if let Err(e) = tcp::forward(io, upstream, self.connect_timeout).await {
                    tracing::info!(direction, %peer, %target, %upstream, error = %e, "TCP forward failed");
                }
            }
        }
        drop(conn);
    }
}

fn protocol_label(p: Protocol) -> &'static str {
    match p {
        Protocol::Http1 => "http1",
        Protocol::Http2 => "h2",
        Protocol::Tls => "tls",
        Protocol::Opaque => "opaque",
    }
}
