//! Compact copies of the Kubernetes objects the index keeps, and the [`IndexResource`]
//! implementations that turn objects into them.

use crate::{
    Index, IndexResource,
    crds::TrafficSplit,
    outbound::{convert_grpc_route, convert_http_route},
    resilience::{ServiceResilience, service_resilience},
};
use gateway_api::apis::{experimental::httproutes::HttpRoute, standard::grpcroutes::GrpcRoute};
use k8s_openapi::api::{core::v1 as core, discovery::v1 as discovery};
use kube::ResourceExt;
use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    net::IpAddr,
    num::NonZeroU16,
};
use weft_controller_core::{
    DefaultPolicy, ServiceRef,
    outbound::{GrpcRule, HostMatch, HttpRule},
};

/// Identifies an object: namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Namespace, or empty.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of any kube object.
    pub fn of<K: kube::Resource>(obj: &K) -> Self {
        Self::new(obj.namespace().unwrap_or_default(), obj.name_any())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// Annotation naming a pod's or namespace's default inbound policy.
pub const DEFAULT_POLICY_ANNOTATION: &str = "weft.dev/default-inbound-policy";
/// Annotation listing opaque ports (`3306,5000-5100`).
pub const OPAQUE_PORTS_ANNOTATION: &str = "weft.dev/opaque-ports";
/// Annotation the injector puts on meshed pods.
pub const PROXY_VERSION_ANNOTATION: &str = "weft.dev/proxy-version";
/// Pod ports whose inbound traffic skips the proxy (the injector's `weft-init` exempts them).
pub const SKIP_INBOUND_PORTS_ANNOTATION: &str = "weft.dev/skip-inbound-ports";
/// The proxy's admin port, never redirected to its inbound listener.
pub const PROXY_ADMIN_PORT: u16 = 4191;

#[derive(Debug, PartialEq)]
pub(crate) struct Namespace {
    pub default_policy: Option<DefaultPolicy>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct Service {
    pub cluster_ips: Vec<IpAddr>,
    pub ports: Vec<ServicePortSpec>,
    pub opaque_ports: Vec<(u16, u16)>,
    /// Retries, timeouts, retry budget and failure accrual from its annotations.
    pub resilience: ServiceResilience,
}

#[derive(Debug, PartialEq)]
pub(crate) struct ServicePortSpec {
    pub port: NonZeroU16,
    pub name: String,
    pub opaque: bool,
}

#[derive(Debug, PartialEq)]
pub(crate) struct Slice {
    /// Port name → number.
    pub ports: BTreeMap<String, u16>,
    pub endpoints: Vec<SliceEndpoint>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct SliceEndpoint {
    pub addresses: Vec<IpAddr>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub pod: Option<ObjectKey>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct Pod {
    pub service_account: String,
    pub meshed: bool,
    pub default_policy: Option<DefaultPolicy>,
    pub opaque_ports: Vec<(u16, u16)>,
    /// Ports whose inbound traffic does not pass the proxy.
    pub skip_inbound_ports: Vec<(u16, u16)>,
    pub labels: BTreeMap<String, String>,
    /// Named container ports, for Servers that name their port.
    pub ports: BTreeMap<String, u16>,
    /// The pod's own IPs (`status.podIPs`); empty for host-network and finished pods, whose
    /// addresses belong to the node or to a newer pod.
    pub ips: Vec<IpAddr>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct Split {
    pub root: String,
    pub backends: Vec<(String, u32)>,
    pub created: Option<String>,
}

/// An HTTPRoute or GRPCRoute, converted once when applied.
#[derive(Debug, PartialEq)]
pub(crate) struct Route {
    pub parents: Vec<ParentRef>,
    pub hostnames: Vec<HostMatch>,
    pub http_rules: Vec<HttpRule>,
    pub grpc_rules: Vec<GrpcRule>,
    /// Names of the Servers (in the route's namespace) it is attached to, for inbound policy.
    pub servers: Vec<String>,
    pub created: Option<String>,
}

/// A parentRef of kind Service.
#[derive(Debug, PartialEq)]
pub(crate) struct ParentRef {
    pub service: ServiceRef,
    pub port: Option<u16>,
}

fn policy_annotation(what: &str, annotations: &BTreeMap<String, String>) -> Option<DefaultPolicy> {
    let value = annotations.get(DEFAULT_POLICY_ANNOTATION)?;
    match value.parse() {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(%what, annotation = DEFAULT_POLICY_ANNOTATION, error = %e, "ignoring annotation");
            None
        }
    }
}

/// Parses annotation `name` of `what`, `3306,5000-5100`; bad items are logged and skipped.
pub(crate) fn parse_port_ranges(
    what: &str,
    annotations: &BTreeMap<String, String>,
    name: &str,
) -> Vec<(u16, u16)> {
    let Some(value) = annotations.get(name) else {
        return vec![];
    };
    let mut ranges = vec![];
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed = match item.split_once('-') {
            Some((a, b)) => a.trim().parse().ok().zip(b.trim().parse().ok()),
            None => item.parse().ok().map(|p| (p, p)),
        };
        match parsed {
            Some((a, b)) if a <= b && a > 0 => ranges.push((a, b)),
            _ => {
                tracing::warn!(%what, annotation = name, %item, "ignoring invalid port or range")
            }
        }
    }
    ranges
}

pub(crate) fn in_ranges(ranges: &[(u16, u16)], port: u16) -> bool {
    ranges.iter().any(|(a, b)| (*a..=*b).contains(&port))
}

pub(crate) fn created<K: kube::Resource>(obj: &K) -> Option<String> {
    obj.meta()
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
}

/// Applies each of `resources` after deleting the keys of `existing` that are not among them.
pub(crate) fn reset_with<T, I>(index: &mut Index, existing: I, resources: Vec<T>)
where
    Index: IndexResource<T>,
    T: kube::Resource,
    I: IntoIterator<Item = ObjectKey>,
{
    let keep: HashSet<ObjectKey> = resources.iter().map(ObjectKey::of).collect();
    let gone: Vec<ObjectKey> = existing.into_iter().filter(|k| !keep.contains(k)).collect();
    // Publish once for the whole batch, not once per object.
    index.batch(|index| {
        for key in gone {
            index.delete(key);
        }
        for r in resources {
            index.apply(r);
        }
    });
}

// === impl IndexResource for each kind ===

impl IndexResource<core::Namespace> for Index {
    fn apply(&mut self, ns: core::Namespace) {
        let name = ns.name_any();
        let entry = Namespace {
            default_policy: policy_annotation(&name, ns.annotations()),
        };
        if self.namespaces.get(&name) != Some(&entry) {
            self.namespaces.insert(name.clone(), entry);
            self.dirty.inbound_ns.insert(name);
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if self.namespaces.remove(&key.name).is_some() {
            self.dirty.inbound_ns.insert(key.name);
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<core::Namespace>) {
        let existing: Vec<_> = self
            .namespaces
            .keys()
            .map(|n| ObjectKey::new("", n))
            .collect();
        reset_with(self, existing, resources);
    }
}

impl IndexResource<core::Service> for Index {
    fn apply(&mut self, svc: core::Service) {
        let key = ServiceRef::new(svc.namespace().unwrap_or_default(), svc.name_any());
        let what = key.to_string();
        let opaque_ports = parse_port_ranges(&what, svc.annotations(), OPAQUE_PORTS_ANNOTATION);
        let resilience = service_resilience(&key, svc.annotations());
        let spec = svc.spec.unwrap_or_default();
        let mut ips: Vec<String> = spec.cluster_ips.unwrap_or_default();
        if let Some(ip) = spec.cluster_ip
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
        let cluster_ips = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
        let ports = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| {
                let port = u16::try_from(p.port).ok().and_then(NonZeroU16::new)?;
                let opaque = in_ranges(&opaque_ports, port.get())
                    || matches!(p.app_protocol.as_deref(), Some("tcp" | "weft.dev/opaque"));
                Some(ServicePortSpec {
                    port,
                    name: p.name.unwrap_or_default(),
                    opaque,
                })
            })
            .collect();
        let entry = Service {
            cluster_ips,
            ports,
            opaque_ports,
            resilience,
        };
        if self.services.get(&key) != Some(&entry) {
            self.services.insert(key.clone(), entry);
            self.dirty.endpoints.insert(key);
            self.dirty.outbound = true;
            self.dirty.addrs = true;
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        let svc = ServiceRef::new(key.namespace, key.name);
        if self.services.remove(&svc).is_some() {
            self.dirty.endpoints.insert(svc);
            self.dirty.outbound = true;
            self.dirty.addrs = true;
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<core::Service>) {
        let existing: Vec<_> = self
            .services
            .keys()
            .map(|s| ObjectKey::new(&s.namespace, &s.name))
            .collect();
        reset_with(self, existing, resources);
    }
}

impl IndexResource<discovery::EndpointSlice> for Index {
    fn apply(&mut self, slice: discovery::EndpointSlice) {
        let key = ObjectKey::of(&slice);
        let Some(service) = slice.labels().get("kubernetes.io/service-name").cloned() else {
            // Without the label the slice belongs to no service: as if it were deleted.
            tracing::debug!(slice = %key, "EndpointSlice without kubernetes.io/service-name label; ignored");
            IndexResource::<discovery::EndpointSlice>::delete(self, key);
            return;
        };
        let owner = ServiceRef::new(&key.namespace, service);
        let ports = slice
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| Some((p.name.unwrap_or_default(), u16::try_from(p.port?).ok()?)))
            .collect();
        let endpoints = slice
            .endpoints
            .into_iter()
            .flatten()
            .map(|ep| {
                let c = ep.conditions.unwrap_or_default();
                let ready = c.ready.unwrap_or(true);
                SliceEndpoint {
                    addresses: ep.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                    ready,
                    serving: c.serving.unwrap_or(ready),
                    terminating: c.terminating.unwrap_or(false),
                    pod: ep
                        .target_ref
                        .filter(|r| r.kind.as_deref() == Some("Pod"))
                        .and_then(|r| {
                            Some(ObjectKey::new(
                                r.namespace.unwrap_or_else(|| key.namespace.clone()),
                                r.name?,
                            ))
                        }),
                }
            })
            .collect();
        let entry = Slice { ports, endpoints };
        if let Some(previous) = self.slice_owner.insert(key.clone(), owner.clone())
            && previous != owner
        {
            if let Some(s) = self.slices.get_mut(&previous) {
                s.remove(&key.name);
            }
            self.dirty.endpoints.insert(previous);
        }
        let slices = self.slices.entry(owner.clone()).or_default();
        if slices.get(&key.name) != Some(&entry) {
            slices.insert(key.name, entry);
            self.dirty.endpoints.insert(owner);
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if let Some(owner) = self.slice_owner.remove(&key) {
            if let Some(s) = self.slices.get_mut(&owner) {
                s.remove(&key.name);
                if s.is_empty() {
                    self.slices.remove(&owner);
                }
            }
            self.dirty.endpoints.insert(owner);
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<discovery::EndpointSlice>) {
        let existing: Vec<_> = self.slice_owner.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}

impl IndexResource<core::Pod> for Index {
    fn apply(&mut self, pod: core::Pod) {
        let key = ObjectKey::of(&pod);
        let what = key.to_string();
        let annotations = pod.annotations();
        let entry = Pod {
            service_account: pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".to_string()),
            meshed: annotations.contains_key(PROXY_VERSION_ANNOTATION),
            default_policy: policy_annotation(&what, annotations),
            opaque_ports: parse_port_ranges(&what, annotations, OPAQUE_PORTS_ANNOTATION),
            skip_inbound_ports: parse_port_ranges(
                &what,
                annotations,
                SKIP_INBOUND_PORTS_ANNOTATION,
            ),
            labels: pod.labels().clone(),
            ports: named_ports(pod.spec.as_ref()),
            ips: pod_ips(&pod),
        };
        if self.pods.get(&key) != Some(&entry) {
            self.dirty.endpoints_ns.insert(key.namespace.clone());
            self.dirty.inbound_ns.insert(key.namespace.clone());
            let old = self.pods.insert(key.clone(), entry);
            self.unindex_pod_ips(&key, old.as_ref());
            let ips = self
                .pods
                .get(&key)
                .map(|p| p.ips.clone())
                .unwrap_or_default();
            self.dirty.pod_addrs |= !ips.is_empty();
            for ip in ips {
                self.pod_ips.insert(ip, key.clone());
            }
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if let Some(old) = self.pods.remove(&key) {
            self.dirty.endpoints_ns.insert(key.namespace.clone());
            self.dirty.inbound_ns.insert(key.namespace.clone());
            self.unindex_pod_ips(&key, Some(&old));
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<core::Pod>) {
        let existing: Vec<_> = self.pods.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}

impl Index {
    /// Forgets the IPs `old` (the previous version of pod `key`) had, unless another pod has
    /// taken them since.
    fn unindex_pod_ips(&mut self, key: &ObjectKey, old: Option<&Pod>) {
        for ip in old.into_iter().flat_map(|p| &p.ips) {
            if self.pod_ips.get(ip) == Some(key) {
                self.pod_ips.remove(ip);
                self.dirty.pod_addrs = true;
            }
        }
    }
}

/// The IPs that reach `pod` itself: none for a host-network pod (they are the node's) or a
/// pod that has finished (its IP may be reused).
fn pod_ips(pod: &core::Pod) -> Vec<IpAddr> {
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return vec![];
    }
    let Some(status) = &pod.status else {
        return vec![];
    };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return vec![];
    }
    let listed = status.pod_ips.iter().flatten().map(|p| p.ip.as_str());
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in status.pod_ip.as_deref().into_iter().chain(listed) {
        if let Ok(ip) = ip.parse()
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
    }
    ips
}

/// A pod's named TCP container ports (init containers too: native sidecars serve).
fn named_ports(spec: Option<&core::PodSpec>) -> BTreeMap<String, u16> {
    let containers = spec.into_iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    });
    containers
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
        .collect()
}

impl IndexResource<TrafficSplit> for Index {
    fn apply(&mut self, split: TrafficSplit) {
        let key = ObjectKey::of(&split);
        let backends = split
            .spec
            .backends
            .iter()
            .map(|b| {
                (
                    b.service.clone(),
                    u32::try_from(b.weight.max(0)).unwrap_or(u32::MAX),
                )
            })
            .collect();
        let entry = Split {
            root: split.spec.service.clone(),
            backends,
            created: created(&split),
        };
        if self.splits.get(&key) != Some(&entry) {
            self.splits.insert(key, entry);
            self.dirty.outbound = true;
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if self.splits.remove(&key).is_some() {
            self.dirty.outbound = true;
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<TrafficSplit>) {
        let existing: Vec<_> = self.splits.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}

impl IndexResource<HttpRoute> for Index {
    fn apply(&mut self, route: HttpRoute) {
        let key = ObjectKey::of(&route);
        let entry = convert_http_route(&key, route.annotations(), &route.spec, created(&route));
        let previous = self.http_routes.get(&key);
        if previous != Some(&entry) {
            // Only a route attached to a Server (before or after) changes inbound policy.
            if !entry.servers.is_empty() || previous.is_some_and(|r| !r.servers.is_empty()) {
                self.dirty.inbound_ns.insert(key.namespace.clone());
            }
            self.http_routes.insert(key, entry);
            self.dirty.outbound = true;
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if let Some(route) = self.http_routes.remove(&key) {
            if !route.servers.is_empty() {
                self.dirty.inbound_ns.insert(key.namespace);
            }
            self.dirty.outbound = true;
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<HttpRoute>) {
        let existing: Vec<_> = self.http_routes.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}

impl IndexResource<GrpcRoute> for Index {
    fn apply(&mut self, route: GrpcRoute) {
        let key = ObjectKey::of(&route);
        let entry = convert_grpc_route(&key, route.annotations(), &route.spec, created(&route));
        if self.grpc_routes.get(&key) != Some(&entry) {
            self.grpc_routes.insert(key, entry);
            self.dirty.outbound = true;
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if self.grpc_routes.remove(&key).is_some() {
            self.dirty.outbound = true;
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<GrpcRoute>) {
        let existing: Vec<_> = self.grpc_routes.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}
