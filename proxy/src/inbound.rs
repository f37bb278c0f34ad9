//! Inbound authorization: what the controller's `InboundServerPolicies/WatchPort` says about a
//! port of this pod, and whether a connection or a request may reach the app.
//!
//! The policy of a port is converted once ([`InboundPolicy`]); connections read the latest one
//! from the port's watch ([`PortPolicy`]). Opaque connections are authorized once
//! ([`PortPolicy::check_tcp`]); HTTP requests one by one, against their route's authorizations
//! ([`AuthorizeHttp`]). Without an answer from the controller in time, or without a controller
//! at all, the configured default ([`DefaultPolicy`]) applies.

mod authorize;
mod convert;
mod http;
mod resolve;
mod route;

#[cfg(test)]
mod tests;

pub use self::{
    authorize::{Authentication, Authz, Denied, Network, Permit, Suffix, authorize, check_tcp},
    http::{AuthorizeHttp, CLIENT_ID},
    resolve::{InboundPolicies, PortPolicy},
    route::{InboundRoute, InboundRouteMatch, InboundRoutes},
};
use ipnet::IpNet;
use std::{collections::BTreeMap, fmt, net::SocketAddr, str::FromStr, sync::Arc, time::Duration};

/// How long detection may wait for a client's first bytes when the policy does not say.
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `route_name` metric label of requests on a server without routes (authorized by the
/// server's own authorizations).
pub const NO_ROUTE_NAME: &str = "default";

/// The controller's policy for one port of this pod.
#[derive(Clone, Debug)]
pub struct InboundPolicy {
    /// The server's name (its `name` label), for metrics and errors; `unknown` if unlabelled.
    pub name: Arc<str>,
    /// How connections to the port are handled.
    pub protocol: Protocol,
    /// Who may connect; HTTP requests use these only when the server has no routes.
    pub authorizations: Vec<Authz>,
    /// HTTP (and gRPC) routes, each with its own authorizations; empty when the server has
    /// none (every request is then authorized by the server's authorizations).
    pub http_routes: InboundRoutes,
    /// The server's labels, as sent.
    pub labels: BTreeMap<String, String>,
}

/// How the inbound proxy treats connections to a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Detect HTTP from the first bytes, waiting this long.
    Detect {
        /// How long to wait for the client's first bytes.
        timeout: Duration,
    },
    /// HTTP/1 without detection.
    Http1,
    /// HTTP/2 without detection.
    Http2,
    /// gRPC (HTTP/2) without detection.
    Grpc,
    /// Opaque TCP: forwarded without looking, authorized once per connection.
    Opaque,
    /// TLS meant for the app: forwarded as it is, authorized once per connection.
    Tls,
}

/// What the inbound proxy knows about who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTls {
    /// No TLS (or TLS meant for the app, passed through).
    None,
    /// Mesh mTLS terminated by this proxy; the client's DNS identity.
    Mesh {
        /// The client's identity, e.g. `web.shop.serviceaccount.identity.cluster.local`.
        client_id: String,
    },
}

/// One inbound connection, as authorization sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnMeta {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the proxy terminated mesh TLS, and for whom.
    pub tls: ClientTls,
    /// The port the client was connecting to (the original destination's).
    pub port: u16,
}

/// The policy a port gets when the controller has not answered in time, or when there is no
/// controller: the same choices as the controller's `weft.dev/default-inbound-policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DefaultPolicy {
    /// Anyone, from anywhere.
    #[default]
    AllUnauthenticated,
    /// Any meshed client, from anywhere.
    AllAuthenticated,
    /// Any meshed client from the cluster networks.
    ClusterAuthenticated,
    /// No one.
    Deny,
}

/// An unknown default policy name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown default inbound policy {0:?}; expected all-unauthenticated, all-authenticated, cluster-authenticated or deny"
)]
pub struct UnknownDefaultPolicy(pub String);

// === impl Protocol ===

impl Protocol {
    /// Whether connections are forwarded without detection or HTTP handling, and so are
    /// authorized once per connection.
    pub fn is_opaque(self) -> bool {
        matches!(self, Self::Opaque | Self::Tls)
    }

    /// Whether the server declares HTTP (HTTP/1, HTTP/2 or gRPC, without detection), so a
    /// connection that is not HTTP has no business there.
    pub fn is_http(self) -> bool {
        matches!(self, Self::Http1 | Self::Http2 | Self::Grpc)
    }
}

// === impl ClientTls ===

impl ClientTls {
    /// The client's mesh identity, if it has one.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::None => None,
            Self::Mesh { client_id } => Some(client_id),
        }
    }

    /// Whether the proxy terminated mesh TLS (the `tls` metric label).
    pub fn is_mesh(&self) -> bool {
        matches!(self, Self::Mesh { .. })
    }
}

// === impl DefaultPolicy ===

impl DefaultPolicy {
    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllUnauthenticated => "all-unauthenticated",
            Self::AllAuthenticated => "all-authenticated",
            Self::ClusterAuthenticated => "cluster-authenticated",
            Self::Deny => "deny",
        }
    }

    /// The policy this default gives a port: detect the protocol, no routes, and one
    /// authorization named after the default (none for `deny`). `cluster_networks` are the
    /// networks `cluster-authenticated` accepts clients from.
    pub fn policy(self, cluster_networks: &[IpNet]) -> InboundPolicy {
        let everywhere = || {
            [IpNet::V4(Default::default()), IpNet::V6(Default::default())]
                .into_iter()
                .map(Network::from)
                .collect()
        };
        let any_identity = || Authentication::TlsAuthenticated {
            identities: Vec::new(),
            suffixes: vec![Suffix::any()],
        };
        let name: Arc<str> = Arc::from(self.as_str());
        let authz = |networks, authentication| Authz {
            name: name.clone(),
            networks,
            authentication,
        };
        let authorizations = match self {
            Self::AllUnauthenticated => vec![authz(everywhere(), Authentication::Unauthenticated)],
            Self::AllAuthenticated => vec![authz(everywhere(), any_identity())],
            Self::ClusterAuthenticated => {
                let networks = cluster_networks
                    .iter()
                    .copied()
                    .map(Network::from)
                    .collect();
                vec![authz(networks, any_identity())]
            }
            Self::Deny => Vec::new(),
        };
        InboundPolicy {
            name: name.clone(),
            protocol: Protocol::Detect {
                timeout: DEFAULT_DETECT_TIMEOUT,
            },
            authorizations,
            http_routes: InboundRoutes::default(),
            labels: [
                ("kind".to_string(), "default".to_string()),
                ("name".to_string(), self.as_str().to_string()),
            ]
            .into(),
        }
    }
}

impl FromStr for DefaultPolicy {
    type Err = UnknownDefaultPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all-unauthenticated" => Ok(Self::AllUnauthenticated),
            "all-authenticated" => Ok(Self::AllAuthenticated),
            "cluster-authenticated" => Ok(Self::ClusterAuthenticated),
            "deny" => Ok(Self::Deny),
            other => Err(UnknownDefaultPolicy(other.to_string())),
        }
    }
}

impl fmt::Display for DefaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
