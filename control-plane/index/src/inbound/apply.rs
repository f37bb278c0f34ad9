//! [`IndexResource`] for the `policy.weft.dev` kinds. Each change marks the namespaces whose
//! inbound results it may change; `publish` recomputes the watched ports there.

use super::policy;
use crate::{
    Index, IndexResource, ObjectKey,
    crds::{AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server},
    resources::{created, reset_with},
};
use std::collections::BTreeMap;

/// Replaces (or with `None`, removes) `key` in `map`; whether anything changed.
fn replace<V: PartialEq>(
    map: &mut BTreeMap<ObjectKey, V>,
    key: &ObjectKey,
    value: Option<V>,
) -> bool {
    match value {
        Some(v) if map.get(key) == Some(&v) => false,
        Some(v) => {
            map.insert(key.clone(), v);
            true
        }
        None => map.remove(key).is_some(),
    }
}

impl Index {
    /// An authentication changed: its namespace and those of the policies that require it.
    fn authentication_changed(&mut self, key: &ObjectKey) {
        let users = self.authz_policies.iter().filter(|(_, p)| {
            p.required.iter().any(|r| match r {
                policy::Required::MeshTls(k) | policy::Required::Network(k) => k == key,
                _ => false,
            })
        });
        let namespaces: Vec<String> = users.map(|(k, _)| k.namespace.clone()).collect();
        self.dirty.inbound_ns.extend(namespaces);
        self.dirty.inbound_ns.insert(key.namespace.clone());
    }
}

impl IndexResource<Server> for Index {
    fn apply(&mut self, server: Server) {
        let key = ObjectKey::of(&server);
        let entry = policy::server(&key, &server.spec, created(&server));
        if replace(&mut self.servers, &key, Some(entry)) {
            self.dirty.inbound_ns.insert(key.namespace);
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if replace(&mut self.servers, &key, None) {
            self.dirty.inbound_ns.insert(key.namespace);
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<Server>) {
        let existing: Vec<_> = self.servers.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}

impl IndexResource<AuthorizationPolicy> for Index {
    fn apply(&mut self, p: AuthorizationPolicy) {
        let key = ObjectKey::of(&p);
        let entry = policy::policy(&key, &p.spec, &self.config.trust_domain);
        if replace(&mut self.authz_policies, &key, Some(entry)) {
            self.dirty.inbound_ns.insert(key.namespace);
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if replace(&mut self.authz_policies, &key, None) {
            self.dirty.inbound_ns.insert(key.namespace);
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<AuthorizationPolicy>) {
        let existing: Vec<_> = self.authz_policies.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}

impl IndexResource<MeshTLSAuthentication> for Index {
    fn apply(&mut self, a: MeshTLSAuthentication) {
        let key = ObjectKey::of(&a);
        let entry = policy::mesh_tls(&key, &a.spec, &self.config.trust_domain);
        if let Err(reason) = &entry {
            tracing::warn!(meshtlsauthentication = %key, %reason, "unusable; the policies requiring it deny");
        }
        if replace(&mut self.mtls_authns, &key, Some(entry)) {
            self.authentication_changed(&key);
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if replace(&mut self.mtls_authns, &key, None) {
            self.authentication_changed(&key);
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<MeshTLSAuthentication>) {
        let existing: Vec<_> = self.mtls_authns.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}

impl IndexResource<NetworkAuthentication> for Index {
    fn apply(&mut self, a: NetworkAuthentication) {
        let key = ObjectKey::of(&a);
        let entry = policy::networks(&a.spec);
        if let Err(reason) = &entry {
            tracing::warn!(networkauthentication = %key, %reason, "unusable; the policies requiring it deny");
        }
        if replace(&mut self.network_authns, &key, Some(entry)) {
            self.authentication_changed(&key);
        }
        self.publish();
    }

    fn delete(&mut self, key: ObjectKey) {
        if replace(&mut self.network_authns, &key, None) {
            self.authentication_changed(&key);
        }
        self.publish();
    }

    fn reset(&mut self, resources: Vec<NetworkAuthentication>) {
        let existing: Vec<_> = self.network_authns.keys().cloned().collect();
        reset_with(self, existing, resources);
    }
}
