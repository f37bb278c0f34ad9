//! A discovery source the tests drive by hand: one watch sender per target.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::sync::watch;
use weft_controller_core::{
    DefaultPolicy, DiscoverEndpoints, DiscoverInboundServer, DiscoverOutboundPolicy, Endpoint,
    EndpointSet, InboundServer, OutboundPolicy, OutboundTarget, ServicePort,
};

/// Inbound servers by namespace, pod and port.
type InboundServers = HashMap<(String, String, u16), watch::Sender<Arc<InboundServer>>>;

#[derive(Clone, Default)]
pub struct Fake(Arc<Inner>);

#[derive(Default)]
struct Inner {
    endpoints: Mutex<HashMap<ServicePort, watch::Sender<Arc<EndpointSet>>>>,
    outbound: Mutex<HashMap<OutboundTarget, watch::Sender<Arc<OutboundPolicy>>>>,
    services_changed: Mutex<Option<watch::Sender<u64>>>,
    inbound: Mutex<InboundServers>,
    pods: Mutex<HashMap<IpAddr, Endpoint>>,
    lookups: AtomicUsize,
}

impl Fake {
    fn endpoints_tx(&self, sp: &ServicePort) -> watch::Sender<Arc<EndpointSet>> {
        let mut map = self.0.endpoints.lock().unwrap();
        map.entry(sp.clone())
            .or_insert_with(|| watch::channel(Arc::new(EndpointSet::default())).0)
            .clone()
    }

    /// Publishes `set` as the endpoints of `sp`; returns at once whoever is (not) reading.
    pub fn set_endpoints(&self, sp: &ServicePort, set: EndpointSet) {
        self.endpoints_tx(sp).send_replace(Arc::new(set));
    }

    /// Publishes `policy` for `target`, creating the target if it is new. Does not signal
    /// `services_changed`; see [`Fake::bump_services`].
    pub fn set_policy(&self, target: OutboundTarget, policy: OutboundPolicy) {
        let mut map = self.0.outbound.lock().unwrap();
        match map.get(&target) {
            Some(tx) => {
                tx.send_replace(Arc::new(policy));
            }
            None => {
                map.insert(target, watch::channel(Arc::new(policy)).0);
            }
        }
    }

    /// Forgets `target`, dropping its sender as the index does when a service is deleted.
    pub fn remove_policy(&self, target: &OutboundTarget) {
        self.0.outbound.lock().unwrap().remove(target);
    }

    fn changed_tx(&self) -> watch::Sender<u64> {
        self.0
            .services_changed
            .lock()
            .unwrap()
            .get_or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    /// How many outbound policy lookups the server has made.
    pub fn lookups(&self) -> usize {
        self.0.lookups.load(Ordering::SeqCst)
    }

    /// Puts a pod at `ep.addr`'s IP (its port is replaced by the one asked for). Does not
    /// signal `services_changed`.
    pub fn set_pod(&self, ep: Endpoint) {
        self.0.pods.lock().unwrap().insert(ep.addr.ip(), ep);
    }

    /// Signals that the set of services changed.
    pub fn bump_services(&self) {
        self.changed_tx().send_modify(|n| *n += 1);
    }

    /// Publishes `server` for port `port` of pod `ns/pod`.
    pub fn set_inbound(&self, ns: &str, pod: &str, port: u16, server: InboundServer) {
        self.inbound_tx(ns, pod, port)
            .send_replace(Arc::new(server));
    }

    fn inbound_tx(&self, ns: &str, pod: &str, port: u16) -> watch::Sender<Arc<InboundServer>> {
        let key = (ns.to_string(), pod.to_string(), port);
        let mut map = self.0.inbound.lock().unwrap();
        map.entry(key)
            .or_insert_with(|| {
                let server = DefaultPolicy::Deny.server(false, Duration::from_secs(1), &[], "x");
                watch::channel(Arc::new(server)).0
            })
            .clone()
    }
}

impl DiscoverEndpoints for Fake {
    fn endpoints(&self, target: &ServicePort) -> watch::Receiver<Arc<EndpointSet>> {
        self.endpoints_tx(target).subscribe()
    }
}

impl DiscoverOutboundPolicy for Fake {
    fn outbound_policy(
        &self,
        target: &OutboundTarget,
    ) -> Option<watch::Receiver<Arc<OutboundPolicy>>> {
        self.0.lookups.fetch_add(1, Ordering::SeqCst);
        self.0
            .outbound
            .lock()
            .unwrap()
            .get(target)
            .map(|tx| tx.subscribe())
    }

    fn endpoint(&self, addr: SocketAddr) -> Option<Endpoint> {
        let pods = self.0.pods.lock().unwrap();
        pods.get(&addr.ip())
            .map(|ep| Endpoint { addr, ..ep.clone() })
    }

    fn services_changed(&self) -> watch::Receiver<u64> {
        self.changed_tx().subscribe()
    }
}

impl DiscoverInboundServer for Fake {
    fn inbound_server(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> watch::Receiver<Arc<InboundServer>> {
        self.inbound_tx(namespace, pod, port).subscribe()
    }
}
