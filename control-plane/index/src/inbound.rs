//! Inbound policy of a pod's port. A port some `Server` selects gets that Server's protocol,
//! the AuthorizationPolicies that target it (or its namespace) and its HTTPRoutes, each with
//! the policies that target the route; any other port gets the default policy of the pod, its
//! namespace or the install.

mod apply;
mod authz;
pub(crate) mod policy;

use crate::{
    Index, ObjectKey,
    crds::{POLICY_GROUP, ProxyProtocol},
    resources::{Pod, Route, in_ranges},
};
use policy::{Policy, Server, ServerPort, Target};
use std::{collections::BTreeMap, time::Duration};
use weft_controller_core::{
    Authorization, InboundProtocol, InboundRoute, InboundRule, InboundServer, outbound::ResourceRef,
};

impl Index {
    /// The server for `port` of `pod`. A pod not (yet) indexed gets its namespace's default.
    pub(crate) fn inbound_server(&self, pod: &ObjectKey, port: u16) -> InboundServer {
        let p = self.pods.get(pod);
        if let Some((key, server)) = p.and_then(|p| self.select_server(pod, p, port)) {
            return self.server_policy(key, server);
        }
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

    /// The Server for `port` of `pod`: of those in the pod's namespace that select the pod
    /// and the port, the oldest (then by name), as Linkerd does.
    fn select_server<'a>(
        &'a self,
        key: &ObjectKey,
        pod: &Pod,
        port: u16,
    ) -> Option<(&'a ObjectKey, &'a Server)> {
        let mut servers: Vec<(&ObjectKey, &Server)> = in_namespace(&self.servers, &key.namespace)
            .filter(|(_, s)| {
                s.selector.matches(&pod.labels)
                    && match &s.port {
                        ServerPort::Number(n) => *n == port,
                        ServerPort::Name(name) => pod.ports.get(name) == Some(&port),
                        ServerPort::Invalid => false,
                    }
            })
            .collect();
        servers.sort_by(|a, b| (&a.1.created, a.0).cmp(&(&b.1.created, b.0)));
        if let [(chosen, _), others @ ..] = servers.as_slice()
            && !others.is_empty()
        {
            let ignored: Vec<&str> = others.iter().map(|(k, _)| k.name.as_str()).collect();
            tracing::warn!(pod = %key, port, server = %chosen.name, ?ignored, "several Servers select this port; the oldest is used");
        }
        servers.into_iter().next()
    }

    fn server_policy(&self, key: &ObjectKey, server: &Server) -> InboundServer {
        let policies: Vec<(&ObjectKey, &Policy)> =
            in_namespace(&self.authz_policies, &key.namespace).collect();
        let targeting = |target: &dyn Fn(&Target) -> bool| {
            self.authorizations(policies.iter().copied().filter(|(_, p)| target(&p.target)))
        };
        let server_level = targeting(&|t| match t {
            Target::Server(name) => *name == key.name,
            Target::Namespace => true,
            _ => false,
        });
        let default = || {
            server
                .access_policy
                .authorizations(&self.config.cluster_networks, &self.config.trust_domain)
        };
        let authorizations = server_level.clone().unwrap_or_else(default);
        let protocol = protocol(server.protocol, self.config.detect_timeout);
        let routes = self.attached_routes(key);
        let http_routes = if !protocol.is_http() {
            vec![]
        } else if routes.is_empty() || protocol == InboundProtocol::Grpc {
            if !routes.is_empty() {
                tracing::warn!(server = %key, "HTTPRoutes attached to a gRPC Server are ignored; its policies apply to every call");
            }
            vec![InboundRoute::any_path(authorizations.clone())]
        } else {
            routes
                .into_iter()
                .map(|(route_key, route)| {
                    let route_level =
                        targeting(&|t| matches!(t, Target::HttpRoute(n) if *n == route_key.name));
                    // The server's default applies only where no policy targets the route or
                    // the server; otherwise the policies are the whole list.
                    let authorizations = match (route_level, &server_level) {
                        (None, None) => default(),
                        (route, server) => route
                            .into_iter()
                            .flatten()
                            .chain(server.iter().flatten().cloned())
                            .collect(),
                    };
                    inbound_route(route_key, route, authorizations)
                })
                .collect()
        };
        InboundServer {
            protocol,
            authorizations,
            http_routes,
            labels: vec![
                ("kind".to_string(), "server".to_string()),
                ("name".to_string(), key.name.clone()),
            ],
        }
    }

    /// The HTTPRoutes attached to the Server `key`, oldest first, then by name.
    fn attached_routes<'a>(&'a self, key: &ObjectKey) -> Vec<(&'a ObjectKey, &'a Route)> {
        let mut routes: Vec<_> = in_namespace(&self.http_routes, &key.namespace)
            .filter(|(_, r)| r.servers.contains(&key.name))
            .collect();
        routes.sort_by(|a, b| (&a.1.created, a.0).cmp(&(&b.1.created, b.0)));
        routes
    }

    /// The authorizations of `policies`, or `None` if there are no policies (so a default
    /// applies). A policy that cannot be satisfied gives no authorization but still counts:
    /// a broken policy must not fall back to a more open default.
    fn authorizations<'a>(
        &self,
        policies: impl Iterator<Item = (&'a ObjectKey, &'a Policy)>,
    ) -> Option<Vec<Authorization>> {
        let mut any = false;
        let mut authorizations = vec![];
        for (key, policy) in policies {
            any = true;
            match self.authorization(key, policy) {
                Ok(a) => authorizations.push(a),
                Err(reason) => {
                    tracing::warn!(authorizationpolicy = %key, %reason, "policy not applied; it allows no one")
                }
            }
        }
        any.then_some(authorizations)
    }
}

fn protocol(p: ProxyProtocol, detect_timeout: Duration) -> InboundProtocol {
    match p {
        ProxyProtocol::Unknown => InboundProtocol::Detect {
            timeout: detect_timeout,
        },
        ProxyProtocol::Http1 => InboundProtocol::Http1,
        ProxyProtocol::Http2 => InboundProtocol::Http2,
        ProxyProtocol::Grpc => InboundProtocol::Grpc,
        ProxyProtocol::Opaque => InboundProtocol::Opaque,
        ProxyProtocol::Tls => InboundProtocol::Tls,
    }
}

fn inbound_route(
    key: &ObjectKey,
    route: &Route,
    authorizations: Vec<Authorization>,
) -> InboundRoute {
    InboundRoute {
        resource: ResourceRef::Resource {
            group: "gateway.networking.k8s.io".to_string(),
            kind: "HTTPRoute".to_string(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        },
        hostnames: route.hostnames.clone(),
        // Gateway API's default for a route without rules: one rule matching every request.
        rules: match route.http_rules.as_slice() {
            [] => vec![InboundRule::default()],
            rules => rules
                .iter()
                .map(|rule| InboundRule {
                    matches: rule.matches.clone(),
                })
                .collect(),
        },
        authorizations,
    }
}

/// The entries of `map` in `namespace`: keys sort by namespace first, so they are one range.
fn in_namespace<'a, 'n, V>(
    map: &'a BTreeMap<ObjectKey, V>,
    namespace: &'n str,
) -> impl Iterator<Item = (&'a ObjectKey, &'a V)> + use<'a, 'n, V> {
    map.range(ObjectKey::new(namespace, "")..)
        .take_while(move |(k, _)| k.namespace == namespace)
}

/// The Servers among an HTTPRoute's parentRefs (`policy.weft.dev` `Server`), by name. A parent
/// in another namespace is ignored with a warning: a Server's routes live beside it.
pub(crate) fn server_parents<'a>(
    route: &ObjectKey,
    parents: impl Iterator<Item = (Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>)>,
) -> Vec<String> {
    parents
        .filter(|(group, kind, ..)| *group == Some(POLICY_GROUP) && *kind == Some("Server"))
        .filter_map(|(_, _, name, namespace)| match namespace {
            Some(ns) if ns != route.namespace => {
                tracing::warn!(httproute = %route, server = %name, namespace = %ns, "a Server in another namespace cannot be a parent; ignored");
                None
            }
            _ => Some(name.to_string()),
        })
        .collect()
}
