//! `policy.weft.dev/v1alpha1`: who may reach which ports of which pods. The kinds and field
//! names follow Linkerd's `policy.linkerd.io` resources, so what users know carries over.
//!
//! The schemas live in `deploy/crds/policy.weft.dev_*.yaml` (written by hand, with the
//! validation the API server applies); the files source checks the same rules itself.

mod validate;

pub use validate::InvalidSpec;

use k8s_openapi::apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The API group of these kinds.
pub const POLICY_GROUP: &str = "policy.weft.dev";

/// `Server`: a port of the pods `podSelector` selects, and how its traffic is read.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "policy.weft.dev",
    version = "v1alpha1",
    kind = "Server",
    plural = "servers",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// The pods, in the Server's namespace; `{}` selects every pod.
    pub pod_selector: LabelSelector,
    /// A port number, or the name of a container port of the selected pods.
    pub port: IntOrString,
    /// How to read the port's traffic; detected when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// The default policy (`all-unauthenticated`, ..., `deny`) for traffic no
    /// AuthorizationPolicy applies to; `deny` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_policy: Option<String>,
}

/// A Server's `proxyProtocol`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    /// Detect HTTP.
    #[default]
    #[serde(rename = "unknown")]
    Unknown,
    /// HTTP/1.
    #[serde(rename = "HTTP/1")]
    Http1,
    /// HTTP/2.
    #[serde(rename = "HTTP/2")]
    Http2,
    /// gRPC.
    #[serde(rename = "gRPC")]
    Grpc,
    /// Opaque TCP.
    #[serde(rename = "opaque")]
    Opaque,
    /// TLS the application terminates.
    #[serde(rename = "TLS")]
    Tls,
}

/// `AuthorizationPolicy`: clients that prove every one of `requiredAuthenticationRefs` may
/// use `targetRef`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "policy.weft.dev",
    version = "v1alpha1",
    kind = "AuthorizationPolicy",
    plural = "authorizationpolicies",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    /// A `Server` (group `policy.weft.dev`), an `HTTPRoute` (group
    /// `gateway.networking.k8s.io`) attached to a Server, or the policy's own `Namespace`
    /// (group `""`: every Server in it), all in the policy's namespace.
    pub target_ref: TargetRef,
    /// `MeshTLSAuthentication`, `NetworkAuthentication` (group `policy.weft.dev`) or
    /// `ServiceAccount` (group `""`). All must be satisfied; none means anyone, from anywhere.
    #[serde(default)]
    pub required_authentication_refs: Vec<TargetRef>,
}

/// A reference to another object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// API group; empty or unset for core kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace, when the kind allows another one; the referring object's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl TargetRef {
    /// Whether this names `group`/`kind`; kinds compare case-insensitively, and `core` is
    /// the empty group.
    pub fn is(&self, group: &str, kind: &str) -> bool {
        let own = self.group.as_deref().unwrap_or("");
        let own = if own == "core" { "" } else { own };
        own == group && self.kind.eq_ignore_ascii_case(kind)
    }
}

/// `MeshTLSAuthentication`: clients with one of these mesh identities.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "policy.weft.dev",
    version = "v1alpha1",
    kind = "MeshTLSAuthentication",
    plural = "meshtlsauthentications",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct MeshTLSAuthenticationSpec {
    /// Identities: exact (`web.shop.serviceaccount.identity.cluster.local`), a suffix
    /// (`*.shop.serviceaccount.identity.cluster.local`) or `*` for any identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<String>>,
    /// `ServiceAccount`s (namespace defaults to this object's) or `Namespace`s (every
    /// ServiceAccount in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_refs: Option<Vec<TargetRef>>,
}

/// `NetworkAuthentication`: clients from these networks.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "policy.weft.dev",
    version = "v1alpha1",
    kind = "NetworkAuthentication",
    plural = "networkauthentications",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAuthenticationSpec {
    /// The networks.
    pub networks: Vec<NetworkSpec>,
}

/// One network of a NetworkAuthentication.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// `10.0.0.0/8`, `fd00::/8`, or one address.
    pub cidr: String,
    /// Networks inside `cidr` that are not allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<Vec<String>>,
}
