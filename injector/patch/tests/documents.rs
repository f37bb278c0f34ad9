//! `weft inject` and `weft uninject` on YAML streams: every workload kind's pod template is
//! found and meshed, Lists and multi-document streams are walked, other kinds pass through,
//! key order is kept, bad input is reported with its document and place, and uninjecting
//! gives the input back.

#![allow(clippy::unwrap_used)]

use serde::Deserialize;
use serde_json::Value;
use weft_injector_patch::{Config, Injector, PodError, inject_documents, uninject_documents};

fn injector() -> Injector {
    let mut config = Config::new("ghcr.io/weft-mesh", "0.1.0");
    config.trust_anchors = Some("-----BEGIN CERTIFICATE-----\n...\n".to_string());
    Injector::new(config)
}

fn values(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn template(kind: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: {kind}
metadata:
  name: {name}
  namespace: shop
spec:
{extra_spec}  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: web:1
",
        name = kind.to_lowercase()
    )
}

const STREAM_TAIL: &str = "---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: batch}
spec:
  schedule: '0 3 * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: job, image: job:1}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{port: 8080}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: one, namespace: shop}
    spec: {containers: [{name: a, image: a}]}
  - apiVersion: v1
    kind: Pod
    metadata: {name: two, namespace: shop, annotations: {weft.dev/inject: disabled}}
    spec: {containers: [{name: b, image: b}]}
";

fn stream() -> String {
    let mut docs: Vec<String> = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]
        .iter()
        .map(|k| template(k, ""))
        .collect();
    docs.push(template("Job", "  backoffLimit: 2\n").replace("apps/v1", "batch/v1"));
    docs.join("---\n") + STREAM_TAIL
}

fn has_proxy(pod_spec: &Value) -> bool {
    pod_spec["initContainers"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["name"] == "weft-proxy"))
}

#[test]
fn every_workload_kind_is_meshed_and_the_rest_passes_through() {
    let input = stream();
    let (out, report) = inject_documents(&input, &injector()).unwrap();
    let docs = values(&out);
    assert_eq!(docs.len(), 8);
    for doc in &docs[..5] {
        assert!(
            has_proxy(&doc["spec"]["template"]["spec"]),
            "{}",
            doc["kind"]
        );
        assert_eq!(
            doc["spec"]["template"]["metadata"]["annotations"]["weft.dev/proxy-version"],
            "0.1.0"
        );
    }
    assert!(has_proxy(
        &docs[5]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    ));
    assert_eq!(docs[6], values(&input)[6], "the Service changed");
    assert!(has_proxy(&docs[7]["items"][0]["spec"]));
    assert!(!has_proxy(&docs[7]["items"][1]["spec"]));
    assert_eq!(
        report.lines,
        [
            "deployment/deployment injected",
            "statefulset/statefulset injected",
            "daemonset/daemonset injected",
            "replicaset/replicaset injected",
            "job/job injected",
            "cronjob/nightly injected",
            "pod/one injected",
            "pod/two skipped: the pod has weft.dev/inject: disabled",
        ]
    );
    // Key order is the input's: a Deployment still starts with apiVersion, kind, metadata.
    assert!(
        out.starts_with("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: deployment\n"),
        "{out}"
    );
}

#[test]
fn injecting_twice_changes_nothing_and_uninject_gives_the_input_back() {
    let input = stream();
    let (once, _) = inject_documents(&input, &injector()).unwrap();
    let (twice, report) = inject_documents(&once, &injector()).unwrap();
    assert_eq!(once, twice);
    assert!(
        report.lines.iter().all(|l| l.contains("skipped")),
        "{:?}",
        report.lines
    );
    let (back, report) = uninject_documents(&once).unwrap();
    assert_eq!(values(&back), values(&input));
    assert_eq!(
        report
            .lines
            .iter()
            .filter(|l| l.ends_with(" uninjected"))
            .count(),
        7
    );
    let (again, _) = uninject_documents(&back).unwrap();
    assert_eq!(again, back);
}

#[test]
fn namespace_documents_lend_their_overrides() {
    let input = "apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {weft.dev/proxy-log-level: debug}
---
"
    .to_string()
        + &template("Deployment", "");
    let (out, _) = inject_documents(&input, &injector()).unwrap();
    let docs = values(&out);
    let proxy = &docs[1]["spec"]["template"]["spec"]["initContainers"][1];
    let log = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "WEFT_PROXY_LOG")
        .unwrap();
    assert_eq!(log["value"], "debug");
}

#[test]
fn bad_input_is_reported_with_its_document_and_place() {
    let err = inject_documents("kind: Pod\n---\nkind: [Pod\n", &injector()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("document 2: not valid YAML"), "{text}");
    assert!(text.contains("line"), "{text}");

    let no_containers = template("Deployment", "").replace(
        "      containers:\n        - name: web\n          image: web:1\n",
        "      containers: []\n",
    );
    let err = inject_documents(&no_containers, &injector()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "document 1 (deployment/deployment): /spec/template/spec/containers: has no container; a pod needs at least one"
    );
    let numeric = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {a~b/c: 1}\nspec: {containers: [{name: a}]}\n";
    let err = inject_documents(numeric, &injector()).unwrap_err();
    assert!(
        err.to_string()
            .contains("/metadata/annotations/a~0b~1c: is a number"),
        "{err}"
    );
    let err = uninject_documents(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("/spec/containers: is a number, expected a list"),
        "{err}"
    );
    // A document that is no pod at all is passed through untouched.
    let (out, report) = inject_documents("just: text\n", &injector()).unwrap();
    assert_eq!(out, "just: text\n");
    assert!(report.lines.is_empty());
}

#[test]
fn pod_errors_name_the_place() {
    let err = Injector::new(Config::new("r", "v"))
        .inject(
            &serde_json::json!({"spec": {"containers": [{"image": "x"}]}}),
            &Default::default(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        PodError {
            at: "/spec/containers/0".to_string(),
            problem: "has no name".to_string()
        }
    );
}
