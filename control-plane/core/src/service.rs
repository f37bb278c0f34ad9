//! Names of services and service ports.

use std::{fmt, num::NonZeroU16};

/// A Service, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceRef {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
}

/// One port of a Service: the unit that destination and outbound policy lookups are about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePort {
    /// The Service.
    pub service: ServiceRef,
    /// The Service's port (not the target port).
    pub port: NonZeroU16,
}

/// Why a `Destination.Get` path or an authority is not a service name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAuthorityError {
    /// No `:port`, or a port that is not 1–65535.
    #[error(
        "{authority:?} has no valid port; expected <service>.<namespace>.svc.<cluster-domain>:<port>"
    )]
    Port {
        /// What was asked for.
        authority: String,
    },
    /// Not of the form `<service>.<namespace>.svc[.<cluster-domain>]`.
    #[error(
        "{authority:?} is not a service name; expected <service>.<namespace>.svc.{cluster_domain}:<port>"
    )]
    NotAService {
        /// What was asked for.
        authority: String,
        /// The cluster domain the controller serves.
        cluster_domain: String,
    },
}

impl ServiceRef {
    /// The service `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The fully qualified DNS name, `name.namespace.svc.<cluster_domain>`.
    pub fn fqdn(&self, cluster_domain: &str) -> String {
        format!("{}.{}.svc.{cluster_domain}", self.name, self.namespace)
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl ServicePort {
    /// Port `port` of `service`.
    pub fn new(service: ServiceRef, port: NonZeroU16) -> Self {
        Self { service, port }
    }

    /// `name.namespace.svc.<cluster_domain>:port`, the path proxies pass to `Destination.Get`.
    pub fn authority(&self, cluster_domain: &str) -> String {
        format!("{}:{}", self.service.fqdn(cluster_domain), self.port)
    }

    /// Parses `name.namespace.svc[.<cluster_domain>][.]:port`. Short forms that end at `svc`
    /// are accepted; any other domain is not a service of this cluster.
    pub fn parse_authority(
        authority: &str,
        cluster_domain: &str,
    ) -> Result<Self, ParseAuthorityError> {
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| ParseAuthorityError::Port {
                authority: authority.to_string(),
            })?;
        let port = port
            .parse::<NonZeroU16>()
            .map_err(|_| ParseAuthorityError::Port {
                authority: authority.to_string(),
            })?;
        let not_a_service = || ParseAuthorityError::NotAService {
            authority: authority.to_string(),
            cluster_domain: cluster_domain.to_string(),
        };
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let mut labels = host.splitn(3, '.');
        let (name, namespace, rest) = match (labels.next(), labels.next(), labels.next()) {
            (Some(n), Some(ns), Some(rest)) if !n.is_empty() && !ns.is_empty() => (n, ns, rest),
            _ => return Err(not_a_service()),
        };
        let domain_ok = rest == "svc"
            || rest
                .strip_prefix("svc.")
                .is_some_and(|d| d.eq_ignore_ascii_case(cluster_domain));
        if !domain_ok {
            return Err(not_a_service());
        }
        Ok(Self::new(ServiceRef::new(namespace, name), port))
    }
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_authorities() {
        let web = ServicePort::new(
            ServiceRef::new("shop", "web"),
            NonZeroU16::new(8080).unwrap(),
        );
        for ok in [
            "web.shop.svc.cluster.local:8080",
            "web.shop.svc.cluster.local.:8080",
            "WEB.shop.svc:8080",
        ] {
            assert_eq!(
                ServicePort::parse_authority(ok, "cluster.local"),
                Ok(web.clone()),
                "{ok}"
            );
        }
        assert_eq!(
            web.authority("cluster.local"),
            "web.shop.svc.cluster.local:8080"
        );
        for bad in [
            "web.shop.svc.cluster.local",
            "web.shop.svc.cluster.local:0",
            "web.shop.svc.example.org:80",
            "web.shop:80",
            "10.0.0.1:80",
            ".shop.svc:80",
        ] {
            assert!(
                ServicePort::parse_authority(bad, "cluster.local").is_err(),
                "{bad}"
            );
        }
    }
}
