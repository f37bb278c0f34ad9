//! Golden tests of the webhook on realistic pods: for each case in `tests/golden/<case>/`,
//! the pod (`pod.yaml`, as the API server sends it) in its namespace (`case.yaml`) goes
//! through the AdmissionReview handler; the patch must be `patch.json`, the patch applied with
//! json-patch must give `patched.json`, the warnings must be `warnings.json`, the patched pod
//! must be a valid k8s-openapi Pod, injecting it again must be a no-op, and uninjecting it
//! must give the pod back. `WEFT_BLESS=1` rewrites the expected files (review the diff).

#![allow(clippy::unwrap_used)]

#[path = "support/golden.rs"]
mod support;

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::Value;
use std::{collections::BTreeMap, path::Path};
use support::{answer, config, golden_dir, read_json, review_of};
use weft_injector::StaticNamespaces;
use weft_injector_patch::{Annotations, Injector, annotations::DEFAULT_CONTAINER};

/// `case.yaml`: what the case is about, its namespace, and how the injector is configured.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Case {
    #[allow(dead_code)]
    about: String,
    namespace: String,
    #[serde(default)]
    namespace_annotations: Annotations,
    #[serde(default = "yes")]
    native_sidecars: bool,
    #[serde(default)]
    cni: bool,
    #[serde(default = "yes")]
    identity: bool,
    /// The collector the injector points proxies at, if any.
    #[serde(default)]
    otlp: Option<String>,
    /// Whether the pod is meshed.
    injected: bool,
    /// The case whose pod uninjecting this one gives (a pod that came injected).
    #[serde(default)]
    uninjects_to: Option<String>,
}

fn yes() -> bool {
    true
}

const CASES: &[&str] = &[
    "deployment",
    "job",
    "statefulset",
    "already-injected",
    "host-network",
    "disabled-in-enabled-namespace",
    "not-enabled",
    "pod-enabled",
    "overrides",
    "namespace-overrides",
    "bad-overrides",
    "regular-container",
    "cni",
    "no-identity",
    "tracing",
];

#[tokio::test]
async fn golden_cases() {
    let mut dirs: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.to_string()).collect();
    listed.sort();
    assert_eq!(dirs, listed, "every golden directory is a listed case");
    for case in CASES {
        check_case(case).await;
    }
}

async fn check_case(name: &str) {
    let dir = golden_dir().join(name);
    let text = std::fs::read_to_string(dir.join("case.yaml")).unwrap();
    let case: Case =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}/case.yaml: {e}"));
    let pod = read_json(&dir.join("pod.yaml"));
    let mut config = config();
    config.native_sidecars = case.native_sidecars;
    config.cni = case.cni;
    if !case.identity {
        config.trust_anchors = None;
    }
    config.otlp_addr = case.otlp.clone();
    let injector = Injector::new(config);
    let namespaces = StaticNamespaces(BTreeMap::from([(
        case.namespace.clone(),
        case.namespace_annotations.clone(),
    )]));

    let body = serde_json::to_vec(&review_of(name, &case.namespace, &pod)).unwrap();
    let first = answer(&weft_injector::review::review(&body, &namespaces, &injector).await);
    assert_eq!(first.uid, name);
    assert!(first.allowed, "{name}: the pod is always allowed");
    assert_eq!(
        first.patch.is_some(),
        case.injected,
        "{name}: injected? warnings {:?}",
        first.warnings
    );
    let patch = first.patch.clone().unwrap_or(Value::Array(Vec::new()));
    let patch_ops: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch_ops)
        .unwrap_or_else(|e| panic!("{name}: the patch does not apply: {e}"));

    expect(&dir.join("patch.json"), &patch);
    expect(&dir.join("patched.json"), &patched);
    expect(
        &dir.join("warnings.json"),
        &serde_json::to_value(&first.warnings).unwrap(),
    );

    // What the kubelet gets is a pod k8s-openapi reads back field for field.
    let typed: Pod = serde_json::from_value(patched.clone())
        .unwrap_or_else(|e| panic!("{name}: not a Pod: {e}"));
    assert_eq!(
        strip_nulls(&serde_json::to_value(&typed).unwrap()),
        strip_nulls(&patched),
        "{name}: the patched pod has fields a Pod does not"
    );

    // Injecting the patched pod again changes nothing.
    let body = serde_json::to_vec(&review_of("again", &case.namespace, &patched)).unwrap();
    let again = answer(&weft_injector::review::review(&body, &namespaces, &injector).await);
    assert_eq!(
        again.patch, None,
        "{name}: a second injection patched again"
    );

    // Uninjecting gives the pod back (but for the default-container annotation a regular
    // proxy container brings, which still names the app).
    let undo = weft_injector_patch::uninject(&patched).unwrap();
    let mut restored = patched.clone();
    json_patch::patch(&mut restored, &undo).unwrap();
    if !case.native_sidecars && case.injected {
        let annotations = restored["metadata"]["annotations"].as_object_mut().unwrap();
        annotations.remove(DEFAULT_CONTAINER);
        if annotations.is_empty() {
            restored["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("annotations");
        }
    }
    let original = match &case.uninjects_to {
        Some(other) => read_json(&golden_dir().join(other).join("pod.yaml")),
        None => pod,
    };
    assert_eq!(
        restored, original,
        "{name}: uninject did not give the pod back"
    );
}

/// Compares `actual` with the file, or writes it with WEFT_BLESS=1.
fn expect(path: &Path, actual: &Value) {
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("WEFT_BLESS").is_some() {
        // Blessing cannot fail, so it is no test: CI compares.
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !in_ci,
            "WEFT_BLESS is set with CI=true: CI compares, it does not bless"
        );
        std::fs::write(path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (WEFT_BLESS=1 writes it)", path.display()));
    let expected: Value = serde_json::from_str(&expected).unwrap();
    assert!(
        &expected == actual,
        "{} differs (WEFT_BLESS=1 rewrites it):\nexpected {}\nactual   {}",
        path.display(),
        serde_json::to_string_pretty(&expected).unwrap(),
        text
    );
}

/// The JSON without null members (k8s-openapi writes absent fields as nothing).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}
