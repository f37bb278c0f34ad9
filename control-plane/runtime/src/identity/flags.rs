//! The identity flags as given on the command line, checked into an [`IdentityConfig`].

use crate::{IdentityConfig, Source};
use std::{net::SocketAddr, path::PathBuf, time::Duration};
use weft_controller_identity::{IssuerFiles, controller_identity};

/// The identity flags, each optional as the command line has them.
#[derive(Clone, Debug)]
pub struct IdentityFlags {
    /// `--trust-anchors`.
    pub trust_anchors: Option<PathBuf>,
    /// `--issuer-cert`.
    pub issuer_cert: Option<PathBuf>,
    /// `--issuer-key`.
    pub issuer_key: Option<PathBuf>,
    /// `--token-registry`.
    pub token_registry: Option<PathBuf>,
    /// `--identity-addr`.
    pub addr: SocketAddr,
    /// `--leaf-lifetime`.
    pub leaf_lifetime: Duration,
    /// `--controller-identity`; defaults to [`controller_identity`] of the trust domain.
    pub controller_identity: Option<String>,
}

/// Identity flags that do not fit together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityFlagsError {
    /// Some but not all of the three certificate flags.
    #[error(
        "identity needs all of --trust-anchors, --issuer-cert and --issuer-key (or none, to run without mTLS); missing {}",
        .0.join(", ")
    )]
    Partial(Vec<&'static str>),
    /// `--token-registry` without identity.
    #[error("--token-registry needs identity: --trust-anchors, --issuer-cert and --issuer-key")]
    RegistryWithoutIdentity,
    /// The files source has no TokenReview to fall back on.
    #[error("--source files with identity needs --token-registry FILE")]
    NoRegistry,
    /// The kube source checks tokens with TokenReview only.
    #[error(
        "--token-registry is for --source files; the kube source checks tokens with TokenReview"
    )]
    RegistryWithKube,
}

impl IdentityFlags {
    /// Identity is on with all three certificate flags and off with none; anything between,
    /// or a token registry that does not fit the source, is a mistake worth stopping for.
    pub fn resolve(
        self,
        source: &Source,
        trust_domain: &str,
    ) -> Result<Option<IdentityConfig>, IdentityFlagsError> {
        let issuer = match (self.trust_anchors, self.issuer_cert, self.issuer_key) {
            (Some(trust_anchors), Some(cert), Some(key)) => IssuerFiles {
                trust_anchors,
                cert,
                key,
            },
            (None, None, None) if self.token_registry.is_none() => return Ok(None),
            (None, None, None) => return Err(IdentityFlagsError::RegistryWithoutIdentity),
            (anchors, cert, key) => {
                let missing = [
                    ("--trust-anchors", anchors.is_none()),
                    ("--issuer-cert", cert.is_none()),
                    ("--issuer-key", key.is_none()),
                ];
                return Err(IdentityFlagsError::Partial(
                    missing
                        .into_iter()
                        .filter_map(|(flag, missing)| missing.then_some(flag))
                        .collect(),
                ));
            }
        };
        match (source, &self.token_registry) {
            (Source::Files(_), None) => return Err(IdentityFlagsError::NoRegistry),
            (Source::Kube, Some(_)) => return Err(IdentityFlagsError::RegistryWithKube),
            _ => {}
        }
        Ok(Some(IdentityConfig {
            addr: self.addr,
            issuer,
            token_registry: self.token_registry,
            leaf_lifetime: self.leaf_lifetime,
            controller_identity: self
                .controller_identity
                .unwrap_or_else(|| controller_identity(trust_domain)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(anchors: bool, cert: bool, key: bool, registry: bool) -> IdentityFlags {
        let path = |on: bool, name: &str| on.then(|| PathBuf::from(name));
        IdentityFlags {
            trust_anchors: path(anchors, "ca.crt"),
            issuer_cert: path(cert, "issuer.crt"),
            issuer_key: path(key, "issuer.key"),
            token_registry: path(registry, "tokens.yaml"),
            addr: ([0, 0, 0, 0], 8080).into(),
            leaf_lifetime: Duration::from_secs(3600),
            controller_identity: None,
        }
    }

    #[test]
    fn all_or_none() {
        let files = Source::Files("objects".into());
        assert!(matches!(
            flags(false, false, false, false).resolve(&Source::Kube, "cluster.local"),
            Ok(None)
        ));
        let on = flags(true, true, true, true)
            .resolve(&files, "example.org")
            .unwrap()
            .unwrap();
        assert_eq!(on.issuer.key, PathBuf::from("issuer.key"));
        assert_eq!(
            on.controller_identity,
            "weft-controller.weft-system.serviceaccount.identity.example.org"
        );
        let err = flags(true, false, true, true).resolve(&files, "cluster.local");
        assert_eq!(
            err.unwrap_err(),
            IdentityFlagsError::Partial(vec!["--issuer-cert"])
        );
        let err = flags(false, true, false, false).resolve(&Source::Kube, "cluster.local");
        assert_eq!(
            err.unwrap_err().to_string(),
            "identity needs all of --trust-anchors, --issuer-cert and --issuer-key (or none, to run without mTLS); missing --trust-anchors, --issuer-key"
        );
    }

    #[test]
    fn the_token_registry_fits_the_source() {
        let files = Source::Files("objects".into());
        assert_eq!(
            flags(true, true, true, false)
                .resolve(&files, "cluster.local")
                .unwrap_err(),
            IdentityFlagsError::NoRegistry
        );
        assert_eq!(
            flags(true, true, true, true)
                .resolve(&Source::Kube, "cluster.local")
                .unwrap_err(),
            IdentityFlagsError::RegistryWithKube
        );
        assert_eq!(
            flags(false, false, false, true)
                .resolve(&files, "cluster.local")
                .unwrap_err(),
            IdentityFlagsError::RegistryWithoutIdentity
        );
        let kube = flags(true, true, true, false).resolve(&Source::Kube, "cluster.local");
        assert!(kube.unwrap().unwrap().token_registry.is_none());
    }
}
