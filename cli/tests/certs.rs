//! `weft certs` as a user runs it: the real binary making a root and an issuer, inspecting
//! them, and refusing bad input with a clear message and a failing exit code.

#![allow(clippy::unwrap_used)]

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A scratch directory, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("weft-certs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env_remove("WEFT_TRUST_DOMAIN")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the command failed and its error mentions each of `words`.
fn assert_fails(out: &Output, words: &[&str]) {
    assert!(!out.status.success(), "unexpected success: {}", stdout(out));
    let err = stderr(out);
    for word in words {
        assert!(err.contains(word), "{err:?} does not mention {word:?}");
    }
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(Path::new(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn root_issuer_and_inspect() {
    let dir = Scratch::new("ok");
    let (ca_crt, ca_key) = (dir.path("ca.crt"), dir.path("ca.key"));
    let (iss_crt, iss_key) = (dir.path("issuer.crt"), dir.path("issuer.key"));

    let root = [
        "certs",
        "root",
        "--trust-domain",
        "mesh.test",
        "--lifetime",
        "3650d",
    ];
    let out = weft(&[&root[..], &["--cert-out", &ca_crt, "--key-out", &ca_key]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("CN=root.mesh.test"),
        "{}",
        stdout(&out)
    );
    assert_eq!(mode(&ca_key), 0o600);

    let out = weft(&[
        "certs",
        "issuer",
        "--ca-cert",
        &ca_crt,
        "--ca-key",
        &ca_key,
        "--trust-domain",
        "mesh.test",
        "--lifetime",
        "24h",
        "--cert-out",
        &iss_crt,
        "--key-out",
        &iss_key,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&iss_key), 0o600);

    let out = weft(&["certs", "inspect", &iss_crt]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    for want in [
        "Subject:      CN=issuer.mesh.test",
        "Issuer:       CN=root.mesh.test",
        "CA (pathlen 0)",
    ] {
        assert!(report.contains(want), "{want:?} missing from:\n{report}");
    }

    // What the CLI wrote is what the controller loads.
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let anchors = weft_certs::TrustAnchors::from_pem(&read(&ca_crt)).unwrap();
    let issuer = weft_certs::Issuer::load(&read(&iss_crt), &read(&iss_key), &anchors).unwrap();
    let id = weft_certs::ServiceAccountIdentity::new("web", "shop", "mesh.test").unwrap();
    let key = weft_certs::LeafKey::generate().unwrap();
    let leaf = issuer
        .certify(
            &key.csr_der(&id).unwrap(),
            &id,
            std::time::Duration::from_secs(3600),
            std::time::SystemTime::now(),
        )
        .unwrap();
    assert_eq!(weft_certs::identity_of(&leaf.chain[0]).unwrap(), id);

    // Existing files are kept unless --force.
    let before = read(&ca_key);
    let again = [&root[..], &["--cert-out", &ca_crt, "--key-out", &ca_key]].concat();
    assert_fails(&weft(&again), &[&ca_crt, "--force"]);
    assert_eq!(read(&ca_key), before);
    std::fs::set_permissions(&ca_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = weft(&[&again[..], &["--force"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(read(&ca_key), before);
    assert_eq!(mode(&ca_key), 0o600);
}

#[test]
fn bad_input_fails_clearly() {
    let dir = Scratch::new("bad");
    let garbage = dir.path("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    assert_fails(
        &weft(&["certs", "inspect", &garbage]),
        &[&garbage, "no PEM block"],
    );
    assert_fails(
        &weft(&["certs", "inspect", &dir.path("missing.pem")]),
        &["missing.pem"],
    );

    let (ca_crt, ca_key) = (dir.path("ca.crt"), dir.path("ca.key"));
    let out = weft(&[
        "certs",
        "root",
        "--lifetime",
        "24h",
        "--cert-out",
        &ca_crt,
        "--key-out",
        &ca_key,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The certificate where the key belongs.
    let out = weft(&[
        "certs",
        "issuer",
        "--ca-cert",
        &ca_crt,
        "--ca-key",
        &ca_crt,
        "--cert-out",
        &dir.path("i.crt"),
        "--key-out",
        &dir.path("i.key"),
    ]);
    assert_fails(&out, &[&ca_crt, "found CERTIFICATE instead"]);
    assert!(!Path::new(&dir.path("i.key")).exists());

    let out = weft(&[
        "certs",
        "root",
        "--lifetime",
        "10x",
        "--cert-out",
        "a",
        "--key-out",
        "b",
    ]);
    assert_fails(&out, &["24h, 90m, 3600s or 365d"]);
    let out = weft(&[
        "certs",
        "root",
        "--trust-domain",
        "Bad_Domain",
        "--cert-out",
        &dir.path("r.crt"),
        "--key-out",
        &dir.path("r.key"),
    ]);
    assert_fails(&out, &["Bad_Domain"]);
}
