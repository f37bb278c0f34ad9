//! Shared by the injector's tests: the injection configuration the golden files were made
//! with, AdmissionReviews around pods, and reading the answers.

#![allow(dead_code, clippy::unwrap_used)]

use k8s_openapi::ByteString;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use weft_injector_patch::Config;

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The trust anchors every golden pod carries (a root made once; its key was thrown away).
pub fn anchors() -> String {
    std::fs::read_to_string(golden_dir().join("anchors.pem")).unwrap()
}

/// The configuration of the golden files: the defaults, with the test anchors.
pub fn config() -> Config {
    let mut config = Config::new("ghcr.io/weft-mesh", "0.1.0");
    config.trust_anchors = Some(anchors());
    config
}

/// An AdmissionReview creating `pod` in `namespace`, as the API server sends it.
pub fn review_of(uid: &str, namespace: &str, pod: &Value) -> Value {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "6f1f6b0e-2a4c-4f0a-9d55-1f0c2b9d7a10",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
            },
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

/// What an AdmissionReview response says.
#[derive(Debug)]
pub struct Answer {
    pub uid: String,
    pub allowed: bool,
    /// The decoded JSON patch, if any.
    pub patch: Option<Value>,
    pub warnings: Vec<String>,
}

/// Reads a response, checking it is a well-formed v1 AdmissionReview that allows the pod.
pub fn answer(body: &[u8]) -> Answer {
    let review: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1", "{review}");
    assert_eq!(review["kind"], "AdmissionReview", "{review}");
    let response = &review["response"];
    let patch = match (&response["patchType"], &response["patch"]) {
        (Value::Null, Value::Null) => None,
        (t, p) => {
            assert_eq!(t, "JSONPatch", "{review}");
            let bytes: ByteString = serde_json::from_value(p.clone()).unwrap();
            Some(serde_json::from_slice(&bytes.0).unwrap())
        }
    };
    Answer {
        uid: response["uid"].as_str().unwrap().to_string(),
        allowed: response["allowed"].as_bool().unwrap(),
        patch,
        warnings: serde_json::from_value(response["warnings"].clone()).unwrap_or_default(),
    }
}

/// A file's JSON, or YAML read as JSON.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    } else {
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}
