//! Endpoints of a service port, from its EndpointSlices and the pods behind them.

use crate::{
    Index,
    resources::{PROXY_ADMIN_PORT, in_ranges},
};
use std::{collections::BTreeMap, net::SocketAddr};
use weft_controller_core::{
    Endpoint, EndpointSet, ProtocolHint, ServicePort, endpoints::DEFAULT_WEIGHT,
};

impl Index {
    /// The endpoints of `target` now. Ready endpoints are used; terminating endpoints that are
    /// still serving are used only when none is ready, as Kubernetes' own proxies do, so a
    /// rollout never empties a service while old pods can still answer.
    pub(crate) fn endpoint_set(&self, target: &ServicePort) -> EndpointSet {
        let Some(svc) = self.services.get(&target.service) else {
            return EndpointSet::default();
        };
        let port_spec = svc.ports.iter().find(|p| p.port == target.port);
        let port_name = port_spec.map(|p| p.name.as_str()).unwrap_or("");
        let opaque = port_spec.is_some_and(|p| p.opaque);
        let mut labels = BTreeMap::new();
        labels.insert("namespace".to_string(), target.service.namespace.clone());
        labels.insert("service".to_string(), target.service.name.clone());
        let mut ready = BTreeMap::new();
        let mut terminating = BTreeMap::new();
        for slice in self
            .slices
            .get(&target.service)
            .into_iter()
            .flat_map(|s| s.values())
        {
            // A port the Service does not declare is looked up by number, as a target port.
            let port = match (port_spec, slice.ports.get(port_name)) {
                (Some(_), Some(p)) => *p,
                (Some(_), None) => continue,
                (None, _) => target.port.get(),
            };
            for ep in &slice.endpoints {
                let into = if ep.ready {
                    &mut ready
                } else if ep.serving && ep.terminating {
                    &mut terminating
                } else {
                    continue;
                };
                for ip in &ep.addresses {
                    let addr = SocketAddr::new(*ip, port);
                    into.insert(
                        addr,
                        self.endpoint(addr, ep.pod.as_ref(), opaque, ep.terminating),
                    );
                }
            }
        }
        EndpointSet {
            exists: true,
            labels,
            endpoints: if ready.is_empty() { terminating } else { ready },
        }
    }

    /// The pod whose IP `addr` has, as an endpoint at that address: what a proxy dialing a
    /// pod IP directly should expect there (identity and protocol hint if it is meshed).
    pub(crate) fn pod_endpoint(&self, addr: SocketAddr) -> Option<Endpoint> {
        let key = self.pod_ips.get(&addr.ip())?;
        Some(self.endpoint(addr, Some(key), false, false))
    }

    fn endpoint(
        &self,
        addr: SocketAddr,
        pod_key: Option<&crate::ObjectKey>,
        opaque_service_port: bool,
        terminating: bool,
    ) -> Endpoint {
        let pod = pod_key.and_then(|k| self.pods.get(k).map(|p| (k, p)));
        let mut labels = BTreeMap::new();
        let (mut identity, mut protocol_hint) = (None, None);
        if let Some((key, pod)) = pod {
            labels.insert("pod".to_string(), key.name.clone());
            labels.insert("serviceaccount".to_string(), pod.service_account.clone());
            for l in [
                "app",
                "app.kubernetes.io/name",
                "version",
                "app.kubernetes.io/version",
            ] {
                if let Some(v) = pod.labels.get(l) {
                    labels.insert(l.rsplit('/').next().unwrap_or(l).to_string(), v.clone());
                }
            }
            // The proxy's own admin port and skipped ports reach a plaintext socket, not the
            // inbound proxy: no identity to prove there.
            let proxied =
                addr.port() != PROXY_ADMIN_PORT && !in_ranges(&pod.skip_inbound_ports, addr.port());
            if pod.meshed && proxied {
                identity = Some(format!(
                    "{}.{}.serviceaccount.identity.{}",
                    pod.service_account, key.namespace, self.config.trust_domain
                ));
                let opaque = opaque_service_port || in_ranges(&pod.opaque_ports, addr.port());
                protocol_hint = Some(if opaque {
                    ProtocolHint::Opaque
                } else {
                    ProtocolHint::H2
                });
            }
        }
        if protocol_hint.is_none() && opaque_service_port {
            protocol_hint = Some(ProtocolHint::Opaque);
        }
        Endpoint {
            addr,
            weight: DEFAULT_WEIGHT,
            identity,
            protocol_hint,
            labels,
            pod: pod_key.map(|k| (k.namespace.clone(), k.name.clone())),
            terminating,
        }
    }
}
