//! kubectl reading manifests offline (`kubectl label --local`), with no cluster, for the
//! manifest and install tests: what it reads a stream as must be what the test reads.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// kubectl on PATH. Missing: a failure in CI, a note and `None` elsewhere; `what` names what
/// goes unchecked.
pub fn find(what: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("kubectl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !in_ci,
            "kubectl is not on PATH: CI=true, so the kubectl check of {what} fails instead of \
             skipping"
        );
        eprintln!("note: kubectl is not on PATH; skipping the kubectl check of {what}");
    }
    found
}

/// `kubectl label --local -o name` of `file`, or of `stdin` without one: kubectl's own decoder
/// reads every document, with no cluster (dry-run=client create/apply still need API
/// discovery). KUBECONFIG points nowhere so no user's cluster can be reached by accident.
pub fn names(kubectl: &Path, file: Option<&Path>, stdin: &str) -> Result<Vec<String>, String> {
    let nowhere = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-kubeconfig");
    let mut command = Command::new(kubectl);
    command
        .args(["label", "--local", "-o", "name", "-f"])
        .arg(file.map_or_else(|| "-".into(), |f| f.as_os_str().to_owned()))
        .arg("weft.dev/manifest-check=ok")
        .env("KUBECONFIG", nowhere)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .map_err(|e| format!("cannot write to kubectl: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("kubectl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kubectl exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// What `kubectl -o name` prints for a document: `<kind>[.<group>]/<name>`.
pub fn name(doc: &Value) -> String {
    let str_at = |pointer: &str| doc.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    let (kind, name) = (str_at("/kind").to_lowercase(), str_at("/metadata/name"));
    match str_at("/apiVersion").split_once('/') {
        Some((group, _)) => format!("{kind}.{group}/{name}"),
        None => format!("{kind}/{name}"),
    }
}
