//! Inbound policy of a pod's port: the default policy from the pod, its namespace or the
//! install, until authorization resources are indexed.

use crate::{Index, ObjectKey, resources::in_ranges};
use weft_controller_core::InboundServer;

impl Index {
    /// The server for `port` of `pod`. A pod not (yet) indexed gets its namespace's default.
    pub(crate) fn inbound_server(&self, pod: &ObjectKey, port: u16) -> InboundServer {
        let p = self.pods.get(pod);
        let policy = p
            .and_then(|p| p.default_policy)
            .or_else(|| {
                self.namespaces
                    .get(&pod.namespace)
                    .and_then(|n| n.default_policy)
            })
            .unwrap_or(self.config.default_policy);
        let opaque = p.is_some_and(|p| in_ranges(&p.opaque_ports, port));
        policy.server(
            opaque,
            self.config.detect_timeout,
            &self.config.cluster_networks,
            &self.config.trust_domain,
        )
    }
}
