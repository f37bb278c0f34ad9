//! One direction of the proxy: accept redirected connections, find where they were going,
//! detect the protocol, and forward them.

use crate::{
    config::PortSet,
    detect::{self, Protocol},
    discover::Discovery,
    drain::Drain,
    http::{
        self, Version,
        client::Clients,
        forward::Forward,
        observe::{ConnInfo, Observe},
        record::RecordLayer,
    },
    inbound::{ClientTls, ConnMeta, InboundPolicies, PortPolicy},
    io::{CountedIo, PrefixedIo},
    metrics::{self, ConnLabels, Direction, Metrics},
    orig_dst::{OrigDst, orig_dst},
    outbound::{self, OpaqueTarget, Policies, RouteHttp},
    tcp,
    tls::{self, MeshTls},
};
use bytes::Bytes;
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
};

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
    /// Mesh TLS, when the proxy has an identity.
    pub tls: Option<MeshTls>,
    /// Inbound authorization per port (the inbound direction only).
    pub inbound_policies: Option<Arc<InboundPolicies>>,
    /// Spans and access logs.
    pub observe: Observe,
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

    async fn handle(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        let direction = self.direction.as_str();
        let _ = tcp.set_nodelay(true);
        let orig = match orig_dst(&tcp) {
            Ok(orig) => orig,
            Err(e) => {
                tracing::warn!(direction, error = %e, "dropping connection");
                return;
            }
        };
        let conn = Conn {
            peer,
            orig,
            target: self.target(orig),
        };
        match self.direction {
            Direction::Outbound => self.outbound(tcp, conn).await,
            Direction::Inbound => self.inbound(tcp, conn).await,
        }
    }

    /// Follows the controller's policy for the original destination (if there is a
    /// controller), detects the protocol and forwards.
    async fn outbound(self: Arc<Self>, mut tcp: TcpStream, conn: Conn) {
        let policies = match &self.discovery {
            Some(d) => Some((d.clone(), Arc::new(Policies::resolve(d, conn.orig.0).await))),
            None => None,
        };
        let known_opaque = policies.as_ref().is_some_and(|(_, p)| {
            matches!(p.current().protocol, crate::policy::Protocol::Opaque(_))
        });
        let detected = if known_opaque {
            Ok((Protocol::Opaque, Bytes::new()))
        } else {
            self.detect(&mut tcp, conn.orig).await
        };
        match detected {
            Ok((protocol, prefix)) => {
                let route = Route::Outbound(policies);
                self.forward(PrefixedIo::new(prefix, tcp), protocol, &conn, route)
                    .await;
            }
            Err(e) => {
                tracing::debug!(direction = "outbound", peer = %conn.peer, error = %e, "client failed during detection")
            }
        }
    }

    /// Terminates mesh TLS addressed to this proxy (learning the client's identity), passes
    /// other TLS through, authorizes by the port's policy and forwards to the app.
    async fn inbound(self: Arc<Self>, mut tcp: TcpStream, conn: Conn) {
        let port = conn.orig.0.port();
        let policy = match &self.inbound_policies {
            Some(p) => p.resolve(port).await,
            None => {
                tracing::warn!(port, "inbound proxy without policies; closing connection");
                return;
            }
        };
        let opaque = self.opaque_ports.contains(port) || policy.current().protocol.is_opaque();
        let meta = |tls| ConnMeta {
            peer: conn.peer,
            tls,
            port,
        };
        let Some(tls) = self.tls.clone() else {
            let detected = match opaque {
                true => Ok((Protocol::Opaque, Bytes::new())),
                false => detect::detect(&mut tcp, self.detect_timeout).await,
            };
            match detected {
                Ok((protocol, prefix)) => {
                    let route = Route::Inbound(policy, meta(ClientTls::None));
                    self.forward(PrefixedIo::new(prefix, tcp), protocol, &conn, route)
                        .await;
                }
                Err(e) => {
                    tracing::debug!(direction = "inbound", peer = %conn.peer, error = %e, "client failed during detection")
                }
            }
            return;
        };
        // Meshed clients speak first (a ClientHello), even on opaque ports, so those ports
        // wait briefly for it before treating the connection as opaque.
        let wait = match opaque {
            true => OPAQUE_TLS_WAIT.min(self.detect_timeout),
            false => self.detect_timeout,
        };
        let (protocol, prefix) = match detect::detect(&mut tcp, wait).await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(direction = "inbound", peer = %conn.peer, error = %e, "client failed during detection");
                return;
            }
        };
        if protocol != Protocol::Tls {
            let protocol = if opaque { Protocol::Opaque } else { protocol };
            let route = Route::Inbound(policy, meta(ClientTls::None));
            self.forward(PrefixedIo::new(prefix, tcp), protocol, &conn, route)
                .await;
            return;
        }
        match tls.accept(tcp, prefix).await {
            Ok(tls::Inbound::Mesh { mut io, client_id }) => {
                tracing::debug!(peer = %conn.peer, %client_id, "mesh TLS terminated");
                let detected = match opaque {
                    true => Ok((Protocol::Opaque, Bytes::new())),
                    false => detect::detect(&mut io, self.detect_timeout).await,
                };
                match detected {
                    Ok((protocol, prefix)) => {
                        let route = Route::Inbound(policy, meta(ClientTls::Mesh { client_id }));
                        self.forward(PrefixedIo::new(prefix, io), protocol, &conn, route)
                            .await;
                    }
                    Err(e) => {
                        tracing::debug!(direction = "inbound", peer = %conn.peer, %client_id, error = %e, "client failed during detection")
                    }
                }
            }
            Ok(tls::Inbound::Passthrough(io)) => {
                let route = Route::Inbound(policy, meta(ClientTls::None));
                self.forward(io, Protocol::Tls, &conn, route).await;
            }
            Err(e) => {
                tracing::info!(direction = "inbound", peer = %conn.peer, error = %e, "closing connection");
            }
        }
    }

    /// The protocol of a connection to `orig`: opaque ports skip detection.
    async fn detect<I: AsyncRead + Unpin>(
        &self,
        io: &mut I,
        orig: OrigDst,
    ) -> std::io::Result<(Protocol, Bytes)> {
        if self.opaque_ports.contains(orig.0.port()) {
            return Ok((Protocol::Opaque, Bytes::new()));
        }
        detect::detect(io, self.detect_timeout).await
    }

    /// Serves HTTP or copies bytes to where the connection goes.
    async fn forward<I>(self: &Arc<Self>, io: I, protocol: Protocol, c: &Conn, route: Route)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let direction = self.direction.as_str();
        let (peer, target) = (c.peer, c.target);
        let label = metrics::target_label(target);
        let conn = self.metrics.connection(&ConnLabels {
            direction: self.direction,
            target_addr: label.clone(),
            protocol: protocol_label(protocol),
        });
        let io = CountedIo::new(io, conn.read.clone(), conn.write.clone());
        tracing::debug!(direction, %peer, %target, ?protocol, "forwarding");
        match protocol {
            Protocol::Http1 | Protocol::Http2 => {
                let version = if protocol == Protocol::Http1 {
                    Version::Http1
                } else {
                    Version::Http2
                };
                let client_id: Option<Arc<str>> = match &route {
                    Route::Inbound(_, meta) => meta.tls.client_id().map(Arc::from),
                    Route::Outbound(_) => None,
                };
                let observer = self.observe.observer(ConnInfo {
                    direction: self.direction,
                    peer,
                    target,
                    client_id: client_id.clone(),
                });
                let record = RecordLayer::new(
                    self.metrics
                        .http(self.direction, &label, client_id.as_deref()),
                    observer,
                );
                let served = match route {
                    Route::Outbound(Some((discovery, policies))) => {
                        let svc = tower::ServiceBuilder::new()
                            .layer(record)
                            .service(RouteHttp::new(self.clone(), discovery, policies, version));
                        http::server::serve(io, version, svc, &self.drain).await
                    }
                    Route::Outbound(None) => {
                        let svc = tower::ServiceBuilder::new()
                            .layer(record)
                            .service(Forward::new(
                                self.clients.get(target, version, None),
                                target,
                                self.drain.clone(),
                            ));
                        http::server::serve(io, version, svc, &self.drain).await
                    }
                    Route::Inbound(policy, meta) => {
                        let forward = Forward::new(
                            self.clients.get(target, version, None),
                            target,
                            self.drain.clone(),
                        );
                        let svc = tower::ServiceBuilder::new()
                            .layer(record)
                            .service(policy.authorize_http(meta, forward));
                        http::server::serve(io, version, svc, &self.drain).await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(direction, %peer, %target, error = %e, "HTTP connection ended with an error");
                }
            }
            Protocol::Tls | Protocol::Opaque => {
                let upstream = match &route {
                    // A server that speaks HTTP is authorized request by request (routes, and
                    // the `weft-client-id` the app may trust): bytes that never became HTTP
                    // (detection gave up) get no way around that.
                    Route::Inbound(policy, _) if policy.current().protocol.is_http() => {
                        tracing::info!(direction, %peer, %target, "not HTTP on a server that only speaks HTTP; closing");
                        return;
                    }
                    Route::Inbound(policy, meta) => match policy.check_tcp(meta) {
                        Ok(_) => OpaqueTarget::direct(target),
                        Err(denied) => {
                            tracing::info!(direction, %peer, %target, %denied, "connection not authorized; closing");
                            return;
                        }
                    },
                    Route::Outbound(Some((discovery, policies))) => {
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
                            None => OpaqueTarget::direct(target),
                        }
                    }
                    Route::Outbound(None) => OpaqueTarget::direct(target),
                };
                let tls = self.tls.as_ref().zip(upstream.server_id.as_deref());
                if let Err(e) = tcp::forward(io, upstream.addr, self.connect_timeout, tls).await {
                    tracing::info!(direction, %peer, %target, upstream = %upstream.addr, error = %e, "TCP forward failed");
                }
                drop(upstream.guard);
            }
        }
        drop(conn);
    }
}

/// What decides where a connection's requests go: outbound, the controller's policy for the
/// target (if any); inbound, the port's authorization policy and what is known of the client.
enum Route {
    Outbound(Option<(Arc<Discovery>, Arc<Policies>)>),
    Inbound(PortPolicy, ConnMeta),
}

/// Where an accepted connection came from and was going.
#[derive(Clone, Copy, Debug)]
struct Conn {
    peer: SocketAddr,
    orig: OrigDst,
    target: SocketAddr,
}

/// How long an inbound connection on an opaque port waits for a meshed client's ClientHello
/// before it is forwarded as opaque (server-speaks-first protocols from unmeshed clients).
const OPAQUE_TLS_WAIT: Duration = Duration::from_millis(100);

fn protocol_label(p: Protocol) -> &'static str {
    match p {
        Protocol::Http1 => "http1",
        Protocol::Http2 => "h2",
        Protocol::Tls => "tls",
        Protocol::Opaque => "opaque",
    }
}
