//! The Weft control plane's index: Kubernetes objects in, per-target results out.
//!
//! The index is plain synchronous data. Sources call [`IndexResource::apply`], `delete` and
//! `reset` for each kind they watch; after every call the index recomputes only the results
//! that call may have changed and publishes them on `tokio::sync::watch` channels, which never
//! block: a slow or gone gRPC client only ever sees the latest value. The index knows nothing
//! about gRPC; the gRPC layer reads it through the `weft_controller_core::Discover*` traits.

#![forbid(unsafe_code)]

pub mod crds;
mod endpoints;
mod inbound;
mod outbound;
pub mod resilience;
mod resources;
#[cfg(test)]
mod tests;

pub use resources::ObjectKey;

use ipnet::IpNet;
use parking_lot::Mutex;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use tokio::sync::watch;
use weft_controller_core::{
    DefaultPolicy, DiscoverEndpoints, DiscoverInboundServer, DiscoverOutboundPolicy, Endpoint,
    EndpointSet, InboundServer, OutboundPolicy, OutboundTarget, ServicePort, ServiceRef,
};

/// Settings the index needs to compute results.
#[derive(Clone, Debug)]
pub struct Config {
    /// DNS suffix of services, `cluster.local`.
    pub cluster_domain: String,
    /// Trust domain of mesh identities, `cluster.local`.
    pub trust_domain: String,
    /// Inbound policy when neither pod nor namespace says otherwise.
    pub default_policy: DefaultPolicy,
    /// Networks `cluster-authenticated` admits.
    pub cluster_networks: Vec<IpNet>,
    /// Detection timeout proxies are told to use.
    pub detect_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        let nets = [
            "10.0.0.0/8",
            "100.64.0.0/10",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fd00::/8",
        ];
        Self {
            cluster_domain: "cluster.local".to_string(),
            trust_domain: "cluster.local".to_string(),
            default_policy: DefaultPolicy::AllUnauthenticated,
            cluster_networks: nets.iter().filter_map(|n| n.parse().ok()).collect(),
            detect_timeout: Duration::from_secs(10),
        }
    }
}

/// One kind of object the index accepts. Sources call these in the order events arrive.
pub trait IndexResource<T> {
    /// Adds `resource` or replaces the object with its key.
    fn apply(&mut self, resource: T);
    /// Removes the object with `key`, if present.
    fn delete(&mut self, key: ObjectKey);
    /// Replaces every object of this kind with `resources` (after a relist).
    fn reset(&mut self, resources: Vec<T>);
}

/// The index behind a lock, shared by the source (writer) and gRPC services (readers).
#[derive(Clone, Debug)]
pub struct SharedIndex(Arc<Mutex<Index>>);

/// Everything the control plane knows, and the channels it publishes on.
#[derive(Debug)]
pub struct Index {
    config: Config,
    namespaces: HashMap<String, resources::Namespace>,
    services: HashMap<ServiceRef, resources::Service>,
    slices: HashMap<ServiceRef, BTreeMap<String, resources::Slice>>,
    slice_owner: HashMap<ObjectKey, ServiceRef>,
    pods: HashMap<ObjectKey, resources::Pod>,
    splits: BTreeMap<ObjectKey, resources::Split>,
    http_routes: BTreeMap<ObjectKey, resources::Route>,
    grpc_routes: BTreeMap<ObjectKey, resources::Route>,
    servers: BTreeMap<ObjectKey, inbound::policy::Server>,
    authz_policies: BTreeMap<ObjectKey, inbound::policy::Policy>,
    mtls_authns: BTreeMap<ObjectKey, inbound::policy::MeshTls>,
    network_authns: BTreeMap<ObjectKey, inbound::policy::Networks>,
    by_addr: HashMap<SocketAddr, ServicePort>,
    /// Pod IP → pod, for addresses dialed directly rather than through a service.
    pod_ips: HashMap<IpAddr, ObjectKey>,
    endpoint_watches: BTreeMap<ServicePort, watch::Sender<Arc<EndpointSet>>>,
    outbound_watches: BTreeMap<ServicePort, watch::Sender<Arc<OutboundPolicy>>>,
    inbound_watches: BTreeMap<(ObjectKey, u16), watch::Sender<Arc<InboundServer>>>,
    services_changed: watch::Sender<u64>,
    dirty: Dirty,
    batching: u32,
}

/// What changed since the last publish.
#[derive(Debug, Default)]
struct Dirty {
    endpoints_all: bool,
    endpoints_ns: HashSet<String>,
    endpoints: HashSet<ServiceRef>,
    outbound: bool,
    inbound_ns: HashSet<String>,
    addrs: bool,
    /// A pod with IPs changed: fallback policies for pod IPs may have changed.
    pod_addrs: bool,
}

impl SharedIndex {
    /// An empty index.
    pub fn new(config: Config) -> Self {
        Self(Arc::new(Mutex::new(Index::new(config))))
    }

    /// Locks the index for a source to write to.
    pub fn write(&self) -> parking_lot::MutexGuard<'_, Index> {
        self.0.lock()
    }
}

impl Index {
    /// An empty index.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            namespaces: HashMap::new(),
            services: HashMap::new(),
            slices: HashMap::new(),
            slice_owner: HashMap::new(),
            pods: HashMap::new(),
            splits: BTreeMap::new(),
            http_routes: BTreeMap::new(),
            grpc_routes: BTreeMap::new(),
            servers: BTreeMap::new(),
            authz_policies: BTreeMap::new(),
            mtls_authns: BTreeMap::new(),
            network_authns: BTreeMap::new(),
            by_addr: HashMap::new(),
            pod_ips: HashMap::new(),
            endpoint_watches: BTreeMap::new(),
            outbound_watches: BTreeMap::new(),
            inbound_watches: BTreeMap::new(),
            services_changed: watch::channel(0).0,
            dirty: Dirty::default(),
            batching: 0,
        }
    }

    /// Runs `f` (any number of applies, deletes and resets) and publishes once at the end, so
    /// watchers see one consistent change instead of every step.
    pub fn batch<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.batching += 1;
        let out = f(self);
        self.batching -= 1;
        self.publish();
        out
    }

    /// Counts of indexed objects by kind, for logs and the admin endpoint.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("namespaces", self.namespaces.len()),
            ("services", self.services.len()),
            ("endpointslices", self.slice_owner.len()),
            ("pods", self.pods.len()),
            ("trafficsplits", self.splits.len()),
            ("httproutes", self.http_routes.len()),
            ("grpcroutes", self.grpc_routes.len()),
            ("servers", self.servers.len()),
            ("authorizationpolicies", self.authz_policies.len()),
            ("meshtlsauthentications", self.mtls_authns.len()),
            ("networkauthentications", self.network_authns.len()),
            (
                "watches",
                self.endpoint_watches.len()
                    + self.outbound_watches.len()
                    + self.inbound_watches.len(),
            ),
        ])
    }

    /// Recomputes and sends every result the changes since the last call may have touched.
    /// A channel whose value did not change is not woken.
    fn publish(&mut self) {
        if self.batching > 0 {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        if dirty.addrs {
            self.rebuild_addrs();
        }
        if dirty.pod_addrs {
            self.services_changed.send_modify(|n| *n += 1);
        }
        let ports: Vec<ServicePort> = self
            .endpoint_watches
            .keys()
            .filter(|sp| {
                dirty.endpoints_all
                    || dirty.endpoints.contains(&sp.service)
                    || dirty.endpoints_ns.contains(&sp.service.namespace)
            })
            .cloned()
            .collect();
        for sp in ports {
            let set = Arc::new(self.endpoint_set(&sp));
            if let Some(tx) = self.endpoint_watches.get(&sp) {
                send_if_changed(tx, set);
            }
        }
        if dirty.outbound {
            let ports: Vec<ServicePort> = self.outbound_watches.keys().cloned().collect();
            for sp in ports {
                match self.outbound_policy(&sp) {
                    Some(policy) => {
                        if let Some(tx) = self.outbound_watches.get(&sp) {
                            send_if_changed(tx, Arc::new(policy));
                        }
                    }
                    // The service is gone: dropping the sender ends the watchers' streams,
                    // and the gRPC layer looks the target up again.
                    None => {
                        self.outbound_watches.remove(&sp);
                    }
                }
            }
        }
        if !dirty.inbound_ns.is_empty() {
            let keys: Vec<(ObjectKey, u16)> = self
                .inbound_watches
                .keys()
                .filter(|(pod, _)| dirty.inbound_ns.contains(&pod.namespace))
                .cloned()
                .collect();
            for (pod, port) in keys {
                let server = Arc::new(self.inbound_server(&pod, port));
                if let Some(tx) = self.inbound_watches.get(&(pod, port)) {
                    send_if_changed(tx, server);
                }
            }
        }
        self.collect_garbage();
    }

    fn rebuild_addrs(&mut self) {
        let mut by_addr = HashMap::new();
        for (svc, s) in &self.services {
            for ip in &s.cluster_ips {
                for p in &s.ports {
                    by_addr.insert(
                        SocketAddr::new(*ip, p.port.get()),
                        ServicePort::new(svc.clone(), p.port),
                    );
                }
            }
        }
        if by_addr != self.by_addr {
            self.by_addr = by_addr;
            self.services_changed.send_modify(|n| *n += 1);
        }
    }

    /// Drops channels nobody listens to; results for them are computed again on the next
    /// lookup.
    fn collect_garbage(&mut self) {
        self.endpoint_watches
            .retain(|_, tx| tx.receiver_count() > 0);
        self.outbound_watches
            .retain(|_, tx| tx.receiver_count() > 0);
        self.inbound_watches.retain(|_, tx| tx.receiver_count() > 0);
    }

    fn watch_endpoints(&mut self, target: &ServicePort) -> watch::Receiver<Arc<EndpointSet>> {
        if let Some(tx) = self.endpoint_watches.get(target) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Arc::new(self.endpoint_set(target)));
        self.endpoint_watches.insert(target.clone(), tx);
        rx
    }

    fn watch_outbound(
        &mut self,
        target: &OutboundTarget,
    ) -> Option<watch::Receiver<Arc<OutboundPolicy>>> {
        let sp = match target {
            OutboundTarget::Addr(addr) => self.by_addr.get(addr)?.clone(),
            OutboundTarget::Authority(a) => {
                let sp = ServicePort::parse_authority(a, &self.config.cluster_domain).ok()?;
                if !self.services.contains_key(&sp.service) {
                    return None;
                }
                sp
            }
        };
        if let Some(tx) = self.outbound_watches.get(&sp) {
            return Some(tx.subscribe());
        }
        let policy = self.outbound_policy(&sp)?;
        let (tx, rx) = watch::channel(Arc::new(policy));
        self.outbound_watches.insert(sp, tx);
        Some(rx)
    }

    fn watch_inbound(
        &mut self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> watch::Receiver<Arc<InboundServer>> {
        let key = (ObjectKey::new(namespace, pod), port);
        if let Some(tx) = self.inbound_watches.get(&key) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Arc::new(self.inbound_server(&key.0, port)));
        self.inbound_watches.insert(key, tx);
        rx
    }
}

fn send_if_changed<T: PartialEq>(tx: &watch::Sender<Arc<T>>, value: Arc<T>) {
    tx.send_if_modified(|current| {
        if **current == *value {
            false
        } else {
            *current = value;
            true
        }
    });
}

// === impl SharedIndex: the Discover* traits ===

impl DiscoverEndpoints for SharedIndex {
    fn endpoints(&self, target: &ServicePort) -> watch::Receiver<Arc<EndpointSet>> {
        self.0.lock().watch_endpoints(target)
    }
}

impl DiscoverOutboundPolicy for SharedIndex {
    fn outbound_policy(
        &self,
        target: &OutboundTarget,
    ) -> Option<watch::Receiver<Arc<OutboundPolicy>>> {
        self.0.lock().watch_outbound(target)
    }

    fn endpoint(&self, addr: SocketAddr) -> Option<Endpoint> {
        self.0.lock().pod_endpoint(addr)
    }

    fn services_changed(&self) -> watch::Receiver<u64> {
        self.0.lock().services_changed.subscribe()
    }
}

impl DiscoverInboundServer for SharedIndex {
    fn inbound_server(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> watch::Receiver<Arc<InboundServer>> {
        self.0.lock().watch_inbound(namespace, pod, port)
    }
}
