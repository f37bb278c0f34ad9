//! What one `Destination.Get` stream has told its client, and the deltas to the next set.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
};
use weft_controller_core::{Endpoint, EndpointSet, ProtocolHint};
use weft_proto::{
    destination::{
        self as proto, AddrSet, NoEndpoints, TlsIdentity, WeightedAddr, WeightedAddrSet,
        protocol_hint, tls_identity, update::Update,
    },
    meta,
};

/// The client's view of the endpoints, as built from the messages sent so far.
#[derive(Debug)]
pub(super) struct Updates {
    /// Endpoints the client holds.
    sent: BTreeMap<SocketAddr, Endpoint>,
    /// The set labels the client holds (sent with every `add`).
    labels: BTreeMap<String, String>,
    /// `Some(exists)` while only `no_endpoints{exists}` has been sent; `None` once an `add`
    /// has been, after which `no_endpoints` must never be sent on this stream.
    no_endpoints: Option<bool>,
}

impl Updates {
    /// The first message of a stream: all endpoints, or `no_endpoints{exists}` if there are none.
    pub(super) fn first(set: &EndpointSet) -> (Self, Update) {
        let mut this = Self {
            sent: BTreeMap::new(),
            labels: BTreeMap::new(),
            no_endpoints: None,
        };
        let endpoints = live(set);
        if endpoints.is_empty() {
            this.no_endpoints = Some(set.exists);
            return (this, no_endpoints(set.exists));
        }
        let add = add(&set.labels, endpoints.values());
        this.sent = endpoints.clone();
        this.labels = set.labels.clone();
        (this, add)
    }

    /// The messages that take the client from what it holds to `set`: an `add` of new or changed
    /// endpoints (sent first, so the client never passes through an empty set when endpoints are
    /// replaced), then a `remove` of the addresses that went away.
    pub(super) fn next(&mut self, set: &EndpointSet) -> Vec<Update> {
        let current = live(set);
        if let Some(exists) = self.no_endpoints
            && current.is_empty()
        {
            // Still nothing to add: tell the client only if the service appeared or vanished.
            if exists == set.exists {
                return vec![];
            }
            self.no_endpoints = Some(set.exists);
            return vec![no_endpoints(set.exists)];
        }

        // New set labels travel only with an `add`, so every endpoint is sent again.
        let relabel = self.labels != set.labels;
        let added: Vec<&Endpoint> = current
            .iter()
            .filter(|(addr, ep)| relabel || self.sent.get(*addr) != Some(*ep))
            .map(|(_, ep)| ep)
            .collect();
        let removed: Vec<SocketAddr> = self
            .sent
            .keys()
            .filter(|addr| !current.contains_key(*addr))
            .copied()
            .collect();

        let mut updates = Vec::with_capacity(2);
        if !added.is_empty() {
            updates.push(add(&set.labels, added));
            self.labels = set.labels.clone();
            self.no_endpoints = None;
        }
        if !removed.is_empty() {
            updates.push(Update::Remove(AddrSet {
                addrs: removed.into_iter().map(Into::into).collect(),
            }));
        }
        self.sent = current.clone();
        updates
    }
}

/// The endpoints a client should use: none for a service that does not exist.
fn live(set: &EndpointSet) -> &BTreeMap<SocketAddr, Endpoint> {
    static NONE: BTreeMap<SocketAddr, Endpoint> = BTreeMap::new();
    if set.exists { &set.endpoints } else { &NONE }
}

fn no_endpoints(exists: bool) -> Update {
    Update::NoEndpoints(NoEndpoints { exists })
}

fn add<'a>(
    labels: &BTreeMap<String, String>,
    eps: impl IntoIterator<Item = &'a Endpoint>,
) -> Update {
    Update::Add(WeightedAddrSet {
        addrs: eps.into_iter().map(weighted_addr).collect(),
        metric_labels: to_hash_map(labels),
    })
}

/// One endpoint as the proxy sees it: where, how much, whom to expect (TLS identity, also the
/// SNI server name), what it speaks, and which pod it is.
pub(crate) fn weighted_addr(ep: &Endpoint) -> WeightedAddr {
    let tls_identity = ep.identity.as_ref().map(|name| {
        let dns = tls_identity::DnsLikeIdentity { name: name.clone() };
        TlsIdentity {
            strategy: Some(tls_identity::Strategy::DnsLikeIdentity(dns.clone())),
            server_name: Some(dns),
        }
    });
    let protocol_hint = ep.protocol_hint.map(|hint| proto::ProtocolHint {
        protocol: Some(match hint {
            ProtocolHint::H2 => protocol_hint::Protocol::H2(protocol_hint::H2 {}),
            ProtocolHint::Opaque => protocol_hint::Protocol::Opaque(protocol_hint::Opaque {}),
        }),
        opaque_transport: None,
    });
    let resource_ref = ep.pod.as_ref().map(|(namespace, name)| meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: "core".to_string(),
            kind: "Pod".to_string(),
            namespace: namespace.clone(),
            name: name.clone(),
            ..Default::default()
        })),
    });
    WeightedAddr {
        addr: Some(ep.addr.into()),
        weight: ep.weight,
        metric_labels: to_hash_map(&ep.labels),
        tls_identity,
        protocol_hint,
        authority_override: None,
        http2: None,
        resource_ref,
    }
}

fn to_hash_map(labels: &BTreeMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests;
