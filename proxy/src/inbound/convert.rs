//! `inbound.Server` from the controller, validated into an [`InboundPolicy`].
//!
//! Errors name the field path in proto names (`authorizations[1].authentication.meshTLS`), so
//! a bad message can be traced to the resource that produced it. Route matches and filters
//! are converted by the outbound policy's converters, so both directions accept the same.

use super::{
    Authentication, Authz, DEFAULT_DETECT_TIMEOUT, InboundPolicy, InboundRoute, InboundRoutes,
    Network, Protocol, Suffix,
};
use crate::policy::{
    At, HostMatch, HttpRoute, InvalidPolicy, RequestMatch, Rule, Timeouts, duration, grpc_filter,
    grpc_match, http_filter, indexed, required,
};
use ipnet::IpNet;
use std::{collections::HashMap, sync::Arc};
use weft_proto::{
    inbound::{self as proto, authn, proxy_protocol},
    meta, net, outbound,
};

impl TryFrom<proto::Server> for InboundPolicy {
    type Error = InvalidPolicy;

    fn try_from(server: proto::Server) -> Result<Self, Self::Error> {
        let kind = required(server.protocol, "protocol")?;
        let kind = required(kind.kind, "kind").at("protocol")?;
        let (protocol, http_routes) = protocol(kind).at("protocol")?;
        let authorizations = authorizations(server.authorizations, "authorizations")?;
        let name = server
            .labels
            .get("name")
            .map_or_else(|| Arc::from("unknown"), |n| Arc::from(n.as_str()));
        Ok(Self {
            name,
            protocol,
            authorizations,
            http_routes,
            labels: server.labels.into_iter().collect(),
        })
    }
}

fn protocol(kind: proxy_protocol::Kind) -> Result<(Protocol, InboundRoutes), InvalidPolicy> {
    use proxy_protocol::Kind;
    // Local rate limits are not enforced yet; the messages carrying them are accepted.
    Ok(match kind {
        Kind::Detect(d) => {
            let timeout = duration(d.timeout, "timeout")
                .at("detect")?
                .unwrap_or(DEFAULT_DETECT_TIMEOUT);
            let routes = indexed(d.http_routes, "http_routes", http_route).at("detect")?;
            (Protocol::Detect { timeout }, InboundRoutes::new(routes))
        }
        Kind::Http1(h) => (
            Protocol::Http1,
            InboundRoutes::new(indexed(h.routes, "routes", http_route).at("http1")?),
        ),
        Kind::Http2(h) => (
            Protocol::Http2,
            InboundRoutes::new(indexed(h.routes, "routes", http_route).at("http2")?),
        ),
        Kind::Grpc(g) => (
            Protocol::Grpc,
            InboundRoutes::new(indexed(g.routes, "routes", grpc_route).at("grpc")?),
        ),
        Kind::Opaque(_) => (Protocol::Opaque, InboundRoutes::default()),
        Kind::Tls(_) => (Protocol::Tls, InboundRoutes::default()),
    })
}

fn http_route(r: proto::HttpRoute) -> Result<InboundRoute, InvalidPolicy> {
    use outbound::http_route::filter::Kind as Out;
    use proto::http_route::filter::Kind as In;
    let rules = nonempty(r.rules, "rules")?;
    let route = HttpRoute {
        name: name(r.metadata.as_ref(), None),
        hosts: indexed(r.hosts, "hosts", HostMatch::try_from)?,
        rules: indexed(rules, "rules", |rule| {
            let filters = indexed(rule.filters, "filters", |f| {
                // The inbound filter kinds are a subset of the outbound ones, same messages.
                let kind = required(f.kind, "kind")?;
                http_filter(outbound::http_route::Filter {
                    kind: Some(match kind {
                        In::FailureInjector(x) => Out::FailureInjector(x),
                        In::RequestHeaderModifier(x) => Out::RequestHeaderModifier(x),
                        In::Redirect(x) => Out::Redirect(x),
                    }),
                })
            })?;
            Ok(rule_of(
                indexed(rule.matches, "matches", RequestMatch::try_from)?,
                filters,
            ))
        })?,
    };
    let authorizations = authorizations(r.authorizations, "authorizations")?;
    Ok(InboundRoute {
        route,
        authorizations,
    })
}

/// A gRPC route in the HTTP model, as outbound: RPC matches are POST path matches.
fn grpc_route(r: proto::GrpcRoute) -> Result<InboundRoute, InvalidPolicy> {
    use outbound::grpc_route::filter::Kind as Out;
    use proto::grpc_route::filter::Kind as In;
    let rules = nonempty(r.rules, "rules")?;
    let route = HttpRoute {
        name: name(r.metadata.as_ref(), None),
        hosts: indexed(r.hosts, "hosts", HostMatch::try_from)?,
        rules: indexed(rules, "rules", |rule| {
            let filters = indexed(rule.filters, "filters", |f| {
                let kind = required(f.kind, "kind")?;
                grpc_filter(outbound::grpc_route::Filter {
                    kind: Some(match kind {
                        In::FailureInjector(x) => Out::FailureInjector(x),
                        In::RequestHeaderModifier(x) => Out::RequestHeaderModifier(x),
                    }),
                })
            })?;
            Ok(rule_of(
                indexed(rule.matches, "matches", grpc_match)?,
                filters,
            ))
        })?,
    };
    let authorizations = authorizations(r.authorizations, "authorizations")?;
    Ok(InboundRoute {
        route,
        authorizations,
    })
}

/// An inbound rule: no backends, timeouts or retries (requests go to the local app).
fn rule_of(matches: Vec<RequestMatch>, filters: Vec<crate::policy::Filter>) -> Rule {
    Rule {
        matches,
        filters,
        backends: Default::default(),
        timeouts: Timeouts::default(),
        retry: None,
    }
}

fn nonempty<T>(items: Vec<T>, field: &'static str) -> Result<Vec<T>, InvalidPolicy> {
    if items.is_empty() {
        return Err(InvalidPolicy::value(field, "[]", "at least one")).at(field);
    }
    Ok(items)
}

/// Authorizations; those without networks are dropped, as the API says they must be ignored.
fn authorizations(authzs: Vec<proto::Authz>, field: &str) -> Result<Vec<Authz>, InvalidPolicy> {
    let converted = indexed(authzs, field, |a| {
        if a.networks.is_empty() {
            return Ok(None);
        }
        Ok(Some(Authz {
            name: name(a.metadata.as_ref(), Some(&a.labels)),
            networks: indexed(a.networks, "networks", network)?,
            authentication: authentication(required(a.authentication, "authentication")?)
                .at("authentication")?,
        }))
    })?;
    Ok(converted.into_iter().flatten().collect())
}

fn network(n: proto::Network) -> Result<Network, InvalidPolicy> {
    Ok(Network {
        net: ip_net(required(n.net, "net")?).at("net")?,
        except: indexed(n.except, "except", ip_net)?,
    })
}

fn ip_net(n: net::IpNetwork) -> Result<IpNet, InvalidPolicy> {
    let shown = format!("{n:?}");
    IpNet::try_from(n).map_err(|_| {
        InvalidPolicy::value(
            "network",
            shown,
            "an IPv4 or IPv6 address with a prefix length that fits it (0-32 or 0-128)",
        )
    })
}

fn authentication(a: proto::Authn) -> Result<Authentication, InvalidPolicy> {
    use authn::permit_mesh_tls::Clients;
    Ok(match required(a.permit, "permit")? {
        authn::Permit::Unauthenticated(_) => Authentication::Unauthenticated,
        authn::Permit::MeshTls(m) => match required(m.clients, "clients").at("meshTLS")? {
            // Mesh TLS from any client: every meshed client has an identity.
            Clients::Unauthenticated(_) => Authentication::TlsAuthenticated {
                identities: Vec::new(),
                suffixes: vec![Suffix::any()],
            },
            Clients::Identities(ids) => Authentication::TlsAuthenticated {
                identities: indexed(ids.identities, "identities", |i| {
                    identity(i.name).at("name")
                })
                .at("meshTLS.identities")?,
                suffixes: indexed(ids.suffixes, "suffixes", suffix).at("meshTLS.identities")?,
            },
        },
    })
}

fn identity(name: String) -> Result<String, InvalidPolicy> {
    let valid = !name.is_empty()
        && name.strip_suffix('.').unwrap_or(&name).split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(name)
    } else {
        Err(InvalidPolicy::value(
            "identity",
            name,
            "a DNS-like name such as web.shop.serviceaccount.identity.cluster.local",
        ))
    }
}

fn suffix(s: proto::IdentitySuffix) -> Result<Suffix, InvalidPolicy> {
    if let Some(bad) = s.parts.iter().find(|p| p.is_empty() || p.contains('.')) {
        return Err(InvalidPolicy::value(
            "suffix label",
            bad,
            "a non-empty DNS label without dots (parts [\"cluster\", \"local\"] mean *.cluster.local)",
        ))
        .at("parts");
    }
    Ok(Suffix::new(s.parts))
}

/// A resource's plain name (metric label values): the metadata's, else a `name` label, else
/// `unknown`.
fn name(meta: Option<&meta::Metadata>, labels: Option<&HashMap<String, String>>) -> Arc<str> {
    let from_meta = meta.and_then(|m| match m.kind.as_ref()? {
        meta::metadata::Kind::Resource(r) => Some(r.name.as_str()),
        meta::metadata::Kind::Default(name) => Some(name.as_str()),
    });
    from_meta
        .or_else(|| labels?.get("name").map(String::as_str))
        .filter(|n| !n.is_empty())
        .map_or_else(|| Arc::from("unknown"), Arc::from)
}
