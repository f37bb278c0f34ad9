//! Whether a pod is injected: asked for by its namespace or itself (`weft.dev/inject`, the
//! pod's own word first), never twice, never on the node's network.

use crate::{
    Annotations,
    annotations::{INJECT, PROXY_VERSION},
    patch::{CONTAINER_NAMES, VOLUME_NAMES},
    pod::PodView,
};

/// Why a pod is left as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Neither the pod nor its namespace asks for injection.
    NotEnabled,
    /// The pod says `weft.dev/inject: disabled`.
    Disabled,
    /// The pod uses the node's network namespace, which a redirect would capture whole.
    HostNetwork,
    /// The pod carries the proxy already.
    AlreadyInjected,
    /// The pod has a container or volume of a name the injection would add.
    NameTaken(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NotEnabled => {
                write!(f, "neither the pod nor its namespace has {INJECT}: enabled")
            }
            Skip::Disabled => write!(f, "the pod has {INJECT}: disabled"),
            Skip::HostNetwork => write!(f, "the pod uses hostNetwork"),
            Skip::AlreadyInjected => write!(f, "the pod already has the Weft proxy"),
            Skip::NameTaken(name) => {
                write!(f, "the pod already has a container or volume named {name}")
            }
        }
    }
}

/// `Ok` to inject `pod` in a namespace with `namespace` annotations; else why not. A value of
/// `weft.dev/inject` that is neither `enabled` nor `disabled` is ignored with a warning.
pub(crate) fn decide(
    pod: &PodView,
    namespace: &Annotations,
    warnings: &mut Vec<String>,
) -> Result<(), Skip> {
    let mut wanted = |annotations: &Annotations, on: &str| match annotations
        .get(INJECT)
        .map(String::as_str)
    {
        Some("enabled") => Some(true),
        Some("disabled") => Some(false),
        None => None,
        Some(other) => {
            warnings.push(format!(
                "weft-injector: ignored {INJECT}={other:?} on the {on}; expected enabled or disabled"
            ));
            None
        }
    };
    let pod_wants = wanted(&pod.annotations, "pod");
    let namespace_wants = wanted(namespace, "namespace");
    match pod_wants.or(namespace_wants) {
        Some(true) => {}
        Some(false) if pod_wants.is_some() => return Err(Skip::Disabled),
        _ => return Err(Skip::NotEnabled),
    }
    if pod.annotations.contains_key(PROXY_VERSION)
        || pod
            .containers
            .iter()
            .chain(&pod.init_containers)
            .any(|c| CONTAINER_NAMES.contains(&c.as_str()))
    {
        return Err(Skip::AlreadyInjected);
    }
    if pod.host_network {
        warnings.push(format!(
            "weft-injector: not injected: {}",
            Skip::HostNetwork
        ));
        return Err(Skip::HostNetwork);
    }
    if let Some(taken) = pod
        .volumes
        .iter()
        .find(|v| VOLUME_NAMES.contains(&v.as_str()))
    {
        let skip = Skip::NameTaken(taken.clone());
        warnings.push(format!("weft-injector: not injected: {skip}"));
        return Err(skip);
    }
    Ok(())
}
