//! Who a proxy's token says it is: the [`Authenticator`] trait, with a Kubernetes TokenReview
//! implementation ([`TokenReviewer`]) and a local file of tokens ([`TokenRegistry`]).

mod registry;
mod review;

pub use registry::{RegistryError, TokenRegistry};
pub use review::TokenReviewer;

use std::{fmt, future::Future, path::PathBuf};

/// The audience proxies' projected ServiceAccount tokens are minted for, and the only one the
/// identity service accepts.
pub const TOKEN_AUDIENCE: &str = "identity.weft.dev";

/// A Kubernetes ServiceAccount, the subject of a token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceAccount {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount's name.
    pub name: String,
}

impl fmt::Display for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Turns a bearer token into the ServiceAccount it was issued to.
pub trait Authenticator: Send + Sync + 'static {
    /// The ServiceAccount `token` belongs to, or why it is refused.
    fn authenticate(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<ServiceAccount, AuthError>> + Send;
}

/// Why a token was refused. None of the variants carries the token itself.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request carried no token.
    #[error("the request carries no token")]
    Empty,
    /// The TokenReview could not be made (API server down, RBAC, a 5xx): the token may be fine.
    #[error("cannot review the token with the Kubernetes API: {0}")]
    Api(#[source] Box<kube::Error>),
    /// The API server reviewed the token and did not authenticate it.
    #[error("the Kubernetes API did not authenticate the token: {reason}")]
    NotAuthenticated {
        /// `status.error` from the TokenReview, or a note that it gave none.
        reason: String,
    },
    /// The token is valid but not minted for the identity service.
    #[error(
        "the token is not for audience {expected:?} (the TokenReview returned audiences {got:?}); mount a projected token with that audience"
    )]
    WrongAudience {
        /// The audience required.
        expected: String,
        /// The audiences the API server reported.
        got: Vec<String>,
    },
    /// The token belongs to a user that is not a ServiceAccount.
    #[error(
        "the token belongs to {username:?}, which is not a ServiceAccount (system:serviceaccount:<namespace>:<name>)"
    )]
    NotServiceAccount {
        /// The user name the API server reported.
        username: String,
    },
    /// The token is not in the local token registry.
    #[error("the token is not in the token registry {}", path.display())]
    Unknown {
        /// The registry file.
        path: PathBuf,
    },
}

impl AuthError {
    /// True when the token could not be checked at all, so the caller should retry later
    /// rather than treat the token as bad.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Api(_))
    }
}

/// Parses a Kubernetes ServiceAccount user name, `system:serviceaccount:<namespace>:<name>`.
pub(crate) fn service_account_of(username: &str) -> Option<ServiceAccount> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some(ServiceAccount {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}
