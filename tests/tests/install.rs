//! `weft install` is the contract users apply, so its output is checked like `deploy/`: the
//! real `weft` binary renders into a file; every document parses as its k8s-openapi type and
//! survives the round trip (no unknown field anywhere), custom kinds are of CRDs it installs,
//! the caBundle verifies the webhook's certificate, the issuer chains to the trust anchors,
//! Services, PDBs and the webhook point at what exists, every flag given to weft-controller
//! and weft-injector is one they have, every container is locked down, every image has a
//! Dockerfile, keys appear only inside Secrets, and kubectl reads it all (`label --local`).

#[path = "support/files.rs"]
mod files;
#[path = "support/kinds.rs"]
mod kinds;
#[path = "support/kubectl.rs"]
mod kubectl;

use files::{repo, yaml_docs};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

fn bin(name: &str) -> PathBuf {
    weft_cli_local::bin_path(name).unwrap_or_else(|e| panic!("{e}"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-install-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `weft install ARGS --output FILE`: the documents, and the text.
fn install(name: &str, args: &[&str]) -> (Vec<Value>, String) {
    let out = temp(name).join("weft.yaml");
    let status = Command::new(bin("weft"))
        .arg("install")
        .args(args)
        .arg("--output")
        .arg(&out)
        .output()
        .expect("run weft install");
    assert!(
        status.status.success(),
        "weft install {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mode = std::fs::metadata(&out)
        .expect("output")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the output holds keys");
    let text = std::fs::read_to_string(&out).expect("read output");
    // It holds private keys: nothing is left behind.
    std::fs::remove_dir_all(out.parent().expect("a directory")).expect("clean up");
    (parse(&text), text)
}

fn parse(text: &str) -> Vec<Value> {
    yaml_docs(text).unwrap_or_else(|e| panic!("YAML: {e}"))
}

fn key(v: &Value) -> String {
    format!(
        "{}/{}",
        v["kind"].as_str().unwrap_or(""),
        v["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn find<T: DeserializeOwned>(docs: &[Value], kind: &str, name: &str) -> T {
    let doc = docs
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"));
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
}

#[test]
fn every_rendered_document_is_a_valid_kubernetes_object() {
    for (name, args) in [
        ("default", vec![]),
        ("jaeger", vec!["--tracing", "--replicas", "3"]),
        ("regular", vec!["--native-sidecars=false", "--cni"]),
    ] {
        let (docs, _) = install(name, &args);
        let crd_kinds: BTreeSet<(String, String)> = docs
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .flat_map(|d| {
                let group = d["spec"]["group"].as_str().unwrap_or("").to_string();
                let kind = d["spec"]["names"]["kind"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                d["spec"]["versions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |v| {
                        (
                            format!("{group}/{}", v["name"].as_str().unwrap_or("")),
                            kind.clone(),
                        )
                    })
            })
            .collect();
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        for doc in &docs {
            if !seen.insert(key(doc)) {
                problems.push(format!("{} twice", key(doc)));
            }
            match kinds::typed_problems(doc) {
                Some(found) => {
                    problems.extend(found.into_iter().map(|e| format!("{}: {e}", key(doc))))
                }
                None if crd_kinds.contains(&(
                    doc["apiVersion"].as_str().unwrap_or("").into(),
                    doc["kind"].as_str().unwrap_or("").into(),
                )) => {}
                None => problems.push(format!("{}: a kind nothing here checks", key(doc))),
            }
        }
        assert!(
            problems.is_empty(),
            "weft install {args:?}:\n{}",
            problems.join("\n")
        );
        assert_eq!(
            docs.iter().filter(|d| d["kind"] == "Deployment").count(),
            if name == "jaeger" { 3 } else { 2 }
        );
    }
}

#[test]
fn the_crds_are_deploys_and_install_crds_renders_them_alone() {
    let (all, _) = install("all", &[]);
    let (crds, text) = install("crds", &["--crds"]);
    assert!(crds.iter().all(|d| d["kind"] == "CustomResourceDefinition"));
    assert!(!text.contains("Secret"));
    let from_all: Vec<&Value> = all
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    assert_eq!(from_all.len(), crds.len());
    let mut from_deploy = Vec::new();
    let mut stack = vec![repo().join("deploy/crds")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("deploy/crds") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                from_deploy.extend(parse(&std::fs::read_to_string(&path).expect("crd")));
            }
        }
    }
    let names = |docs: Vec<&Value>| docs.iter().map(|d| key(d)).collect::<BTreeSet<_>>();
    assert_eq!(
        names(crds.iter().collect()),
        names(from_deploy.iter().collect())
    );
    for crd in &crds {
        assert!(
            from_deploy.contains(crd),
            "{} differs from deploy/crds",
            key(crd)
        );
    }
}

fn secret_text(docs: &[Value], name: &str, field: &str) -> String {
    let secret: Secret = find(docs, "Secret", name);
    let data = secret.data.unwrap_or_default();
    String::from_utf8(
        data.get(field)
            .unwrap_or_else(|| panic!("{name} has no {field}"))
            .0
            .clone(),
    )
    .expect("PEM")
}

#[test]
fn the_certificates_fit_together() {
    let (docs, text) = install("certs", &[]);
    let webhook: MutatingWebhookConfiguration =
        find(&docs, "MutatingWebhookConfiguration", "weft-injector");
    let hook = &webhook.webhooks.expect("webhooks")[0];
    let bundle =
        String::from_utf8(hook.client_config.ca_bundle.clone().expect("caBundle").0).expect("PEM");
    let cert = secret_text(&docs, "weft-injector-tls", "tls.crt");
    let now = SystemTime::now();
    for name in [
        "weft-injector.weft-system.svc",
        "weft-injector.weft-system.svc.cluster.local",
    ] {
        weft_certs::check_server_cert(&cert, &bundle, name, now)
            .expect("the caBundle verifies the webhook's certificate");
    }
    weft_certs::ServerCredentials::from_pem(
        &cert,
        &secret_text(&docs, "weft-injector-tls", "tls.key"),
    )
    .expect("key and certificate match");

    let anchors: ConfigMap = find(&docs, "ConfigMap", "weft-identity-trust-anchors");
    let anchors = anchors.data.expect("data")["ca.crt"].clone();
    let anchors = weft_certs::TrustAnchors::from_pem(&anchors).expect("anchors");
    let issuer = weft_certs::Issuer::load(
        &secret_text(&docs, "weft-identity-issuer", "tls.crt"),
        &secret_text(&docs, "weft-identity-issuer", "tls.key"),
        &anchors,
    )
    .expect("the issuer chains to the anchors");
    let year = Duration::from_secs(365 * 86_400);
    assert!(issuer.not_after() > now + year - Duration::from_secs(86_400));
    // Keys are only inside Secrets (base64): never in the clear.
    assert!(!text.contains("PRIVATE KEY"));
    assert_eq!(
        docs.iter()
            .filter(|d| d.to_string().contains("tls.key"))
            .map(key)
            .collect::<Vec<_>>(),
        [
            "Secret/weft-identity-issuer",
            "Secret/weft-injector-tls",
            "Deployment/weft-controller",
            "Deployment/weft-injector"
        ]
    );
}

#[test]
fn given_certificates_are_used_and_bad_ones_refused() {
    let dir = temp("given");
    let weft = |args: &[&str]| {
        Command::new(bin("weft"))
            .current_dir(&dir)
            .args(args)
            .output()
            .expect("weft")
    };
    for args in [
        &[
            "certs",
            "root",
            "--cert-out",
            "ca.crt",
            "--key-out",
            "ca.key",
            "--force",
        ][..],
        &[
            "certs",
            "issuer",
            "--ca-cert",
            "ca.crt",
            "--ca-key",
            "ca.key",
            "--cert-out",
            "issuer.crt",
            "--key-out",
            "issuer.key",
            "--force",
        ],
        &[
            "certs",
            "root",
            "--cert-out",
            "other.crt",
            "--key-out",
            "other.key",
            "--force",
        ],
    ] {
        assert!(weft(args).status.success(), "{args:?}");
    }
    let path = |f: &str| dir.join(f).display().to_string();
    let (docs, _) = install(
        "given-out",
        &[
            "--identity-trust-anchors",
            &path("ca.crt"),
            "--identity-issuer-cert",
            &path("issuer.crt"),
            "--identity-issuer-key",
            &path("issuer.key"),
        ],
    );
    let anchors: ConfigMap = find(&docs, "ConfigMap", "weft-identity-trust-anchors");
    assert_eq!(
        anchors.data.expect("data")["ca.crt"],
        std::fs::read_to_string(dir.join("ca.crt")).expect("ca")
    );
    assert_eq!(
        secret_text(&docs, "weft-identity-issuer", "tls.key"),
        std::fs::read_to_string(dir.join("issuer.key")).expect("key")
    );

    for (args, says) in [
        (
            vec![
                "--identity-trust-anchors",
                "other.crt",
                "--identity-issuer-cert",
                "issuer.crt",
                "--identity-issuer-key",
                "issuer.key",
            ],
            "is not signed by",
        ),
        (
            vec![
                "--identity-trust-anchors",
                "ca.crt",
                "--identity-issuer-cert",
                "issuer.crt",
                "--identity-issuer-key",
                "ca.key",
            ],
            "does not match",
        ),
        (
            vec!["--identity-trust-anchors", "ca.crt"],
            "given without --identity-issuer-cert, --identity-issuer-key",
        ),
        (
            vec![
                "--webhook-cert",
                "issuer.crt",
                "--webhook-key",
                "issuer.key",
                "--webhook-ca",
                "ca.crt",
            ],
            "DNS:weft-injector.weft-system.svc",
        ),
        (
            vec!["--webhook-failure-policy", "Sometimes"],
            "possible values: Ignore, Fail",
        ),
        (vec!["--trust-domain", "a..b"], "--trust-domain"),
    ] {
        let mut all = vec!["install", "--output", "out.yaml"];
        all.extend(&args);
        let out = weft(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} passed");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn services_budgets_and_the_webhook_point_at_what_exists() {
    let (docs, _) = install("refs", &["--tracing"]);
    let deployments: Vec<Deployment> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .map(|d| serde_json::from_value(d.clone()).expect("Deployment"))
        .collect();
    let pods_matching = |selector: &BTreeMap<String, String>| -> Vec<&Deployment> {
        deployments
            .iter()
            .filter(|d| {
                let labels = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect()
    };
    for doc in docs.iter().filter(|d| d["kind"] == "Service") {
        let service: Service = serde_json::from_value(doc.clone()).expect("Service");
        let spec = service.spec.expect("spec");
        let matched = pods_matching(&spec.selector.clone().expect("selector"));
        assert_eq!(
            matched.len(),
            1,
            "{} selects {} Deployments",
            key(doc),
            matched.len()
        );
        let containers = &matched[0]
            .spec
            .as_ref()
            .expect("spec")
            .template
            .spec
            .as_ref()
            .expect("pod")
            .containers;
        let ports: BTreeSet<String> = containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| p.name.clone())
            .collect();
        for port in spec.ports.expect("ports") {
            let target = match port.target_port.expect("targetPort") {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => name,
                other => panic!(
                    "{}: targetPort {other:?} should name a container port",
                    key(doc)
                ),
            };
            assert!(
                ports.contains(&target),
                "{}: no container port {target}",
                key(doc)
            );
        }
    }
    for doc in docs.iter().filter(|d| d["kind"] == "PodDisruptionBudget") {
        let pdb: PodDisruptionBudget = serde_json::from_value(doc.clone()).expect("PDB");
        let selector = pdb
            .spec
            .expect("spec")
            .selector
            .expect("selector")
            .match_labels
            .expect("labels");
        assert_eq!(pods_matching(&selector).len(), 1, "{}", key(doc));
    }
    for deployment in &deployments {
        let spec = deployment.spec.as_ref().expect("spec");
        let pod = spec.template.spec.as_ref().expect("pod");
        let selector = spec.selector.match_labels.clone().expect("labels");
        assert_eq!(pods_matching(&selector).len(), 1);
        if let Some(sa) = &pod.service_account_name {
            let _: ServiceAccount = find(&docs, "ServiceAccount", sa);
        }
        for volume in pod.volumes.iter().flatten() {
            if let Some(map) = &volume.config_map {
                let _: ConfigMap = find(&docs, "ConfigMap", &map.name);
            }
            if let Some(secret) = &volume.secret {
                let _: Secret = find(
                    &docs,
                    "Secret",
                    secret.secret_name.as_deref().expect("name"),
                );
            }
        }
    }
    let webhook: MutatingWebhookConfiguration =
        find(&docs, "MutatingWebhookConfiguration", "weft-injector");
    let hook = &webhook.webhooks.expect("webhooks")[0];
    assert_eq!(hook.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(hook.side_effects, "None");
    assert_eq!(hook.admission_review_versions, ["v1"]);
    let target = hook.client_config.service.as_ref().expect("service");
    let service: Service = find(&docs, "Service", &target.name);
    assert_eq!(
        service.metadata.namespace.as_deref(),
        Some(target.namespace.as_str())
    );
    assert!(
        service
            .spec
            .expect("spec")
            .ports
            .expect("ports")
            .iter()
            .any(|p| Some(p.port) == target.port)
    );
    let excluded = hook
        .namespace_selector
        .as_ref()
        .expect("namespaceSelector")
        .match_expressions
        .clone()
        .expect("expressions");
    assert_eq!(excluded[0].key, "kubernetes.io/metadata.name");
    assert_eq!(excluded[0].operator, "NotIn");
    assert_eq!(
        excluded[0].values.clone().expect("values"),
        ["weft-system", "kube-system"]
    );
    let object = hook
        .object_selector
        .as_ref()
        .expect("objectSelector")
        .match_expressions
        .clone()
        .expect("expressions");
    assert_eq!(
        (object[0].key.as_str(), object[0].operator.as_str()),
        ("weft.dev/control-plane-component", "DoesNotExist")
    );
    // The control plane's own pods carry that label, so the webhook never sees them.
    for deployment in &deployments {
        let labels = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .expect("labels");
        assert!(labels.contains_key("weft.dev/control-plane-component"));
    }
}

/// The `--flags` of a binary's `--help`.
fn help_flags(name: &str) -> BTreeSet<String> {
    let out = Command::new(bin(name))
        .arg("--help")
        .output()
        .expect("--help");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .split('=')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn control_plane_flags_exist_and_containers_are_locked_down() {
    let (docs, _) = install("flags", &["--tracing", "--native-sidecars=false", "--cni"]);
    for (deployment, binary) in [
        ("weft-controller", "weft-controller"),
        ("weft-injector", "weft-injector"),
    ] {
        let known = help_flags(binary);
        let d: Deployment = find(&docs, "Deployment", deployment);
        let container = &d.spec.expect("spec").template.spec.expect("pod").containers[0];
        for arg in container.args.iter().flatten() {
            let flag = arg.split('=').next().unwrap_or("");
            assert!(
                known.contains(flag),
                "{deployment}: {binary} has no {flag} (has {known:?})"
            );
        }
    }
    for doc in docs.iter().filter(|d| d["kind"] == "Deployment") {
        let d: Deployment = serde_json::from_value(doc.clone()).expect("Deployment");
        let pod = d.spec.expect("spec").template.spec.expect("pod");
        let pod_ctx = pod.security_context.clone().expect("pod securityContext");
        assert_eq!(pod_ctx.run_as_non_root, Some(true), "{}", key(doc));
        for c in &pod.containers {
            let ctx = c.security_context.clone().expect("securityContext");
            assert_eq!(ctx.allow_privilege_escalation, Some(false), "{}", key(doc));
            assert_eq!(ctx.read_only_root_filesystem, Some(true), "{}", key(doc));
            assert_eq!(
                ctx.capabilities.and_then(|c| c.drop),
                Some(vec!["ALL".to_string()]),
                "{}",
                key(doc)
            );
            assert!(
                c.resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .is_some(),
                "{}: no requests",
                key(doc)
            );
        }
    }
}

#[test]
fn every_weft_image_has_a_dockerfile() {
    let (docs, _) = install("images", &[]);
    let mut images = BTreeSet::new();
    for doc in docs.iter().filter(|d| d["kind"] == "Deployment") {
        let d: Deployment = serde_json::from_value(doc.clone()).expect("Deployment");
        for c in d.spec.expect("spec").template.spec.expect("pod").containers {
            images.insert(c.image.expect("image"));
        }
        for arg in doc
            .to_string()
            .split('"')
            .filter(|a| a.starts_with("--proxy-version="))
        {
            let version = arg.trim_start_matches("--proxy-version=");
            images.insert(format!("ghcr.io/weft-mesh/weft-proxy:{version}"));
            images.insert(format!("ghcr.io/weft-mesh/weft-init:{version}"));
        }
    }
    let binaries: BTreeSet<&str> = images
        .iter()
        .filter_map(|i| i.strip_prefix("ghcr.io/weft-mesh/"))
        .filter_map(|i| i.split(':').next())
        .collect();
    assert_eq!(
        binaries,
        BTreeSet::from([
            "weft-controller",
            "weft-init",
            "weft-injector",
            "weft-proxy"
        ])
    );
    for binary in binaries.iter().copied().chain(["weft"]) {
        let path = repo().join(format!("deploy/docker/{binary}.Dockerfile"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            text.contains(&format!("--bin {binary}")) || text.contains(&format!("-p {binary}")),
            "{} does not build {binary}",
            path.display()
        );
        let last_from = text
            .lines()
            .rfind(|l| l.starts_with("FROM "))
            .expect("FROM");
        assert!(
            text.matches("FROM ").count() >= 2,
            "{}: not multi-stage",
            path.display()
        );
        if binary != "weft-init" {
            assert!(
                last_from.contains("distroless") && last_from.contains("nonroot"),
                "{}: {last_from}",
                path.display()
            );
        }
    }
}

#[test]
fn kubectl_reads_the_rendered_install() {
    let Some(kubectl) = kubectl::find("weft install") else {
        return;
    };
    let dir = temp("kubectl");
    let file = dir.join("weft.yaml");
    let (docs, text) = install("kubectl-out", &["--tracing"]);
    std::fs::write(&file, text).expect("write");
    let names = kubectl::names(&kubectl, Some(&file), "");
    std::fs::remove_dir_all(&dir).expect("clean up");
    let expected: Vec<String> = docs.iter().map(kubectl::name).collect();
    assert_eq!(names, Ok(expected));
}
