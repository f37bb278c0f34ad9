//! Compact copies of the `policy.weft.dev` objects, converted once when applied. What cannot
//! be used is kept as a reason, so the policies that depend on it fail closed with a warning
//! that says why.

use crate::{
    ObjectKey,
    crds::{
        AuthorizationPolicySpec, MeshTLSAuthenticationSpec, NetworkAuthenticationSpec,
        POLICY_GROUP, ProxyProtocol, ServerSpec,
    },
};
use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString};
use std::{collections::BTreeMap, net::IpAddr};
use weft_controller_core::{DefaultPolicy, Network};

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// A Server.
#[derive(Debug, PartialEq)]
pub(crate) struct Server {
    pub selector: Selector,
    pub port: ServerPort,
    pub protocol: ProxyProtocol,
    pub access_policy: DefaultPolicy,
    pub created: Option<String>,
}

/// Which port of a pod a Server is for.
#[derive(Debug, PartialEq)]
pub(crate) enum ServerPort {
    Number(u16),
    /// A container port's name.
    Name(String),
    /// Out of range: the Server selects no port.
    Invalid,
}

/// A label selector; a selector with an unknown operator selects nothing.
#[derive(Debug, PartialEq, Default)]
pub(crate) struct Selector {
    labels: BTreeMap<String, String>,
    expressions: Vec<(String, Operator)>,
}

#[derive(Debug, PartialEq)]
enum Operator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    /// Never matches.
    Invalid,
}

/// An AuthorizationPolicy: what it applies to and what it requires.
#[derive(Debug, PartialEq)]
pub(crate) struct Policy {
    pub target: Target,
    pub required: Vec<Required>,
}

/// What a policy applies to, in its own namespace.
#[derive(Debug, PartialEq)]
pub(crate) enum Target {
    Server(String),
    HttpRoute(String),
    /// Every Server of the policy's namespace.
    Namespace,
    /// Nothing: a kind or namespace Weft does not support (the reason).
    Unsupported(String),
}

/// One of a policy's `requiredAuthenticationRefs`.
#[derive(Debug, PartialEq)]
pub(crate) enum Required {
    MeshTls(ObjectKey),
    Network(ObjectKey),
    /// A ServiceAccount's identity (the account need not exist: nobody else can have it).
    Identity(String),
    /// A ref Weft cannot satisfy (the reason): the policy never applies.
    Unsupported(String),
}

/// The identities a MeshTLSAuthentication allows.
#[derive(Debug, PartialEq, Clone, Default)]
pub(crate) struct Identities {
    pub exact: Vec<String>,
    pub suffixes: Vec<Vec<String>>,
}

/// A MeshTLSAuthentication, or why it cannot be used.
pub(crate) type MeshTls = Result<Identities, String>;
/// A NetworkAuthentication's networks, or why they cannot be used.
pub(crate) type Networks = Result<Vec<Network>, String>;

// === conversion ===

pub(crate) fn server(key: &ObjectKey, spec: &ServerSpec, created: Option<String>) -> Server {
    let port = match &spec.port {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|p| *p > 0)
            .map_or(ServerPort::Invalid, ServerPort::Number),
        IntOrString::String(name) => ServerPort::Name(name.clone()),
    };
    if port == ServerPort::Invalid {
        tracing::warn!(server = %key, port = ?spec.port, "Server port is not 1-65535; it selects no port");
    }
    let access_policy = match spec.access_policy.as_deref().map(str::parse) {
        None => DefaultPolicy::Deny,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            tracing::warn!(server = %key, error = %e, "invalid accessPolicy; using deny");
            DefaultPolicy::Deny
        }
    };
    Server {
        selector: selector(key, &spec.pod_selector),
        port,
        protocol: spec.proxy_protocol.unwrap_or_default(),
        access_policy,
        created,
    }
}

fn selector(key: &ObjectKey, s: &LabelSelector) -> Selector {
    let expressions = s
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            let values = || e.values.clone().unwrap_or_default();
            let op = match e.operator.as_str() {
                "In" => Operator::In(values()),
                "NotIn" => Operator::NotIn(values()),
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    tracing::warn!(server = %key, operator = other, "unknown matchExpressions operator; the Server selects no pod");
                    Operator::Invalid
                }
            };
            (e.key.clone(), op)
        })
        .collect();
    Selector {
        labels: s.match_labels.clone().unwrap_or_default(),
        expressions,
    }
}

impl Selector {
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(k, op)| match op {
                Operator::In(values) => labels.get(k).is_some_and(|v| values.contains(v)),
                Operator::NotIn(values) => labels.get(k).is_none_or(|v| !values.contains(v)),
                Operator::Exists => labels.contains_key(k),
                Operator::DoesNotExist => !labels.contains_key(k),
                Operator::Invalid => false,
            })
    }
}

pub(crate) fn policy(
    key: &ObjectKey,
    spec: &AuthorizationPolicySpec,
    trust_domain: &str,
) -> Policy {
    let t = &spec.target_ref;
    let other_namespace = t.namespace.as_ref().filter(|ns| **ns != key.namespace);
    let target = if let Some(ns) = other_namespace {
        Target::Unsupported(format!(
            "targetRef names namespace {ns}; a policy targets objects in its own namespace"
        ))
    } else if t.is(POLICY_GROUP, "Server") {
        Target::Server(t.name.clone())
    } else if t.is(GATEWAY_GROUP, "HTTPRoute") {
        Target::HttpRoute(t.name.clone())
    } else if t.is("", "Namespace") {
        if t.name == key.namespace {
            Target::Namespace
        } else {
            Target::Unsupported(format!(
                "targetRef names Namespace {}; only the policy's own namespace can be targeted",
                t.name
            ))
        }
    } else {
        Target::Unsupported(format!(
            "targetRef kind {} (group {:?}) is not supported; expected Server ({POLICY_GROUP}), HTTPRoute ({GATEWAY_GROUP}) or Namespace",
            t.kind,
            t.group.as_deref().unwrap_or("")
        ))
    };
    let required = spec
        .required_authentication_refs
        .iter()
        .map(|r| {
            let ns = r.namespace.clone().unwrap_or_else(|| key.namespace.clone());
            if r.is(POLICY_GROUP, "MeshTLSAuthentication") {
                Required::MeshTls(ObjectKey::new(ns, &r.name))
            } else if r.is(POLICY_GROUP, "NetworkAuthentication") {
                Required::Network(ObjectKey::new(ns, &r.name))
            } else if r.is("", "ServiceAccount") {
                Required::Identity(identity(&r.name, &ns, trust_domain))
            } else {
                Required::Unsupported(format!("requiredAuthenticationRefs kind {} (group {:?}) is not supported; expected MeshTLSAuthentication, NetworkAuthentication ({POLICY_GROUP}) or ServiceAccount", r.kind, r.group.as_deref().unwrap_or("")))
            }
        })
        .collect();
    Policy { target, required }
}

/// `<sa>.<ns>.serviceaccount.identity.<trust domain>`.
fn identity(sa: &str, ns: &str, trust_domain: &str) -> String {
    format!("{sa}.{ns}.serviceaccount.identity.{trust_domain}")
}

pub(crate) fn mesh_tls(
    key: &ObjectKey,
    spec: &MeshTLSAuthenticationSpec,
    trust_domain: &str,
) -> MeshTls {
    let mut ids = Identities::default();
    for id in spec.identities.iter().flatten() {
        if id == "*" {
            ids.suffixes.push(vec![]);
        } else if let Some(suffix) = id.strip_prefix("*.") {
            ids.suffixes
                .push(suffix.split('.').map(str::to_string).collect());
        } else if id.is_empty() || id.contains('*') {
            return Err(format!(
                "identity {id:?} is not a name, `*.` and a suffix, or `*`"
            ));
        } else {
            ids.exact.push(id.clone());
        }
    }
    for r in spec.identity_refs.iter().flatten() {
        if r.is("", "ServiceAccount") {
            let ns = r.namespace.as_deref().unwrap_or(&key.namespace);
            ids.exact.push(identity(&r.name, ns, trust_domain));
        } else if r.is("", "Namespace") {
            let suffix = format!("{}.serviceaccount.identity.{trust_domain}", r.name);
            ids.suffixes
                .push(suffix.split('.').map(str::to_string).collect());
        } else {
            return Err(format!(
                "identityRefs kind {} is not supported; expected ServiceAccount or Namespace",
                r.kind
            ));
        }
    }
    if ids.exact.is_empty() && ids.suffixes.is_empty() {
        return Err("no identities and no identityRefs".to_string());
    }
    Ok(ids)
}

pub(crate) fn networks(spec: &NetworkAuthenticationSpec) -> Networks {
    if spec.networks.is_empty() {
        return Err("no networks".to_string());
    }
    spec.networks
        .iter()
        .map(|n| {
            let except = n
                .except
                .iter()
                .flatten()
                .map(|e| cidr(e))
                .collect::<Result<_, _>>()?;
            Ok(Network {
                net: cidr(&n.cidr)?,
                except,
            })
        })
        .collect()
}

/// A network, or one address as a /32 or /128.
pub(crate) fn cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not a CIDR (10.0.0.0/8, fd00::/8) or an IP address"))
}

impl Identities {
    /// Whether `id` is one of these identities.
    pub(crate) fn allows(&self, id: &str) -> bool {
        self.exact.iter().any(|e| e == id)
            || self.suffixes.iter().any(|s| {
                let suffix = s.join(".");
                s.is_empty()
                    || id
                        .strip_suffix(&suffix)
                        .is_some_and(|rest| rest.ends_with('.'))
            })
    }
}
