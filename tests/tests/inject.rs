//! `weft inject` gives what the webhook gives: for every workload of every file in
//! `deploy/examples`, the real `weft` binary's output template must equal the pod the API
//! server would create from the input template once patched by the webhook's AdmissionReview
//! handler, configured with the same flags and fed the file's Namespace annotations.

#[path = "support/files.rs"]
mod files;

use clap::Parser;
use files::{repo, yaml_docs};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use weft_injector::{InjectFlags, StaticNamespaces};
use weft_injector_patch::Injector;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    flags: InjectFlags,
}

fn anchors() -> PathBuf {
    repo().join("injector/tests/golden/anchors.pem")
}

fn docs(text: &str) -> Vec<Value> {
    yaml_docs(text).unwrap_or_else(|e| panic!("YAML: {e}"))
}

/// The pod template of a workload, if it is one.
fn template(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            doc.pointer("/spec/template")
        }
        "CronJob" => doc.pointer("/spec/jobTemplate/spec/template"),
        "Pod" => Some(doc),
        _ => None,
    }
}

/// What the webhook makes of the pod the API server creates from `template`.
fn webhook(
    injector: &Injector,
    namespaces: &StaticNamespaces,
    namespace: &str,
    template: &Value,
) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"].clone(), "spec": template["spec"].clone()});
    pod["metadata"]["namespace"] = json!(namespace);
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "e2e", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "operation": "CREATE", "namespace": namespace, "object": pod.clone(),
                    "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"}}
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let body = serde_json::to_vec(&review).expect("JSON");
    let answer = runtime.block_on(weft_injector::review::review(&body, namespaces, injector));
    let answer: Value = serde_json::from_slice(&answer).expect("a review");
    assert_eq!(answer["response"]["allowed"], true);
    if let Some(patch) = answer["response"]["patch"].as_str() {
        let bytes: k8s_openapi::ByteString = serde_json::from_value(json!(patch)).expect("base64");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes.0).expect("a JSON patch");
        json_patch::patch(&mut pod, &patch).expect("the patch applies");
    }
    pod
}

#[test]
fn weft_inject_gives_what_the_webhook_gives() {
    let weft = weft_cli_local::bin_path("weft").unwrap_or_else(|e| panic!("{e}"));
    let mut flags = Flags::parse_from(["test"]).flags;
    flags.trust_anchors = Some(anchors());
    let injector = Injector::new(flags.config().expect("config"));
    let mut workloads = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/examples"))
        .expect("deploy/examples")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for file in files {
        let input = docs(&std::fs::read_to_string(&file).expect("example"));
        if !input.iter().any(|d| template(d).is_some()) {
            continue;
        }
        let out = Command::new(&weft)
            .arg("inject")
            .arg("--trust-anchors")
            .arg(anchors())
            .arg(&file)
            .output()
            .expect("weft inject");
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let output = docs(&String::from_utf8(out.stdout).expect("UTF-8"));
        assert_eq!(output.len(), input.len(), "{}", file.display());
        let namespaces = StaticNamespaces(
            input
                .iter()
                .filter(|d| d["kind"] == "Namespace")
                .map(|d| {
                    let annotations: BTreeMap<String, String> =
                        serde_json::from_value(d["metadata"]["annotations"].clone())
                            .unwrap_or_default();
                    (
                        d["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        annotations,
                    )
                })
                .collect(),
        );
        for (before, after) in input.iter().zip(&output) {
            let Some(template_before) = template(before) else {
                assert_eq!(
                    before,
                    after,
                    "{}: a document that is no workload changed",
                    file.display()
                );
                continue;
            };
            workloads += 1;
            let namespace = before["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default");
            let patched = webhook(&injector, &namespaces, namespace, template_before);
            let offline = template(after).expect("still a workload");
            let what = format!("{} {}", file.display(), before["metadata"]["name"]);
            assert_eq!(patched["spec"], offline["spec"], "{what}: spec");
            let mut meta = patched["metadata"].clone();
            meta.as_object_mut().expect("metadata").remove("namespace");
            assert_eq!(meta, offline["metadata"], "{what}: metadata");
            assert!(
                offline["spec"]["initContainers"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["name"] == "weft-proxy")),
                "{what}: not meshed"
            );
        }
    }
    assert!(
        workloads >= 3,
        "deploy/examples has {workloads} workloads; shop.yaml has three"
    );
}
