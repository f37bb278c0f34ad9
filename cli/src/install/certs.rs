//! The certificates an installation needs: the mesh's trust anchor and the controller's
//! issuer, and the injector's serving certificate with the CA the API server trusts it by.
//! Made fresh, or read from the user's files and checked before anything is rendered.

use super::{InstallError, Options};
use std::path::Path;
use weft_certs::{Ca, CaFiles, Issuer, TrustAnchors};

/// The DNS names the webhook is called by (the API server uses the first).
pub const WEBHOOK_NAMES: [&str; 2] = [
    "weft-injector.weft-system.svc",
    "weft-injector.weft-system.svc.cluster.local",
];

/// PEM material for the Secrets and ConfigMap.
pub struct Certs {
    /// The trust anchors (PEM).
    pub anchors: String,
    /// The issuer's certificate (PEM, then any further intermediates) and key.
    pub issuer: CaFiles,
    /// The injector's serving certificate and key.
    pub webhook: CaFiles,
    /// The CA the API server verifies the injector with (`caBundle`).
    pub webhook_ca: String,
}

impl Certs {
    /// Reads the user's files or makes what was not given.
    pub fn get(options: &Options) -> Result<Self, InstallError> {
        let (anchors, issuer) = identity(options)?;
        let (webhook, webhook_ca) = webhook(options)?;
        Ok(Self {
            anchors,
            issuer,
            webhook,
            webhook_ca,
        })
    }
}

fn read(flag: &str, path: &Path) -> Result<String, InstallError> {
    std::fs::read_to_string(path)
        .map_err(|e| InstallError::Input(format!("{flag} {}: cannot read: {e}", path.display())))
}

/// All three of a group of file flags, or none.
fn all_or_none<'a>(
    group: &str,
    flags: [(&str, &'a Option<std::path::PathBuf>); 3],
) -> Result<Option<[&'a Path; 3]>, InstallError> {
    let given: Vec<&str> = flags
        .iter()
        .filter(|(_, p)| p.is_some())
        .map(|(f, _)| *f)
        .collect();
    match flags {
        [(_, Some(a)), (_, Some(b)), (_, Some(c))] => Ok(Some([a, b, c])),
        _ if given.is_empty() => Ok(None),
        _ => {
            let missing: Vec<&str> = flags
                .iter()
                .filter(|(_, p)| p.is_none())
                .map(|(f, _)| *f)
                .collect();
            Err(InstallError::Input(format!(
                "{group}: {} given without {}; give all three, or none to have them made",
                given.join(", "),
                missing.join(", ")
            )))
        }
    }
}

fn identity(options: &Options) -> Result<(String, CaFiles), InstallError> {
    let given = all_or_none(
        "the mesh identity",
        [
            ("--identity-trust-anchors", &options.identity_trust_anchors),
            ("--identity-issuer-cert", &options.identity_issuer_cert),
            ("--identity-issuer-key", &options.identity_issuer_key),
        ],
    )?;
    if let Some([anchors_path, cert_path, key_path]) = given {
        let anchors = read("--identity-trust-anchors", anchors_path)?;
        let issuer = CaFiles {
            cert_pem: read("--identity-issuer-cert", cert_path)?,
            key_pem: read("--identity-issuer-key", key_path)?,
        };
        let checked = TrustAnchors::from_pem(&anchors).map_err(|e| {
            InstallError::Input(format!(
                "--identity-trust-anchors {}: {e}",
                anchors_path.display()
            ))
        })?;
        Issuer::load(&issuer.cert_pem, &issuer.key_pem, &checked).map_err(|e| {
            InstallError::Input(format!(
                "--identity-issuer-cert {} and --identity-issuer-key {}: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
        return Ok((anchors, issuer));
    }
    let root = weft_certs::generate_root(&options.trust_domain, options.root_lifetime)?;
    let signer = Ca::from_pem(&root.cert_pem, &root.key_pem)?;
    let issuer =
        weft_certs::generate_issuer(&signer, &options.trust_domain, options.issuer_lifetime)?;
    // The root's key is dropped here: nothing in the cluster needs it. Make your own root
    // (`weft certs root`) to keep the power to sign new issuers.
    Ok((root.cert_pem, issuer))
}

fn webhook(options: &Options) -> Result<(CaFiles, String), InstallError> {
    let given = all_or_none(
        "the webhook certificate",
        [
            ("--webhook-cert", &options.webhook_cert),
            ("--webhook-key", &options.webhook_key),
            ("--webhook-ca", &options.webhook_ca),
        ],
    )?;
    if let Some([cert_path, key_path, ca_path]) = given {
        let files = CaFiles {
            cert_pem: read("--webhook-cert", cert_path)?,
            key_pem: read("--webhook-key", key_path)?,
        };
        let ca = read("--webhook-ca", ca_path)?;
        weft_certs::ServerCredentials::from_pem(&files.cert_pem, &files.key_pem).map_err(|e| {
            InstallError::Input(format!(
                "--webhook-cert {} and --webhook-key {}: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
        weft_certs::check_server_cert(
            &files.cert_pem,
            &ca,
            WEBHOOK_NAMES[0],
            std::time::SystemTime::now(),
        )
        .map_err(|e| {
            InstallError::Input(format!(
                "--webhook-cert {} against --webhook-ca {}: {e}",
                cert_path.display(),
                ca_path.display()
            ))
        })?;
        return Ok((files, ca));
    }
    let ca = weft_certs::generate_ca("weft-injector-ca", options.webhook_lifetime)?;
    let signer = Ca::from_pem(&ca.cert_pem, &ca.key_pem)?;
    let server =
        weft_certs::generate_server_cert(&signer, &WEBHOOK_NAMES, options.webhook_lifetime)?;
    // The CA's key is dropped: `weft install` makes a new pair when run again.
    Ok((server, ca.cert_pem))
}
