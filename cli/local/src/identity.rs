//! Mesh identity in local mode: a trust anchor and an issuer made with `weft-certs`, the
//! token registry the controller checks `Certify` calls against (the stand-in for TokenReview),
//! and one token file per pod, readable only by its proxy.

use crate::sidecar::PROXY_UID;
use std::{
    fmt::Write as _,
    io::{self, Read as _},
    os::unix::fs::{PermissionsExt, chown},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

/// The trust domain local mode uses.
pub const TRUST_DOMAIN: &str = weft_certs::DEFAULT_TRUST_DOMAIN;

/// How long the local trust anchor lives.
const ROOT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long each local issuer lives.
const ISSUER_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why local identity could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Making or loading a certificate failed.
    #[error("local CA: {0}")]
    Cert(#[from] weft_certs::CertError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A bad name.
    #[error(transparent)]
    Name(#[from] weft_certs::NameError),
}

/// The local CA and token registry, in one directory.
#[derive(Debug)]
pub struct LocalIdentity {
    dir: PathBuf,
    root: weft_certs::CaFiles,
    tokens: Mutex<Vec<(String, String, String)>>,
}

impl LocalIdentity {
    /// Makes a trust anchor and an issuer in `dir`, and an empty token registry.
    pub fn create(dir: &Path) -> Result<Self, IdentityError> {
        std::fs::create_dir_all(dir).map_err(|source| IdentityError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let root = weft_certs::generate_root(TRUST_DOMAIN, ROOT_LIFETIME)?;
        let this = Self {
            dir: dir.to_path_buf(),
            root,
            tokens: Mutex::new(Vec::new()),
        };
        write(&this.anchors_path(), &this.root.cert_pem, 0o644)?;
        this.rotate_issuer()?;
        this.write_registry()?;
        Ok(this)
    }

    /// Replaces the issuer with a new one under the same trust anchor, as an operator
    /// rotating the intermediate would. Each file is replaced atomically; the controller
    /// picks the pair up on its next reload.
    pub fn rotate_issuer(&self) -> Result<(), IdentityError> {
        let root = weft_certs::Ca::from_pem(&self.root.cert_pem, &self.root.key_pem)?;
        let issuer = weft_certs::generate_issuer(&root, TRUST_DOMAIN, ISSUER_LIFETIME)?;
        write(&self.issuer_key_path(), &issuer.key_pem, 0o600)?;
        write(&self.issuer_cert_path(), &issuer.cert_pem, 0o644)?;
        Ok(())
    }

    /// The trust anchors (PEM) every proxy verifies peers against.
    pub fn anchors_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The issuer certificate the controller signs with.
    pub fn issuer_cert_path(&self) -> PathBuf {
        self.dir.join("issuer.crt")
    }

    /// The issuer's private key (only the controller reads it).
    pub fn issuer_key_path(&self) -> PathBuf {
        self.dir.join("issuer.key")
    }

    /// The token registry the controller authenticates `Certify` calls with.
    pub fn registry_path(&self) -> PathBuf {
        self.dir.join("tokens.yaml")
    }

    /// Issues a token for ServiceAccount `sa` in `namespace` to `pod`: registers it and writes
    /// it to a file only the proxy's UID can read. Returns the file.
    pub fn token_for(
        &self,
        namespace: &str,
        sa: &str,
        pod: &str,
    ) -> Result<PathBuf, IdentityError> {
        let token = random_token().map_err(|source| IdentityError::Write {
            path: "/dev/urandom".into(),
            source,
        })?;
        let path = self.dir.join(format!("{pod}.token"));
        write(&path, &token, 0o400)?;
        chown(&path, Some(PROXY_UID), Some(PROXY_UID)).map_err(|source| IdentityError::Write {
            path: path.clone(),
            source,
        })?;
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).push((
            token,
            namespace.to_string(),
            sa.to_string(),
        ));
        self.write_registry()?;
        Ok(path)
    }

    /// The DNS identity of ServiceAccount `sa` in `namespace`.
    pub fn identity(namespace: &str, sa: &str) -> Result<String, IdentityError> {
        Ok(weft_certs::ServiceAccountIdentity::new(sa, namespace, TRUST_DOMAIN)?.dns_name())
    }

    fn write_registry(&self) -> Result<(), IdentityError> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let mut yaml = String::from("tokens:\n");
        for (token, ns, sa) in tokens.iter() {
            let _ = write!(
                yaml,
                "  - token: \"{token}\"\n    namespace: {ns}\n    serviceAccount: {sa}\n"
            );
        }
        write(&self.registry_path(), &yaml, 0o600)
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so readers never see half.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), IdentityError> {
    let err = |source| IdentityError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// 32 random bytes from the kernel, hex-encoded.
fn random_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}
