//! Inbound policy of a pod's port: protocol and who may connect.

use ipnet::IpNet;
use std::{fmt, str::FromStr, time::Duration};

/// The policy of one port of one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundServer {
    /// Detect the protocol, or treat the port as opaque.
    pub protocol: InboundProtocol,
    /// Who may connect; a connection matching none is denied.
    pub authorizations: Vec<Authorization>,
    /// Labels for metrics (`name`, `kind`).
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
    /// Forward bytes.
    Opaque,
}

/// One way to be allowed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// Name for metrics and logs (`all-unauthenticated`, ...).
    pub name: String,
    /// Client networks allowed.
    pub networks: Vec<IpNet>,
    /// What the client must prove.
    pub authentication: Authentication,
}

/// What a client must prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Nothing.
    Unauthenticated,
    /// A mesh TLS identity; `None` means any identity.
    MeshTls {
        /// Exact identities allowed.
        identities: Vec<String>,
        /// Identity suffixes allowed (`["cluster", "local"]` is any identity in the domain).
        suffixes: Vec<Vec<String>>,
    },
}

/// The default inbound policy (`weft.dev/default-inbound-policy`).
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

    /// The server this default gives a port. `cluster_networks` are used by
    /// `cluster-authenticated`; `trust_domain` scopes authenticated identities.
    pub fn server(
        self,
        opaque: bool,
        detect_timeout: Duration,
        cluster_networks: &[IpNet],
        trust_domain: &str,
    ) -> InboundServer {
        let all = || {
            vec![
                IpNet::from_str("0.0.0.0/0").unwrap_or_default(),
                IpNet::from_str("::/0").unwrap_or_default(),
            ]
        };
        let any_identity = || Authentication::MeshTls {
            identities: vec![],
            suffixes: vec![trust_domain.split('.').map(str::to_string).collect()],
        };
        let authorization = |networks, authentication| Authorization {
            name: self.as_str().to_string(),
            networks,
            authentication,
        };
        let authorizations = match self {
            Self::AllUnauthenticated => vec![authorization(all(), Authentication::Unauthenticated)],
            Self::AllAuthenticated => vec![authorization(all(), any_identity())],
            Self::ClusterAuthenticated => {
                vec![authorization(cluster_networks.to_vec(), any_identity())]
            }
            Self::Deny => vec![],
        };
        InboundServer {
            protocol: if opaque {
                InboundProtocol::Opaque
            } else {
                InboundProtocol::Detect {
                    timeout: detect_timeout,
                }
            },
            authorizations,
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
