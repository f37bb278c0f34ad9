//! `weft check` against a fake API server: a `tower_test` mock behind a real `kube::Client`
//! that checks every request (a GET of the expected path, no query) and answers with the
//! objects `weft install` renders (plus the status a running cluster gives them), or with
//! the breakage each test is about.

#![allow(clippy::unwrap_used)]

use clap::Parser;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde::Deserialize;
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, SystemTime},
};
use tower_test::mock;
use weft_cli::{
    check::{CheckOptions, Line, run_checks},
    install,
};

const NS: &str = "/api/v1/namespaces/weft-system";
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: install::Options,
}

/// What `weft install <args>` renders, by kind/name.
fn rendered(args: &[&str]) -> BTreeMap<String, Value> {
    let cli = Cli::parse_from(std::iter::once("weft").chain(args.iter().copied()));
    let text = install::render(&cli.options).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .map(|v| {
            (
                format!(
                    "{}/{}",
                    v["kind"].as_str().unwrap(),
                    v["metadata"]["name"].as_str().unwrap()
                ),
                v,
            )
        })
        .collect()
}

/// A healthy cluster running what `weft install <args>` renders: path → (status, body).
fn cluster(args: &[&str]) -> BTreeMap<String, (u16, Vec<u8>)> {
    let objects = rendered(args);
    let json = |v: &Value| serde_json::to_vec(v).unwrap();
    let mut paths = BTreeMap::new();
    paths.insert(
        "/version".to_string(),
        (200, json(&json!({"major": "1", "minor": "31", "gitVersion": "v1.31.2", "gitCommit": "5864a4677267e6adeae276ad85882a8714d69d9d",
            "gitTreeState": "clean", "buildDate": "2024-10-22T20:28:14Z", "goVersion": "go1.22.8", "compiler": "gc", "platform": "linux/amd64"}))),
    );
    for (key, object) in &objects {
        let mut object = object.clone();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let path = match key.split('/').next().unwrap() {
            "CustomResourceDefinition" => {
                object["status"] = json!({"conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}]});
                format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            }
            "Namespace" => format!("/api/v1/namespaces/{name}"),
            "Deployment" => {
                let n = object["spec"]["replicas"].as_i64().unwrap();
                object["status"] = json!({"replicas": n, "readyReplicas": n, "updatedReplicas": n, "availableReplicas": n, "observedGeneration": 1});
                format!("/apis/apps/v1/namespaces/weft-system/deployments/{name}")
            }
            "MutatingWebhookConfiguration" => format!(
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}"
            ),
            "Secret" => format!("{NS}/secrets/{name}"),
            "ConfigMap" => format!("{NS}/configmaps/{name}"),
            _ => continue,
        };
        paths.insert(path, (200, json(&object)));
    }
    paths.insert(
        format!("{NS}/services/https:weft-injector:https/proxy/ready"),
        (200, b"ready\n".to_vec()),
    );
    paths
}

/// The paths `weft check` reads, in order.
fn order() -> Vec<String> {
    let mut paths = vec!["/version".to_string()];
    paths.extend(
        weft_cli::check::CRDS
            .iter()
            .map(|c| format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c}")),
    );
    paths.push(NS.to_string());
    paths.push("/apis/apps/v1/namespaces/weft-system/deployments/weft-controller".to_string());
    paths.push("/apis/apps/v1/namespaces/weft-system/deployments/weft-injector".to_string());
    paths.push(
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/weft-injector"
            .to_string(),
    );
    paths.push(format!("{NS}/secrets/weft-injector-tls"));
    paths.push(format!(
        "{NS}/services/https:weft-injector:https/proxy/ready"
    ));
    paths.push(format!("{NS}/configmaps/weft-identity-trust-anchors"));
    paths.push(format!("{NS}/secrets/weft-identity-issuer"));
    paths
}

fn not_found(path: &str) -> (u16, Vec<u8>) {
    let name = path.rsplit('/').next().unwrap();
    (404, serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("\"{name}\" not found"), "reason": "NotFound", "details": {"name": name}, "code": 404})).unwrap())
}

/// Runs the checks against `cluster`, asserting the requests are `expected`, in order.
async fn check(
    cluster: BTreeMap<String, (u16, Vec<u8>)>,
    expected: Vec<String>,
    min_validity: Duration,
) -> Vec<Line> {
    let (service, mut api) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let server = tokio::spawn(async move {
        for path in expected {
            let (req, respond) = api
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no request for {path}"));
            assert_eq!(req.method(), Method::GET, "{}", req.uri());
            assert_eq!(req.uri().path(), path);
            assert_eq!(req.uri().query(), None, "{}", req.uri());
            let (status, body) = cluster
                .get(&path)
                .cloned()
                .unwrap_or_else(|| not_found(&path));
            let content_type = if body.starts_with(b"{") {
                "application/json"
            } else {
                "text/plain"
            };
            respond.send_response(
                Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", content_type)
                    .body(Body::from(body))
                    .unwrap(),
            );
        }
        api
    });
    let options = CheckOptions {
        min_validity,
        now: SystemTime::now(),
    };
    let lines = run_checks(&client, &options).await;
    let mut api = server.await.unwrap();
    drop(client);
    assert!(
        api.next_request().await.is_none(),
        "a request nobody expected"
    );
    lines
}

fn failed(lines: &[Line]) -> Vec<(&str, &str)> {
    lines
        .iter()
        .filter(|l| !l.ok)
        .map(|l| (l.what.as_str(), l.detail.as_str()))
        .collect()
}

#[tokio::test]
async fn a_fresh_install_passes_every_check() {
    let lines = check(cluster(&[]), order(), 30 * DAY).await;
    assert_eq!(lines.len(), 11, "{lines:#?}");
    assert_eq!(failed(&lines), Vec::<(&str, &str)>::new(), "{lines:#?}");
    let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    assert_eq!(text[0], "√ the Kubernetes API is reachable: v1.31.2");
    assert_eq!(text[1], "√ the CRDs are installed: 7 CRDs established");
    assert!(
        text[9].starts_with(
            "√ the trust anchors are valid: CN=root.cluster.local valid for 3649 more days"
        ),
        "{}",
        text[9]
    );
    assert!(
        text[10]
            .starts_with("√ the issuer is valid: CN=issuer.cluster.local valid for 364 more days"),
        "{}",
        text[10]
    );
}

#[tokio::test]
async fn an_unreachable_api_is_the_only_line() {
    let mut broken = cluster(&[]);
    broken.insert("/version".into(), (503, b"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"the server is currently unable to handle the request\",\"reason\":\"ServiceUnavailable\",\"code\":503}".to_vec()));
    let lines = check(broken, vec!["/version".to_string()], 30 * DAY).await;
    assert_eq!(lines.len(), 1);
    assert!(!lines[0].ok);
    assert!(
        lines[0]
            .to_string()
            .starts_with("× the Kubernetes API is reachable: "),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn a_broken_install_fails_the_checks_it_breaks() {
    let mut broken = cluster(&[]);
    // A CRD missing, another not established.
    broken.remove("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/grpcroutes.gateway.networking.k8s.io");
    let path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/servers.policy.weft.dev"
        .to_string();
    let mut crd: Value = serde_json::from_slice(&broken[&path].1).unwrap();
    crd["status"]["conditions"][1]["status"] = json!("False");
    broken.insert(path, (200, serde_json::to_vec(&crd).unwrap()));
    // The injector not ready.
    let path = "/apis/apps/v1/namespaces/weft-system/deployments/weft-injector".to_string();
    let mut deployment: Value = serde_json::from_slice(&broken[&path].1).unwrap();
    deployment["status"] = json!({"replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1});
    broken.insert(path, (200, serde_json::to_vec(&deployment).unwrap()));
    // The webhook's certificate from another install, and no answer through the Service.
    let other = cluster(&[]);
    let key = format!("{NS}/secrets/weft-injector-tls");
    broken.insert(key.clone(), other[&key].clone());
    broken.insert(
        format!("{NS}/services/https:weft-injector:https/proxy/ready"),
        (
            503,
            b"no endpoints available for service \"https:weft-injector:https\"".to_vec(),
        ),
    );

    let lines = check(broken, order(), 30 * DAY).await;
    let failed = failed(&lines);
    let whats: Vec<&str> = failed.iter().map(|(w, _)| *w).collect();
    assert_eq!(
        whats,
        [
            "the CRDs are installed",
            "weft-injector is ready",
            "the webhook's certificate is valid",
            "the webhook is reachable"
        ],
        "{lines:#?}"
    );
    assert_eq!(
        failed[0].1,
        "grpcroutes.gateway.networking.k8s.io is missing; servers.policy.weft.dev is not established (`weft install --crds | kubectl apply -f -`)"
    );
    assert!(
        failed[1].1.starts_with("0/1 replicas ready"),
        "{}",
        failed[1].1
    );
    assert!(failed[2].1.contains("is not signed by"), "{}", failed[2].1);
    assert!(
        failed[3].1.contains("cannot reach weft-injector"),
        "{}",
        failed[3].1
    );
}

#[tokio::test]
async fn certificates_near_expiry_fail() {
    // An issuer of 10 days under a root of 20: both under the 30 days asked for.
    let dir = std::env::temp_dir().join(format!("weft-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = weft_certs::generate_root("cluster.local", 20 * DAY).unwrap();
    let signer = weft_certs::Ca::from_pem(&root.cert_pem, &root.key_pem).unwrap();
    let issuer = weft_certs::generate_issuer(&signer, "cluster.local", 10 * DAY).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (anchors, cert, key) = (
        write("ca.crt", &root.cert_pem),
        write("issuer.crt", &issuer.cert_pem),
        write("issuer.key", &issuer.key_pem),
    );
    let lines = check(
        cluster(&[
            "--identity-trust-anchors",
            &anchors,
            "--identity-issuer-cert",
            &cert,
            "--identity-issuer-key",
            &key,
        ]),
        order(),
        30 * DAY,
    )
    .await;
    std::fs::remove_dir_all(Path::new(&dir)).unwrap();
    let failed = failed(&lines);
    assert_eq!(failed.len(), 2, "{lines:#?}");
    assert_eq!(failed[0].0, "the trust anchors are valid");
    assert!(
        failed[0].1.contains(
            "CN=root.cluster.local expires in 19 days, sooner than the 30 days asked for"
        ),
        "{}",
        failed[0].1
    );
    assert_eq!(failed[1].0, "the issuer is valid");
    assert!(failed[1].1.contains("expires in 9 days"), "{}", failed[1].1);
}

#[tokio::test]
async fn native_sidecars_on_an_old_cluster_fail() {
    let mut old = cluster(&[]);
    old.insert("/version".into(), (200, serde_json::to_vec(&json!({"major": "1", "minor": "28+", "gitVersion": "v1.28.9-eks-036c24b",
        "gitCommit": "f75443c988661ca0a6dfa0dc01ea82dd42d31278", "gitTreeState": "clean", "buildDate": "2024-04-30T23:53:58Z",
        "goVersion": "go1.21.9", "compiler": "gc", "platform": "linux/amd64"})).unwrap()));
    let lines = check(old.clone(), order(), 30 * DAY).await;
    let failed = failed(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(
        failed[0].1.contains("Kubernetes 1.28 does not run"),
        "{}",
        failed[0].1
    );

    // Regular proxy containers run anywhere.
    let mut regular = cluster(&["--native-sidecars=false"]);
    regular.insert("/version".into(), old["/version"].clone());
    let lines = check(regular, order(), 30 * DAY).await;
    assert_eq!(failed_count(&lines), 0, "{lines:#?}");
}

fn failed_count(lines: &[Line]) -> usize {
    lines.iter().filter(|l| !l.ok).count()
}
