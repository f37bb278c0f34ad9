//! Kubernetes mode: a TokenReview per token.

use super::{AuthError, Authenticator, ServiceAccount, TOKEN_AUDIENCE, service_account_of};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use kube::api::{Api, PostParams};

/// Checks tokens by creating `authentication.k8s.io/v1` TokenReviews with the audience
/// [`TOKEN_AUDIENCE`]. Needs RBAC `create` on `tokenreviews`.
#[derive(Clone)]
pub struct TokenReviewer {
    api: Api<TokenReview>,
    audience: String,
}

impl TokenReviewer {
    /// A reviewer that talks to the API server behind `client`.
    pub fn new(client: kube::Client) -> Self {
        Self {
            api: Api::all(client),
            audience: TOKEN_AUDIENCE.to_string(),
        }
    }
}

impl std::fmt::Debug for TokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewer")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Authenticator for TokenReviewer {
    async fn authenticate(&self, token: &str) -> Result<ServiceAccount, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Empty);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..TokenReview::default()
        };
        let reviewed = self
            .api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Api(Box::new(e)))?;
        verdict(&self.audience, reviewed.status.unwrap_or_default())
    }
}

/// What a TokenReview status means. An API server that ignores `spec.audiences` returns no
/// `status.audiences`; such a review says nothing about the audience, so it is refused.
fn verdict(audience: &str, status: TokenReviewStatus) -> Result<ServiceAccount, AuthError> {
    if status.authenticated != Some(true) {
        return Err(AuthError::NotAuthenticated {
            reason: status
                .error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "no reason given".to_string()),
        });
    }
    let audiences = status.audiences.unwrap_or_default();
    if !audiences.iter().any(|a| a == audience) {
        return Err(AuthError::WrongAudience {
            expected: audience.to_string(),
            got: audiences,
        });
    }
    let username = status.user.and_then(|u| u.username).unwrap_or_default();
    service_account_of(&username).ok_or(AuthError::NotServiceAccount { username })
}
