//! What the CRD schemas in `deploy/crds` reject, for sources that skip the API server (the
//! files source), plus the rules a schema cannot say. The index itself never rejects: it
//! fails closed on what it cannot use.

use super::{
    AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, POLICY_GROUP, Server,
    TargetRef,
};
use crate::inbound::policy::cidr;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use weft_controller_core::DefaultPolicy;

/// A field of a `policy.weft.dev` object that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {path}: {reason}")]
pub struct InvalidSpec {
    /// The field, `spec.port`.
    pub path: String,
    /// What is wrong with it and what is accepted.
    pub reason: String,
}

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        path: path.into(),
        reason: reason.into(),
    }
}

impl Server {
    /// Checks the port, `accessPolicy` and the selector's operators.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        match &self.spec.port {
            IntOrString::Int(n) if !(1..=65535).contains(n) => {
                return Err(invalid(
                    "spec.port",
                    format!("{n} is not a port number (1-65535)"),
                ));
            }
            IntOrString::String(s) if s.is_empty() || s.len() > 15 => {
                return Err(invalid(
                    "spec.port",
                    format!("{s:?} is not a container port name (1-15 characters)"),
                ));
            }
            _ => {}
        }
        if let Some(p) = &self.spec.access_policy {
            p.parse::<DefaultPolicy>()
                .map_err(|e| invalid("spec.accessPolicy", e.to_string()))?;
        }
        for (i, e) in self
            .spec
            .pod_selector
            .match_expressions
            .iter()
            .flatten()
            .enumerate()
        {
            let path = format!("spec.podSelector.matchExpressions[{i}]");
            let values = e.values.as_ref().map_or(0, Vec::len);
            match (e.operator.as_str(), values) {
                ("In" | "NotIn", 0) => {
                    return Err(invalid(
                        format!("{path}.values"),
                        format!("{} needs at least one value", e.operator),
                    ));
                }
                ("Exists" | "DoesNotExist", n) if n > 0 => {
                    return Err(invalid(
                        format!("{path}.values"),
                        format!("{} takes no values", e.operator),
                    ));
                }
                ("In" | "NotIn" | "Exists" | "DoesNotExist", _) => {}
                (other, _) => {
                    return Err(invalid(
                        format!("{path}.operator"),
                        format!("{other:?} is not In, NotIn, Exists or DoesNotExist"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl AuthorizationPolicy {
    /// Checks the target's and each required authentication's kind.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        let t = &self.spec.target_ref;
        let own = self.namespace().unwrap_or_default();
        if !(t.is(POLICY_GROUP, "Server")
            || t.is("gateway.networking.k8s.io", "HTTPRoute")
            || t.is("", "Namespace"))
        {
            return Err(invalid(
                "spec.targetRef",
                format!(
                    "{} is not Server ({POLICY_GROUP}), HTTPRoute (gateway.networking.k8s.io) or Namespace (\"\")",
                    describe(t)
                ),
            ));
        }
        if t.namespace.as_ref().is_some_and(|ns| *ns != own)
            || (t.is("", "Namespace") && t.name != own)
        {
            return Err(invalid(
                "spec.targetRef",
                format!("a policy in namespace {own} can only target objects in {own}"),
            ));
        }
        for (i, r) in self.spec.required_authentication_refs.iter().enumerate() {
            if !(r.is(POLICY_GROUP, "MeshTLSAuthentication")
                || r.is(POLICY_GROUP, "NetworkAuthentication")
                || r.is("", "ServiceAccount"))
            {
                return Err(invalid(
                    format!("spec.requiredAuthenticationRefs[{i}]"),
                    format!(
                        "{} is not MeshTLSAuthentication, NetworkAuthentication ({POLICY_GROUP}) or ServiceAccount (\"\")",
                        describe(r)
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn describe(r: &TargetRef) -> String {
    format!(
        "kind {} in group {:?}",
        r.kind,
        r.group.as_deref().unwrap_or("")
    )
}

impl MeshTLSAuthentication {
    /// Checks there is at least one identity, each is a name, `*.suffix` or `*`, and each ref
    /// is a ServiceAccount or Namespace.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        let ids = self.spec.identities.as_deref().unwrap_or_default();
        let refs = self.spec.identity_refs.as_deref().unwrap_or_default();
        if ids.is_empty() && refs.is_empty() {
            return Err(invalid("spec", "needs identities or identityRefs"));
        }
        for (i, id) in ids.iter().enumerate() {
            let name = id.strip_prefix("*.").unwrap_or(id);
            if id != "*" && (name.is_empty() || name.contains('*')) {
                return Err(invalid(
                    format!("spec.identities[{i}]"),
                    format!("{id:?} is not an identity, `*.` and a suffix, or `*`"),
                ));
            }
        }
        for (i, r) in refs.iter().enumerate() {
            if !(r.is("", "ServiceAccount") || r.is("", "Namespace")) {
                return Err(invalid(
                    format!("spec.identityRefs[{i}]"),
                    format!("{} is not ServiceAccount or Namespace", describe(r)),
                ));
            }
        }
        Ok(())
    }
}

impl NetworkAuthentication {
    /// Checks there is a network and every CIDR parses.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        if self.spec.networks.is_empty() {
            return Err(invalid("spec.networks", "needs at least one network"));
        }
        for (i, n) in self.spec.networks.iter().enumerate() {
            cidr(&n.cidr).map_err(|e| invalid(format!("spec.networks[{i}].cidr"), e))?;
            for (j, e) in n.except.iter().flatten().enumerate() {
                cidr(e).map_err(|e| invalid(format!("spec.networks[{i}].except[{j}]"), e))?;
            }
        }
        Ok(())
    }
}
