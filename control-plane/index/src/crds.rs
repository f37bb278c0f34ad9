//! Custom resources Weft reads that no crate defines: SMI `TrafficSplit` and the
//! `policy.weft.dev` authorization kinds.
//! Gateway API `HTTPRoute`/`GRPCRoute` come from the `gateway-api` crate.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `split.smi-spec.io/v1alpha2` TrafficSplit: traffic for `service` goes to `backends` by weight.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "split.smi-spec.io",
    version = "v1alpha2",
    kind = "TrafficSplit",
    plural = "trafficsplits",
    namespaced
)]
pub struct TrafficSplitSpec {
    /// The root service clients address (FQDN or name in the split's namespace).
    pub service: String,
    /// Where its traffic goes.
    pub backends: Vec<TrafficSplitBackend>,
    /// HTTPRouteGroup matches (not supported by Weft; HTTPRoute covers this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<serde_json::Value>>,
}

/// One backend of a TrafficSplit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct TrafficSplitBackend {
    /// A service in the split's namespace.
    pub service: String,
    /// Relative weight.
    pub weight: i64,
}

mod policy;

pub use policy::{
    AuthorizationPolicy, AuthorizationPolicySpec, InvalidSpec, MeshTLSAuthentication,
    MeshTLSAuthenticationSpec, NetworkAuthentication, NetworkAuthenticationSpec, NetworkSpec,
    POLICY_GROUP, ProxyProtocol, Server, ServerSpec, TargetRef,
};
