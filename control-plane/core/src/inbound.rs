//! Inbound policy of a pod's port: its protocol, who may connect, and which HTTP routes exist
//! with who may use each.

use crate::outbound::{HostMatch, HttpMatch, PathMatch, ResourceRef};
use ipnet::IpNet;
use std::{fmt, str::FromStr, time::Duration};

/// The policy of one port of one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundServer {
    /// How the port's traffic is read: detected, declared HTTP or gRPC, or opaque.
    pub protocol: InboundProtocol,
    /// Who may connect; a connection matching none is denied. For HTTP the routes'
    /// authorizations decide each request instead.
    pub authorizations: Vec<Authorization>,
    /// HTTP routes, in order of precedence. A request matching none is denied. Opaque and TLS
    /// ports have none; every other port has at least one (see [`InboundRoute::any_path`]).
    pub http_routes: Vec<InboundRoute>,
    /// Labels for metrics (`kind`, `name`): `server`/`<Server name>` or `default`/`<policy>`.
    pub labels: Vec<(String, String)>,
}

/// How the inbound proxy treats a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundProtocol {
    /// Detect HTTP, with a timeout.
    Detect {
        /// How long to wait for the first bytes.
        timeout: Duration,
    },
    /// HTTP/1, without detection.
    Http1,
    /// HTTP/2, without detection.
    Http2,
    /// gRPC (HTTP/2), without detection.
    Grpc,
    /// Forward bytes.
    Opaque,
    /// TLS meant for the application: forward bytes, never terminate.
    Tls,
}

impl InboundProtocol {
    /// Whether requests on the port are HTTP, so that routes apply.
    pub fn is_http(&self) -> bool {
        !matches!(self, Self::Opaque | Self::Tls)
    }
}

/// An HTTP route of a server, with who may use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundRoute {
    /// The HTTPRoute it came from, or `Default("default")` for the route that matches every path.
    pub resource: ResourceRef,
    /// Hostnames the route applies to; empty means any.
    pub hostnames: Vec<HostMatch>,
    /// Rules; a request matching any of them uses the route.
    pub rules: Vec<InboundRule>,
    /// Who may send requests that use this route; a request matching none is denied.
    pub authorizations: Vec<Authorization>,
}

/// One rule of an inbound route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundRule {
    /// Any of these matches selects the rule; empty matches everything.
    pub matches: Vec<HttpMatch>,
}

impl InboundRoute {
    /// The route of a server without HTTPRoutes: every path (prefix `/`), with `authorizations`.
    pub fn any_path(authorizations: Vec<Authorization>) -> Self {
        Self {
            resource: ResourceRef::Default("default".to_string()),
            hostnames: vec![],
            rules: vec![InboundRule {
                matches: vec![HttpMatch {
                    path: Some(PathMatch::Prefix("/".to_string())),
                    ..HttpMatch::default()
                }],
            }],
            authorizations,
        }
    }
}

/// One way to be allowed in: from one of `networks`, proving `authentication`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// Where it came from: `Default(<policy>)` (`all-unauthenticated`, ...) or an
    /// AuthorizationPolicy, for metrics and logs.
    pub resource: ResourceRef,
    /// Client networks allowed; a client must be in one of them.
    pub networks: Vec<Network>,
    /// What the client must prove.
    pub authentication: Authentication,
}

impl Authorization {
    /// The name for metrics: the policy's name or the default policy's.
    pub fn name(&self) -> &str {
        match &self.resource {
            ResourceRef::Default(name) => name,
            ResourceRef::Resource { name, .. } => name,
        }
    }
}

/// A client network: `net` except the addresses in `except`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The network.
    pub net: IpNet,
    /// Addresses of `net` that are not allowed.
    pub except: Vec<IpNet>,
}

impl From<IpNet> for Network {
    fn from(net: IpNet) -> Self {
        Self {
            net,
            except: vec![],
        }
    }
}

impl Network {
    /// `0.0.0.0/0` and `::/0`: every client.
    pub fn all() -> Vec<Network> {
        [
            IpNet::V4(ipnet::Ipv4Net::default()),
            IpNet::V6(ipnet::Ipv6Net::default()),
        ]
        .into_iter()
        .map(Network::from)
        .collect()
    }
}

/// What a client must prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Nothing.
    Unauthenticated,
    /// A mesh TLS identity that is one of `identities` or ends with one of `suffixes`.
    MeshTls {
        /// Exact identities allowed.
        identities: Vec<String>,
        /// Identity suffixes allowed, as DNS labels: `["cluster", "local"]` is any identity
        /// ending in `.cluster.local`; an empty suffix is any identity at all.
        suffixes: Vec<Vec<String>>,
    },
}

/// The default inbound policy (`weft.dev/default-inbound-policy`, a Server's `accessPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown default inbound policy {0:?}; expected all-unauthenticated, all-authenticated, cluster-authenticated or deny"
)]
pub struct UnknownDefaultPolicy(pub String);

impl DefaultPolicy {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllUnauthenticated => "all-unauthenticated",
            Self::AllAuthenticated => "all-authenticated",
            Self::ClusterAuthenticated => "cluster-authenticated",
            Self::Deny => "deny",
        }
    }

    /// Who this default lets in. `cluster_networks` are used by `cluster-authenticated`;
    /// `trust_domain` scopes authenticated identities.
    pub fn authorizations(
        self,
        cluster_networks: &[IpNet],
        trust_domain: &str,
    ) -> Vec<Authorization> {
        let any_identity = || Authentication::MeshTls {
            identities: vec![],
            suffixes: vec![trust_domain.split('.').map(str::to_string).collect()],
        };
        let authorization = |networks, authentication| Authorization {
            resource: ResourceRef::Default(self.as_str().to_string()),
            networks,
            authentication,
        };
        match self {
            Self::AllUnauthenticated => {
                vec![authorization(
                    Network::all(),
                    Authentication::Unauthenticated,
                )]
            }
            Self::AllAuthenticated => vec![authorization(Network::all(), any_identity())],
            Self::ClusterAuthenticated => {
                let networks = cluster_networks
                    .iter()
                    .copied()
                    .map(Network::from)
                    .collect();
                vec![authorization(networks, any_identity())]
            }
            Self::Deny => vec![],
        }
    }

    /// The server this default gives a port without a Server: detected (or opaque), one route
    /// for every path, and this default's authorizations on both.
    pub fn server(
        self,
        opaque: bool,
        detect_timeout: Duration,
        cluster_networks: &[IpNet],
        trust_domain: &str,
    ) -> InboundServer {
        let authorizations = self.authorizations(cluster_networks, trust_domain);
        let (protocol, http_routes) = if opaque {
            (InboundProtocol::Opaque, vec![])
        } else {
            let route = InboundRoute::any_path(authorizations.clone());
            let timeout = detect_timeout;
            (InboundProtocol::Detect { timeout }, vec![route])
        };
        InboundServer {
            protocol,
            authorizations,
            http_routes,
            labels: vec![
                ("kind".to_string(), "default".to_string()),
                ("name".to_string(), self.as_str().to_string()),
            ],
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
