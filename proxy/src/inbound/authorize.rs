//! Authorizations and deciding whether one admits a client.

use super::{ClientTls, ConnMeta, InboundPolicy};
use ipnet::IpNet;
use std::{fmt, net::IpAddr, sync::Arc};

/// One way to be let in: from one of these networks, with this authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authz {
    /// The name for metrics and logs (`all-unauthenticated`, an `AuthorizationPolicy`'s name).
    pub name: Arc<str>,
    /// The client must be in one of these; never empty (the controller's authorizations
    /// without networks are dropped when converting, as the API requires).
    pub networks: Vec<Network>,
    /// What the client must prove.
    pub authentication: Authentication,
}

/// A client network, with holes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The network.
    pub net: IpNet,
    /// Addresses within `net` that do not count.
    pub except: Vec<IpNet>,
}

/// What a client must prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Nothing: plaintext clients are fine.
    Unauthenticated,
    /// Mesh TLS terminated by this proxy, with an identity that is one of `identities` or ends
    /// with one of `suffixes`. The API's "mesh TLS, any client" is an [`Suffix::any`].
    TlsAuthenticated {
        /// Identities allowed as they are (compared case-insensitively).
        identities: Vec<String>,
        /// Identity suffixes allowed, on DNS label boundaries.
        suffixes: Vec<Suffix>,
    },
}

/// A DNS name suffix, matched on label boundaries: `cluster.local` matches `cluster.local` and
/// `web.shop.serviceaccount.identity.cluster.local`, not `evilcluster.local`. No labels at all
/// matches every name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suffix {
    /// The labels, lower-cased, without dots: `["cluster", "local"]`.
    labels: Vec<String>,
    /// The labels joined by dots, lower-cased; empty for [`Suffix::any`].
    joined: String,
}

/// A connection or request that may go on, and which authorization let it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    /// The server's name.
    pub server: Arc<str>,
    /// The authorization that matched.
    pub authz: Arc<str>,
}

/// Why a connection or request is refused: no authorization of the server (or route) admits
/// the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unauthorized: {} permits {} from {}", Scope(self), Client(&self.tls), self.peer)]
pub struct Denied {
    /// The server's name.
    pub server: Arc<str>,
    /// The route's name, when a request was denied by its route.
    pub route: Option<Arc<str>>,
    /// The client's TLS state and identity.
    pub tls: ClientTls,
    /// The client's address.
    pub peer: IpAddr,
}

/// Finds the first of `authzs` that admits the connection; none is [`Denied`], naming the
/// server of `policy`. `authzs` are the server's or a route's authorizations.
pub fn authorize<'a>(
    policy: &InboundPolicy,
    authzs: &'a [Authz],
    conn: &ConnMeta,
) -> Result<&'a Authz, Denied> {
    let peer = conn.peer.ip().to_canonical();
    authzs
        .iter()
        .find(|a| a.admits(peer, &conn.tls))
        .ok_or_else(|| Denied {
            server: policy.name.clone(),
            route: None,
            tls: conn.tls.clone(),
            peer,
        })
}

/// Authorizes a whole connection by the server's authorizations: for opaque and TLS servers,
/// and for connections to a detecting server that turn out not to be HTTP. HTTP requests are
/// authorized one by one instead ([`super::AuthorizeHttp`]).
pub fn check_tcp(policy: &InboundPolicy, conn: &ConnMeta) -> Result<Permit, Denied> {
    let authz = authorize(policy, &policy.authorizations, conn)?;
    Ok(Permit {
        server: policy.name.clone(),
        authz: authz.name.clone(),
    })
}

// === impl Authz ===

impl Authz {
    /// Whether a client at `peer` (canonical: IPv4-mapped addresses as IPv4) with `tls` is let
    /// in.
    pub fn admits(&self, peer: IpAddr, tls: &ClientTls) -> bool {
        self.networks.iter().any(|n| n.contains(peer)) && self.authentication.admits(tls)
    }
}

// === impl Network ===

impl Network {
    /// Whether `ip` is in the network and in none of its exceptions.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.contains(&ip) && !self.except.iter().any(|e| e.contains(&ip))
    }
}

impl From<IpNet> for Network {
    fn from(net: IpNet) -> Self {
        Self {
            net,
            except: Vec::new(),
        }
    }
}

// === impl Authentication ===

impl Authentication {
    /// Whether a client with `tls` has proven enough.
    pub fn admits(&self, tls: &ClientTls) -> bool {
        match self {
            Self::Unauthenticated => true,
            Self::TlsAuthenticated {
                identities,
                suffixes,
            } => tls.client_id().is_some_and(|id| {
                let id = id.strip_suffix('.').unwrap_or(id);
                identities.iter().any(|i| {
                    let i = i.strip_suffix('.').unwrap_or(i);
                    i.eq_ignore_ascii_case(id)
                }) || suffixes.iter().any(|s| s.contains(id))
            }),
        }
    }
}

// === impl Suffix ===

impl Suffix {
    /// The suffix that matches every name.
    pub fn any() -> Self {
        Self::default()
    }

    /// A suffix of these labels (`["cluster", "local"]`); none is [`Suffix::any`]. Labels must
    /// be non-empty and dot-free (checked when converting from the controller's messages).
    pub fn new(labels: Vec<String>) -> Self {
        let labels: Vec<String> = labels.into_iter().map(|l| l.to_ascii_lowercase()).collect();
        let joined = labels.join(".");
        Self { labels, joined }
    }

    /// The labels, lower-cased.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Whether `name` (without a trailing dot) is this suffix or ends with `.` and it.
    pub fn contains(&self, name: &str) -> bool {
        if self.joined.is_empty() {
            return true;
        }
        let (sfx, len) = (self.joined.as_bytes(), self.joined.len());
        let name = name.as_bytes();
        if name.len() < len || !name[name.len() - len..].eq_ignore_ascii_case(sfx) {
            return false;
        }
        name.len() == len || name[name.len() - len - 1] == b'.'
    }
}

// === impl Denied ===

impl Denied {
    /// The same denial, by the route `route`.
    pub fn on_route(mut self, route: Arc<str>) -> Self {
        self.route = Some(route);
        self
    }
}

/// `server web` or `server web route admin`, and what refused.
struct Scope<'a>(&'a Denied);

impl fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.route {
            Some(route) => write!(
                f,
                "no authorization of route {route} on server {}",
                self.0.server
            ),
            None => write!(f, "no authorization of server {}", self.0.server),
        }
    }
}

/// `client web.shop.serviceaccount.identity.cluster.local` or `an unauthenticated client`.
struct Client<'a>(&'a ClientTls);

impl fmt::Display for Client<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ClientTls::None => f.write_str("an unauthenticated client"),
            ClientTls::Mesh { client_id } => write!(f, "client {client_id}"),
        }
    }
}
