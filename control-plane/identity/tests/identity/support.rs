//! Shared fixtures: a scratch directory, a root and issuer on disk, CSRs, and chain checks.

use rustls::{
    RootCertStore,
    client::{WebPkiServerVerifier, danger::ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};
use weft_certs::{
    Ca, CaFiles, LeafKey, ServiceAccountIdentity, TrustAnchors, generate_issuer, generate_root,
};
use weft_controller_identity::IssuerFiles;

pub const TD: &str = "cluster.local";
pub const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A directory removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weft-identity-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Replaces `name` the way a Secret update or `mv` does: a new file renamed over the old.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        let path = self.path(name);
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A root and an issuer it signed, written as the controller's three files.
pub struct Pki {
    pub dir: Scratch,
    pub root: CaFiles,
    pub issuer: CaFiles,
}

impl Pki {
    pub fn new() -> Self {
        let root = generate_root(TD, 10 * YEAR).unwrap();
        let issuer = new_issuer(&root);
        let dir = Scratch::new();
        dir.write("ca.crt", &root.cert_pem);
        dir.write("issuer.crt", &issuer.cert_pem);
        dir.write("issuer.key", &issuer.key_pem);
        Self { dir, root, issuer }
    }

    pub fn files(&self) -> IssuerFiles {
        IssuerFiles {
            trust_anchors: self.dir.path("ca.crt"),
            cert: self.dir.path("issuer.crt"),
            key: self.dir.path("issuer.key"),
        }
    }

    /// Writes a new issuer from the same root; returns its certificate.
    pub fn rotate_issuer(&mut self) -> CertificateDer<'static> {
        self.issuer = new_issuer(&self.root);
        self.dir.write("issuer.crt", &self.issuer.cert_pem);
        self.dir.write("issuer.key", &self.issuer.key_pem);
        self.issuer_der()
    }

    pub fn issuer_der(&self) -> CertificateDer<'static> {
        pem_der(&self.issuer.cert_pem)
    }

    pub fn anchors(&self) -> TrustAnchors {
        TrustAnchors::from_pem(&self.root.cert_pem).unwrap()
    }
}

pub fn new_issuer(root: &CaFiles) -> CaFiles {
    let root = Ca::from_pem(&root.cert_pem, &root.key_pem).unwrap();
    generate_issuer(&root, TD, YEAR).unwrap()
}

pub fn pem_der(pem: &str) -> CertificateDer<'static> {
    weft_certs::certs_from_pem("test", pem).unwrap().remove(0)
}

pub fn id(sa: &str, ns: &str) -> ServiceAccountIdentity {
    ServiceAccountIdentity::new(sa, ns, TD).unwrap()
}

/// A fresh key and its CSR for `identity`.
pub fn csr(identity: &ServiceAccountIdentity) -> (LeafKey, Vec<u8>) {
    let key = LeafKey::generate().unwrap();
    let csr = key.csr_der(identity).unwrap();
    (key, csr)
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn roots(anchors: &TrustAnchors) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in anchors.certs() {
        roots.add(cert.clone()).unwrap();
    }
    Arc::new(roots)
}

/// Verifies `leaf` + `intermediates` to `anchors` as a TLS peer named `name`, as a proxy does.
pub fn verify_chain(
    anchors: &TrustAnchors,
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    name: &str,
) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(anchors), provider())
        .build()
        .unwrap();
    let intermediates: Vec<_> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    verifier
        .verify_server_cert(
            &CertificateDer::from(leaf.to_vec()),
            &intermediates,
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::since_unix_epoch(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap(),
            ),
        )
        .map(|_| ())
}

/// Writes a token registry with `entries` (token, namespace, serviceAccount).
pub fn registry_yaml(entries: &[(&str, &str, &str)]) -> String {
    let mut yaml = String::from("tokens:\n");
    for (token, ns, sa) in entries {
        yaml.push_str(&format!(
            "  - token: {token:?}\n    namespace: {ns}\n    serviceAccount: {sa}\n"
        ));
    }
    yaml
}
