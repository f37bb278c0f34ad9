//! Endpoints of a service port, as `Destination.Get` reports them.

use std::{collections::BTreeMap, net::SocketAddr};

/// What a proxy may assume about the peer at an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolHint {
    /// The endpoint runs a Weft proxy that accepts HTTP/2 (meshed pod).
    H2,
    /// The port is opaque: forward bytes, do not detect.
    Opaque,
}

/// One endpoint address and what is known about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Pod IP and target port.
    pub addr: SocketAddr,
    /// Relative weight for balancing (10000 is the normal weight).
    pub weight: u32,
    /// The TLS identity of a meshed pod, `<sa>.<ns>.serviceaccount.identity.<trust-domain>`.
    pub identity: Option<String>,
    /// Set for meshed pods.
    pub protocol_hint: Option<ProtocolHint>,
    /// Metric labels (`pod`, `serviceaccount`, ...).
    pub labels: BTreeMap<String, String>,
    /// The pod behind the address, `(namespace, name)`, if known.
    pub pod: Option<(String, String)>,
    /// The endpoint is terminating but still serving; only used when nothing else is ready.
    pub terminating: bool,
}

/// All endpoints of a service port at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSet {
    /// Whether the service exists at all.
    pub exists: bool,
    /// Metric labels for the whole set (`service`, `namespace`).
    pub labels: BTreeMap<String, String>,
    /// Endpoints by address.
    pub endpoints: BTreeMap<SocketAddr, Endpoint>,
}

/// The default weight of an endpoint (Linkerd's convention).
pub const DEFAULT_WEIGHT: u32 = 10_000;
