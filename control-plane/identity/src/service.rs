//! `identity.Identity/Certify`: authenticate the token, check it names the requested identity,
//! and sign the proxy's CSR with the current issuer.

use crate::{
    auth::{AuthError, Authenticator},
    issuer::Credentials,
};
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use weft_certs::{CertError, ServiceAccountIdentity};
use weft_proto::identity::{
    CertifyRequest, CertifyResponse,
    identity_server::{Identity, IdentityServer},
};

/// The default lifetime of a proxy's certificate.
pub const DEFAULT_LEAF_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The largest Certify request accepted. A request is an identity, a token (a projected
/// ServiceAccount token is ~1 KiB) and a CSR (~0.5 KiB); anything near this is not a proxy.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The Certify service over an [`Authenticator`] and the current issuer.
pub struct CertifyService<A> {
    auth: A,
    issuer: watch::Receiver<Arc<Credentials>>,
    trust_domain: String,
    lifetime: Duration,
}

impl<A: Authenticator> CertifyService<A> {
    /// Issues certificates in `trust_domain`, valid for `lifetime` (or until the issuer
    /// expires, if sooner), signed by whatever issuer `issuer` holds at each request.
    pub fn new(
        auth: A,
        issuer: watch::Receiver<Arc<Credentials>>,
        trust_domain: impl Into<String>,
        lifetime: Duration,
    ) -> Self {
        Self {
            auth,
            issuer,
            trust_domain: trust_domain.into(),
            lifetime,
        }
    }

    /// The tonic service, refusing requests over [`MAX_REQUEST_BYTES`] before decoding them.
    pub fn into_server(self) -> IdentityServer<Self> {
        IdentityServer::new(self).max_decoding_message_size(MAX_REQUEST_BYTES)
    }

    async fn certify(&self, req: CertifyRequest) -> Result<CertifyResponse, Refusal> {
        let identity = ServiceAccountIdentity::parse_dns(&req.identity)
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        if identity.trust_domain != self.trust_domain {
            return Err(Refusal::invalid(format!(
                "identity {} is not in trust domain {}",
                req.identity, self.trust_domain
            )));
        }
        let token = std::str::from_utf8(&req.token)
            .map_err(|_| Refusal::unauthenticated("the token is not UTF-8".into()))?;
        let sa = self.auth.authenticate(token).await.map_err(Refusal::auth)?;
        if sa.namespace != identity.namespace || sa.name != identity.service_account {
            return Err(Refusal(Status::permission_denied(format!(
                "the token is for ServiceAccount {sa}, which may not have identity {identity}"
            ))));
        }
        let issuer = self.issuer.borrow().clone();
        let leaf = issuer
            .issuer
            .certify(
                &req.certificate_signing_request,
                &identity,
                self.lifetime,
                SystemTime::now(),
            )
            .map_err(Refusal::cert)?;
        let mut chain = leaf.chain.into_iter();
        let leaf_certificate = chain
            .next()
            .ok_or_else(|| Refusal(Status::internal("the issuer returned an empty chain")))?;
        tracing::info!(
            %identity,
            not_after = %crate::rfc3339(leaf.not_after),
            issuer = %issuer.status.subject,
            "issued certificate"
        );
        Ok(CertifyResponse {
            leaf_certificate: leaf_certificate.to_vec(),
            intermediate_certificates: chain.map(|c| c.to_vec()).collect(),
            valid_until: Some(prost_types::Timestamp::from(leaf.not_after)),
        })
    }
}

#[tonic::async_trait]
impl<A: Authenticator> Identity for CertifyService<A> {
    async fn certify(
        &self,
        req: Request<CertifyRequest>,
    ) -> Result<Response<CertifyResponse>, Status> {
        let req = req.into_inner();
        let identity = req.identity.clone();
        match CertifyService::certify(self, req).await {
            Ok(rsp) => Ok(Response::new(rsp)),
            Err(Refusal(status)) => {
                tracing::warn!(
                    identity,
                    code = ?status.code(),
                    reason = status.message(),
                    "refused certificate"
                );
                Err(status)
            }
        }
    }
}

/// A refused request, as the status the proxy receives. Messages never include the token.
struct Refusal(Status);

impl Refusal {
    fn invalid(msg: String) -> Self {
        Self(Status::invalid_argument(msg))
    }

    fn unauthenticated(msg: String) -> Self {
        Self(Status::unauthenticated(msg))
    }

    fn auth(e: AuthError) -> Self {
        if e.is_unavailable() {
            Self(Status::unavailable(e.to_string()))
        } else {
            Self::unauthenticated(e.to_string())
        }
    }

    fn cert(e: CertError) -> Self {
        match e {
            // The issuer is outside its validity: not the request's fault, and a new issuer
            // (picked up without a restart) fixes it.
            CertError::Expired { .. } | CertError::NotYetValid { .. } => {
                Self(Status::unavailable(format!("the issuer cannot sign: {e}")))
            }
            // Signing itself failed: the controller's problem, not the request's.
            CertError::Generate(_) => Self(Status::internal(e.to_string())),
            e => Self::invalid(e.to_string()),
        }
    }
}
