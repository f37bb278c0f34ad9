//! The identity settings: the controller's identity service, this proxy's name, its token and
//! the trust anchors. All of them or none: a partial set is a mistake worth stopping for, while
//! none at all is a plaintext mesh.

use super::{PREFIX, Reader};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::PathBuf;
use weft_certs::{ServiceAccountIdentity, TrustAnchors};

pub(super) const IDENTITY_ADDR: &str = "IDENTITY_ADDR";
pub(super) const IDENTITY_NAME: &str = "IDENTITY_NAME";
pub(super) const TOKEN_FILE: &str = "TOKEN_FILE";
pub(super) const TRUST_ANCHORS: &str = "TRUST_ANCHORS";
pub(super) const TRUST_ANCHORS_FILE: &str = "TRUST_ANCHORS_FILE";
pub(super) const CONTROLLER_NAME: &str = "CONTROLLER_NAME";

/// How the proxy gets and checks its mesh identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityConfig {
    /// The controller's identity service (`host:port`), where `Certify` is sent.
    pub addr: String,
    /// The identity this proxy asks for, and the only one it accepts in its certificate.
    pub name: ServiceAccountIdentity,
    /// The projected ServiceAccount token, read again on every attempt because it rotates.
    pub token_file: PathBuf,
    /// The trust anchors (DER), already checked to be usable as roots.
    pub trust_anchors: Vec<CertificateDer<'static>>,
    /// The name the controller's certificate must carry, on the identity and the discovery
    /// connections.
    pub controller_name: ServerName<'static>,
}

impl IdentityConfig {
    /// The default TLS name of the controller in `trust_domain`.
    pub fn default_controller_name(trust_domain: &str) -> String {
        format!("weft-controller.weft-system.serviceaccount.identity.{trust_domain}")
    }
}

impl Reader<'_> {
    /// An identity setting; blank counts as unset, as injectors write empty values.
    fn identity_raw(&self, name: &str) -> Option<String> {
        self.raw(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn error(&mut self, name: &str, value: &str, why: impl std::fmt::Display) {
        // A PEM value is long; its start is enough to recognise it.
        let value = if value.chars().count() > 80 {
            format!("{}...", value.chars().take(77).collect::<String>())
        } else {
            value.to_string()
        };
        self.errors.push(format!("{PREFIX}{name}={value:?}: {why}"));
    }

    /// Reads the identity settings: `None` when none is set, and an error listing what is
    /// missing when only some are.
    pub(super) fn identity(&mut self) -> Option<IdentityConfig> {
        let addr = self.identity_raw(IDENTITY_ADDR);
        let name = self.identity_raw(IDENTITY_NAME);
        let token = self.identity_raw(TOKEN_FILE);
        let pem = self.identity_raw(TRUST_ANCHORS);
        let pem_file = self.identity_raw(TRUST_ANCHORS_FILE);
        let controller = self.identity_raw(CONTROLLER_NAME);
        let set = [
            (IDENTITY_ADDR, addr.is_some()),
            (IDENTITY_NAME, name.is_some()),
            (TOKEN_FILE, token.is_some()),
            (TRUST_ANCHORS, pem.is_some()),
            (TRUST_ANCHORS_FILE, pem_file.is_some()),
            (CONTROLLER_NAME, controller.is_some()),
        ];
        if set.iter().all(|(_, is_set)| !is_set) {
            return None;
        }

        let addr = addr.filter(|a| self.host_port(IDENTITY_ADDR, a));
        let name = name.and_then(|n| match ServiceAccountIdentity::parse_dns(&n) {
            Ok(id) => Some(id),
            Err(e) => {
                self.error(IDENTITY_NAME, &n, e);
                None
            }
        });
        let anchors = self.anchors(pem, pem_file);
        let controller_name = self.controller_name(controller, name.as_ref());

        let missing: Vec<String> = [
            (IDENTITY_ADDR, set[0].1),
            (IDENTITY_NAME, set[1].1),
            (TOKEN_FILE, set[2].1),
            (
                "TRUST_ANCHORS (or TRUST_ANCHORS_FILE)",
                set[3].1 || set[4].1,
            ),
        ]
        .iter()
        .filter(|(_, is_set)| !is_set)
        .map(|(n, _)| format!("{PREFIX}{n}"))
        .collect();
        if !missing.is_empty() {
            let present: Vec<String> = set
                .iter()
                .filter(|(_, is_set)| *is_set)
                .map(|(n, _)| format!("{PREFIX}{n}"))
                .collect();
            self.errors.push(format!(
                "identity is partly configured: {} set but {} missing; set all of them for mTLS, or none for a plaintext mesh",
                present.join(", "),
                missing.join(", ")
            ));
            return None;
        }
        Some(IdentityConfig {
            addr: addr?,
            name: name?,
            token_file: PathBuf::from(token?),
            trust_anchors: anchors?,
            controller_name: controller_name?,
        })
    }

    fn host_port(&mut self, name: &str, value: &str) -> bool {
        let valid = value.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            self.error(
                name,
                value,
                "expected HOST:PORT, such as weft-controller.weft-system.svc.cluster.local:8080 or 10.42.0.2:8080",
            );
        }
        valid
    }

    /// The trust anchors from the PEM or the file (not both), parsed and checked to be roots.
    fn anchors(
        &mut self,
        pem: Option<String>,
        file: Option<String>,
    ) -> Option<Vec<CertificateDer<'static>>> {
        let (var, shown, text) = match (pem, file) {
            (Some(_), Some(file)) => {
                self.error(
                    TRUST_ANCHORS_FILE,
                    &file,
                    format!(
                        "{PREFIX}{TRUST_ANCHORS} is set too; set the PEM or the file, not both"
                    ),
                );
                return None;
            }
            (Some(pem), None) => (TRUST_ANCHORS, pem.clone(), pem),
            (None, Some(file)) => match std::fs::read_to_string(&file) {
                Ok(text) => (TRUST_ANCHORS_FILE, file, text),
                Err(e) => {
                    self.error(TRUST_ANCHORS_FILE, &file, format!("cannot read: {e}"));
                    return None;
                }
            },
            (None, None) => return None,
        };
        let anchors = match TrustAnchors::from_pem(&text) {
            Ok(a) => a,
            Err(e) => {
                self.error(var, &shown, format!("not usable trust anchors: {e}"));
                return None;
            }
        };
        let mut roots = RootCertStore::empty();
        for (i, cert) in anchors.certs().iter().enumerate() {
            if let Err(e) = roots.add(cert.clone()) {
                self.error(
                    var,
                    &shown,
                    format!("certificate {} cannot be a trust anchor: {e}", i + 1),
                );
                return None;
            }
        }
        Some(anchors.certs().to_vec())
    }

    /// The controller's TLS name: given, or the default in our trust domain.
    fn controller_name(
        &mut self,
        given: Option<String>,
        ours: Option<&ServiceAccountIdentity>,
    ) -> Option<ServerName<'static>> {
        let text = match given {
            Some(text) => text,
            None => IdentityConfig::default_controller_name(&ours?.trust_domain),
        };
        match ServerName::try_from(text.clone()) {
            Ok(name @ ServerName::DnsName(_)) => Some(name),
            _ => {
                self.error(
                    CONTROLLER_NAME,
                    &text,
                    "not a DNS name; expected the name in the controller's certificate, such as weft-controller.weft-system.serviceaccount.identity.cluster.local",
                );
                None
            }
        }
    }
}
