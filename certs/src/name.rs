//! Mesh identity names: a ServiceAccount's DNS name (also the TLS server name) and its SPIFFE URI.

use std::fmt;

/// The default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// The identity of a ServiceAccount.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceAccountIdentity {
    /// The ServiceAccount's name.
    pub service_account: String,
    /// Its namespace.
    pub namespace: String,
    /// The mesh's trust domain.
    pub trust_domain: String,
}

/// A name that is not a valid identity, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// A part is not an RFC 1123 DNS label.
    #[error(
        "{part} {value:?} is not a DNS label (lowercase letters, digits and '-', 1-63 characters, starting and ending with a letter or digit)"
    )]
    Label {
        /// Which part.
        part: &'static str,
        /// The value.
        value: String,
    },
    /// The trust domain is not a DNS name.
    #[error("trust domain {0:?} is not a DNS name of labels separated by dots")]
    TrustDomain(String),
    /// The name does not have the identity's shape.
    #[error(
        "{0:?} is not a Weft identity; expected <sa>.<ns>.serviceaccount.identity.<trust-domain>"
    )]
    Shape(String),
}

impl ServiceAccountIdentity {
    /// Checks and builds an identity.
    pub fn new(
        service_account: &str,
        namespace: &str,
        trust_domain: &str,
    ) -> Result<Self, NameError> {
        label("service account", service_account)?;
        label("namespace", namespace)?;
        check_trust_domain(trust_domain)?;
        Ok(Self {
            service_account: service_account.to_string(),
            namespace: namespace.to_string(),
            trust_domain: trust_domain.to_string(),
        })
    }

    /// Parses the DNS form.
    pub fn parse_dns(name: &str) -> Result<Self, NameError> {
        let shape = || NameError::Shape(name.to_string());
        let mut parts = name.splitn(3, '.');
        let (sa, ns, rest) = (
            parts.next().ok_or_else(shape)?,
            parts.next().ok_or_else(shape)?,
            parts.next().ok_or_else(shape)?,
        );
        let td = rest
            .strip_prefix("serviceaccount.identity.")
            .ok_or_else(shape)?;
        Self::new(sa, ns, td)
    }

    /// The DNS SAN, also the TLS server name proxies connect with.
    pub fn dns_name(&self) -> String {
        format!(
            "{}.{}.serviceaccount.identity.{}",
            self.service_account, self.namespace, self.trust_domain
        )
    }

    /// The SPIFFE URI SAN.
    pub fn spiffe_uri(&self) -> String {
        format!(
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl fmt::Display for ServiceAccountIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dns_name())
    }
}

/// Checks that a trust domain is a DNS name: labels of lowercase letters, digits and '-',
/// separated by dots.
pub fn check_trust_domain(trust_domain: &str) -> Result<(), NameError> {
    if trust_domain.is_empty()
        || trust_domain
            .split('.')
            .any(|l| label("trust domain label", l).is_err())
    {
        return Err(NameError::TrustDomain(trust_domain.to_string()));
    }
    Ok(())
}

fn label(part: &'static str, value: &str) -> Result<(), NameError> {
    let ok = (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(NameError::Label {
            part,
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_design() {
        let id = ServiceAccountIdentity::new("web", "shop", DEFAULT_TRUST_DOMAIN).expect("valid");
        assert_eq!(
            id.dns_name(),
            "web.shop.serviceaccount.identity.cluster.local"
        );
        assert_eq!(id.spiffe_uri(), "spiffe://cluster.local/ns/shop/sa/web");
        assert_eq!(ServiceAccountIdentity::parse_dns(&id.dns_name()), Ok(id));
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        assert!(matches!(
            ServiceAccountIdentity::new("Web", "shop", "cluster.local"),
            Err(NameError::Label {
                part: "service account",
                ..
            })
        ));
        assert!(matches!(
            ServiceAccountIdentity::new("web", "-shop", "cluster.local"),
            Err(NameError::Label {
                part: "namespace",
                ..
            })
        ));
        assert!(matches!(
            ServiceAccountIdentity::new("web", "shop", "cluster..local"),
            Err(NameError::TrustDomain(_))
        ));
        assert!(matches!(
            ServiceAccountIdentity::parse_dns("web.shop.svc.cluster.local"),
            Err(NameError::Shape(_))
        ));
        assert!(matches!(
            ServiceAccountIdentity::parse_dns("web"),
            Err(NameError::Shape(_))
        ));
    }
}
