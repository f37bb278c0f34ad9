//! `inbound.InboundServerPolicies`: the policy of one port of one pod.

use crate::{
    Workload,
    drain::{BoxStream, Drain},
    duration,
};
use futures::stream;
use std::sync::Arc;
use tokio::sync::watch;
use weft_controller_core::{
    Authentication, Authorization, DiscoverInboundServer, InboundServer, inbound::InboundProtocol,
};
use weft_proto::{
    http_route as route,
    inbound::{
        self as proto, Authn, Authz, IdentitySuffix, PortSpec, Server, authn,
        inbound_server_policies_server,
    },
    meta,
};

/// Serves `inbound.InboundServerPolicies` from a [`DiscoverInboundServer`].
#[derive(Clone, Debug)]
pub struct InboundServerPolicyServer<D> {
    discover: D,
    drain: Drain,
}

impl<D: DiscoverInboundServer> InboundServerPolicyServer<D> {
    /// Serves inbound policy from `discover`.
    pub fn new(discover: D) -> Self {
        Self {
            discover,
            drain: Drain::never(),
        }
    }

    pub(crate) fn with_drain(mut self, drain: Drain) -> Self {
        self.drain = drain;
        self
    }

    /// The tonic service, to add to a `tonic::transport::Server`.
    pub fn svc(self) -> inbound_server_policies_server::InboundServerPoliciesServer<Self> {
        inbound_server_policies_server::InboundServerPoliciesServer::new(self)
    }

    fn subscribe(
        &self,
        spec: PortSpec,
    ) -> Result<watch::Receiver<Arc<InboundServer>>, tonic::Status> {
        let workload: Workload = spec
            .workload
            .parse()
            .map_err(|e| tonic::Status::invalid_argument(format!("{e}")))?;
        let port = u16::try_from(spec.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                tonic::Status::invalid_argument(format!(
                    "invalid port {}: expected 1-65535",
                    spec.port
                ))
            })?;
        tracing::debug!(%workload, port, "InboundServerPolicies");
        Ok(self
            .discover
            .inbound_server(&workload.namespace, &workload.pod, port))
    }
}

#[tonic::async_trait]
impl<D: DiscoverInboundServer> inbound_server_policies_server::InboundServerPolicies
    for InboundServerPolicyServer<D>
{
    async fn get_port(
        &self,
        request: tonic::Request<PortSpec>,
    ) -> Result<tonic::Response<Server>, tonic::Status> {
        let rx = self.subscribe(request.into_inner())?;
        let server = to_proto(&rx.borrow());
        Ok(tonic::Response::new(server))
    }

    type WatchPortStream = BoxStream<Server>;

    async fn watch_port(
        &self,
        request: tonic::Request<PortSpec>,
    ) -> Result<tonic::Response<Self::WatchPortStream>, tonic::Status> {
        let rx = self.subscribe(request.into_inner())?;
        // The current server at once, then each change; a slow client skips to the latest.
        let servers = stream::unfold((rx, true), |(mut rx, first)| async move {
            if !first {
                // A dropped sender ends the stream; the proxy reconnects.
                rx.changed().await.ok()?;
            }
            let server = to_proto(&rx.borrow_and_update());
            Some((Ok(server), (rx, false)))
        });
        Ok(tonic::Response::new(self.drain.wrap(servers)))
    }
}

// === conversion ===

/// The proto `Server`. A detected HTTP port gets one default route matching every path, with
/// the server's authorizations, since the proxy authorizes HTTP requests per route.
fn to_proto(server: &InboundServer) -> Server {
    let authorizations: Vec<Authz> = server.authorizations.iter().map(authz).collect();
    let kind = match server.protocol {
        InboundProtocol::Detect { timeout } => {
            proto::proxy_protocol::Kind::Detect(proto::proxy_protocol::Detect {
                timeout: duration(timeout),
                http_routes: vec![default_route(authorizations.clone())],
                http_local_rate_limit: None,
            })
        }
        InboundProtocol::Opaque => {
            proto::proxy_protocol::Kind::Opaque(proto::proxy_protocol::Opaque {})
        }
    };
    Server {
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
        server_ips: vec![],
        authorizations,
        labels: server.labels.iter().cloned().collect(),
    }
}

fn default_route(authorizations: Vec<Authz>) -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: Some(default_meta("default")),
        hosts: vec![],
        authorizations,
        rules: vec![proto::http_route::Rule {
            matches: vec![route::HttpRouteMatch {
                path: Some(route::PathMatch {
                    kind: Some(route::path_match::Kind::Prefix("/".to_string())),
                }),
                ..Default::default()
            }],
            filters: vec![],
        }],
    }
}

fn authz(a: &Authorization) -> Authz {
    let permit = match &a.authentication {
        Authentication::Unauthenticated => {
            authn::Permit::Unauthenticated(authn::PermitUnauthenticated {})
        }
        Authentication::MeshTls {
            identities,
            suffixes,
        } => authn::Permit::MeshTls(authn::PermitMeshTls {
            clients: Some(authn::permit_mesh_tls::Clients::Identities(
                authn::permit_mesh_tls::PermitClientIdentities {
                    identities: identities
                        .iter()
                        .map(|name| proto::Identity { name: name.clone() })
                        .collect(),
                    suffixes: suffixes
                        .iter()
                        .map(|parts| IdentitySuffix {
                            parts: parts.clone(),
                        })
                        .collect(),
                },
            )),
        }),
    };
    Authz {
        networks: a
            .networks
            .iter()
            .map(|net| proto::Network {
                net: Some((*net).into()),
                except: vec![],
            })
            .collect(),
        authentication: Some(Authn {
            permit: Some(permit),
        }),
        // Deprecated in favour of `metadata`, still read by older proxies.
        labels: [("name".to_string(), a.name.clone())].into_iter().collect(),
        metadata: Some(default_meta(&a.name)),
    }
}

fn default_meta(name: &str) -> meta::Metadata {
    meta::Metadata {
        kind: Some(meta::metadata::Kind::Default(name.to_string())),
    }
}
