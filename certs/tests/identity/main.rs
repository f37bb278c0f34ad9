//! weft-certs through its public edge: a root, an issuer and leaves made and read back the way
//! the CLI, the controller and the proxy use them, and every bad input refused with its own error.

#![allow(clippy::unwrap_used)]

mod chain;
mod errors;
mod inspect;
mod server;

use std::time::{Duration, SystemTime};
use weft_certs::{
    Ca, CaFiles, Issuer, LeafKey, ServiceAccountIdentity, TrustAnchors, generate_issuer,
    generate_root,
};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A root, an issuer signed by it, and both loaded.
struct Pki {
    root: CaFiles,
    issuer_files: CaFiles,
    anchors: TrustAnchors,
    issuer: Issuer,
}

fn pki() -> Pki {
    pki_with(10 * YEAR, YEAR)
}

fn pki_with(root_lifetime: Duration, issuer_lifetime: Duration) -> Pki {
    let root = generate_root("cluster.local", root_lifetime).unwrap();
    let root_ca = Ca::from_pem(&root.cert_pem, &root.key_pem).unwrap();
    let issuer_files = generate_issuer(&root_ca, "cluster.local", issuer_lifetime).unwrap();
    let anchors = TrustAnchors::from_pem(&root.cert_pem).unwrap();
    let issuer = Issuer::load(&issuer_files.cert_pem, &issuer_files.key_pem, &anchors).unwrap();
    Pki {
        root,
        issuer_files,
        anchors,
        issuer,
    }
}

fn web() -> ServiceAccountIdentity {
    ServiceAccountIdentity::new("web", "shop", "cluster.local").unwrap()
}

/// A fresh key and its CSR for `id`.
fn csr_for(id: &ServiceAccountIdentity) -> (LeafKey, Vec<u8>) {
    let key = LeafKey::generate().unwrap();
    let csr = key.csr_der(id).unwrap();
    (key, csr)
}

/// `d` in whole seconds since 1970, as certificates carry it.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// A PEM block with `label` around `der`.
fn pem_block(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}
