//! An [`InboundServer`] as the `inbound.Server` message.
//!
//! HTTP routes go where the protocol puts them: `Detect.http_routes`, `Http1.routes` or
//! `Http2.routes`; a gRPC server's routes become `Grpc.routes`, each matching every call (the
//! index gives gRPC servers only the route for every path). Opaque and TLS ports have none.
//! Authorizations carry `labels` (`kind`, `name`), which older proxies read, and `metadata`.

use crate::{
    duration,
    outbound::{
        matches::{any_path, host_match, http_match},
        routes::resource_meta,
    },
};
use weft_controller_core::{
    Authentication, Authorization, InboundProtocol, InboundRoute, InboundServer, Network,
    outbound::ResourceRef,
};
use weft_proto::{
    grpc_route,
    inbound::{
        self as proto, Authn, Authz, IdentitySuffix, authn,
        proxy_protocol::{Detect, Grpc, Http1, Http2, Kind, Opaque, Tls},
    },
};

/// The proto `Server`.
pub(super) fn server(server: &InboundServer) -> proto::Server {
    let http_routes = || server.http_routes.iter().map(http_route).collect();
    let kind = match server.protocol {
        InboundProtocol::Detect { timeout } => Kind::Detect(Detect {
            timeout: duration(timeout),
            http_routes: http_routes(),
            http_local_rate_limit: None,
        }),
        InboundProtocol::Http1 => Kind::Http1(Http1 {
            routes: http_routes(),
            local_rate_limit: None,
        }),
        InboundProtocol::Http2 => Kind::Http2(Http2 {
            routes: http_routes(),
            local_rate_limit: None,
        }),
        InboundProtocol::Grpc => Kind::Grpc(Grpc {
            routes: server.http_routes.iter().map(grpc_route).collect(),
        }),
        InboundProtocol::Opaque => Kind::Opaque(Opaque {}),
        InboundProtocol::Tls => Kind::Tls(Tls {}),
    };
    proto::Server {
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
        server_ips: vec![],
        authorizations: server.authorizations.iter().map(authz).collect(),
        labels: server.labels.iter().cloned().collect(),
    }
}

fn http_route(r: &InboundRoute) -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: Some(resource_meta(&r.resource)),
        hosts: r.hostnames.iter().map(host_match).collect(),
        authorizations: r.authorizations.iter().map(authz).collect(),
        rules: r
            .rules
            .iter()
            .map(|rule| proto::http_route::Rule {
                // Gateway API: a rule without matches matches every path.
                matches: match rule.matches.as_slice() {
                    [] => vec![any_path()],
                    matches => matches.iter().map(http_match).collect(),
                },
                filters: vec![],
            })
            .collect(),
    }
}

/// A route for every call: gRPC servers are authorized per server, not per method.
fn grpc_route(r: &InboundRoute) -> proto::GrpcRoute {
    proto::GrpcRoute {
        metadata: Some(resource_meta(&r.resource)),
        hosts: r.hostnames.iter().map(host_match).collect(),
        authorizations: r.authorizations.iter().map(authz).collect(),
        rules: vec![proto::grpc_route::Rule {
            matches: vec![grpc_route::GrpcRouteMatch::default()],
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
    let kind = match &a.resource {
        ResourceRef::Default(_) => "default".to_string(),
        ResourceRef::Resource { kind, .. } => kind.to_ascii_lowercase(),
    };
    Authz {
        networks: a.networks.iter().map(network).collect(),
        authentication: Some(Authn {
            permit: Some(permit),
        }),
        // Deprecated in favour of `metadata`, still read by older proxies.
        labels: [
            ("kind".to_string(), kind),
            ("name".to_string(), a.name().to_string()),
        ]
        .into_iter()
        .collect(),
        metadata: Some(resource_meta(&a.resource)),
    }
}

fn network(n: &Network) -> proto::Network {
    proto::Network {
        net: Some(n.net.into()),
        except: n.except.iter().map(|e| (*e).into()).collect(),
    }
}
