//! Builders of the controller's messages, shared by the inbound tests.

mod authorize;
mod convert;
mod resolve;

use super::{ClientTls, ConnMeta, InboundPolicy};
use std::net::SocketAddr;
use weft_proto::{
    grpc_route as grpc, http_route as route,
    inbound::{self as proto, authn, proxy_protocol},
    meta,
};

pub(super) const WEB: &str = "web.shop.serviceaccount.identity.cluster.local";
pub(super) const ADMIN: &str = "admin.ops.serviceaccount.identity.cluster.local";

/// A server with these labels (`name` = `name`), protocol and authorizations.
pub(super) fn server(
    name: &str,
    kind: proxy_protocol::Kind,
    authorizations: Vec<proto::Authz>,
) -> proto::Server {
    proto::Server {
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
        server_ips: Vec::new(),
        authorizations,
        labels: [
            ("name".to_string(), name.to_string()),
            ("kind".to_string(), "server".to_string()),
        ]
        .into(),
    }
}

pub(super) fn detect(routes: Vec<proto::HttpRoute>) -> proxy_protocol::Kind {
    proxy_protocol::Kind::Detect(proxy_protocol::Detect {
        timeout: std::time::Duration::from_secs(5).try_into().ok(),
        http_routes: routes,
        http_local_rate_limit: None,
    })
}

pub(super) fn opaque() -> proxy_protocol::Kind {
    proxy_protocol::Kind::Opaque(proxy_protocol::Opaque {})
}

/// A converted policy; panics (the test fails) if the message is invalid.
pub(super) fn policy(server: proto::Server) -> InboundPolicy {
    InboundPolicy::try_from(server).expect("a valid server")
}

/// An authorization named `name` by its metadata.
pub(super) fn authz(
    name: &str,
    networks: Vec<proto::Network>,
    permit: authn::Permit,
) -> proto::Authz {
    proto::Authz {
        networks,
        authentication: Some(proto::Authn {
            permit: Some(permit),
        }),
        labels: Default::default(),
        metadata: Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Resource(meta::Resource {
                group: "policy.weft.dev".to_string(),
                kind: "AuthorizationPolicy".to_string(),
                name: name.to_string(),
                namespace: "shop".to_string(),
                section: String::new(),
                port: 0,
            })),
        }),
    }
}

/// A network from CIDRs: `net` minus `except`.
pub(super) fn network(net: &str, except: &[&str]) -> proto::Network {
    let cidr = |s: &str| ipnet_proto(s.parse().expect("a CIDR"));
    proto::Network {
        net: Some(cidr(net)),
        except: except.iter().map(|e| cidr(e)).collect(),
    }
}

pub(super) fn ipnet_proto(net: ipnet::IpNet) -> weft_proto::net::IpNetwork {
    net.into()
}

pub(super) fn everywhere() -> Vec<proto::Network> {
    vec![network("0.0.0.0/0", &[]), network("::/0", &[])]
}

pub(super) fn unauthenticated() -> authn::Permit {
    authn::Permit::Unauthenticated(authn::PermitUnauthenticated {})
}

/// Mesh TLS from these identities and suffixes (each suffix given as `a.b.c`, `""` = any).
pub(super) fn mesh(identities: &[&str], suffixes: &[&str]) -> authn::Permit {
    use authn::permit_mesh_tls::{Clients, PermitClientIdentities};
    authn::Permit::MeshTls(authn::PermitMeshTls {
        clients: Some(Clients::Identities(PermitClientIdentities {
            identities: identities
                .iter()
                .map(|i| proto::Identity {
                    name: i.to_string(),
                })
                .collect(),
            suffixes: suffixes
                .iter()
                .map(|s| proto::IdentitySuffix {
                    parts: s
                        .split('.')
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect(),
                })
                .collect(),
        })),
    })
}

/// An HTTP route named `name` with one rule of `matches` and `filters`.
pub(super) fn http_route(
    name: &str,
    matches: Vec<route::HttpRouteMatch>,
    filters: Vec<proto::http_route::Filter>,
    authorizations: Vec<proto::Authz>,
) -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Resource(meta::Resource {
                group: "gateway.networking.k8s.io".to_string(),
                kind: "HTTPRoute".to_string(),
                name: name.to_string(),
                namespace: "shop".to_string(),
                section: String::new(),
                port: 0,
            })),
        }),
        hosts: Vec::new(),
        authorizations,
        rules: vec![proto::http_route::Rule { matches, filters }],
    }
}

pub(super) fn prefix(path: &str) -> route::HttpRouteMatch {
    route::HttpRouteMatch {
        path: Some(route::PathMatch {
            kind: Some(route::path_match::Kind::Prefix(path.to_string())),
        }),
        ..Default::default()
    }
}

pub(super) fn rpc(service: &str, method: &str) -> grpc::GrpcRouteMatch {
    grpc::GrpcRouteMatch {
        rpc: Some(grpc::GrpcRpcMatch {
            service: service.to_string(),
            method: method.to_string(),
        }),
        headers: Vec::new(),
    }
}

pub(super) fn conn(peer: &str, tls: ClientTls) -> ConnMeta {
    let peer: SocketAddr = peer.parse().expect("a socket address");
    ConnMeta {
        peer,
        tls,
        port: 8080,
    }
}

pub(super) fn meshed(id: &str) -> ClientTls {
    ClientTls::Mesh {
        client_id: id.to_string(),
    }
}
