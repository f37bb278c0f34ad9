//! One AuthorizationPolicy into one [`Authorization`]: the client must satisfy every required
//! authentication.

use super::policy::{Identities, Policy, Required};
use crate::{Index, ObjectKey, crds::POLICY_GROUP};
use weft_controller_core::{Authentication, Authorization, Network, outbound::ResourceRef};

impl Index {
    /// The authorization `policy` grants, or why it grants nothing: a required authentication
    /// that is missing, unusable, unsupported, or cannot be combined with the others.
    pub(super) fn authorization(
        &self,
        key: &ObjectKey,
        policy: &Policy,
    ) -> Result<Authorization, String> {
        let mut networks: Option<Vec<Network>> = None;
        let mut mesh_tls: Option<Identities> = None;
        let mut accounts: Vec<String> = vec![];
        for required in &policy.required {
            match required {
                Required::Network(k) => {
                    if networks.is_some() {
                        return Err("more than one NetworkAuthentication is required; list the networks in one".to_string());
                    }
                    let found = self
                        .network_authns
                        .get(k)
                        .ok_or_else(|| missing("NetworkAuthentication", k))?;
                    networks = Some(
                        found
                            .clone()
                            .map_err(|e| unusable("NetworkAuthentication", k, &e))?,
                    );
                }
                Required::MeshTls(k) => {
                    if mesh_tls.is_some() {
                        return Err("more than one MeshTLSAuthentication is required; list the identities in one".to_string());
                    }
                    let found = self
                        .mtls_authns
                        .get(k)
                        .ok_or_else(|| missing("MeshTLSAuthentication", k))?;
                    mesh_tls = Some(
                        found
                            .clone()
                            .map_err(|e| unusable("MeshTLSAuthentication", k, &e))?,
                    );
                }
                Required::Identity(id) => accounts.push(id.clone()),
                Required::Unsupported(reason) => return Err(reason.clone()),
            }
        }
        // ServiceAccount refs name the identities a client may have (a client has one, so
        // together they are alternatives, as in Linkerd); with a MeshTLSAuthentication too, the
        // client needs an identity both allow.
        let identities = match (mesh_tls, accounts.is_empty()) {
            (None, true) => None,
            (None, false) => Some(Identities {
                exact: accounts,
                suffixes: vec![],
            }),
            (Some(m), true) => Some(m),
            (Some(m), false) => Some(Identities {
                exact: accounts.into_iter().filter(|id| m.allows(id)).collect(),
                suffixes: vec![],
            }),
        };
        Ok(Authorization {
            resource: ResourceRef::Resource {
                group: POLICY_GROUP.to_string(),
                kind: "AuthorizationPolicy".to_string(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            },
            networks: networks.unwrap_or_else(Network::all),
            authentication: match identities {
                None => Authentication::Unauthenticated,
                Some(ids) => Authentication::MeshTls {
                    identities: ids.exact,
                    suffixes: ids.suffixes,
                },
            },
        })
    }
}

fn missing(kind: &str, key: &ObjectKey) -> String {
    format!("the required {kind} {key} does not exist")
}

fn unusable(kind: &str, key: &ObjectKey, reason: &str) -> String {
    format!("the required {kind} {key} is unusable: {reason}")
}
