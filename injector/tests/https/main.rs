//! The webhook over real HTTPS on 127.0.0.1, with a certificate made by weft-certs: a real
//! AdmissionReview in, the golden patch out; a replaced certificate served on the next
//! connection; and a corpus of garbage (bad JSON, wrong kinds, huge and trickled bodies, idle
//! connections) always answered with a well-formed allow-with-warning or a clear HTTP error,
//! never a crash or a hang.

#![allow(clippy::unwrap_used)]

#[path = "../support/golden.rs"]
mod support;

mod client;
mod garbage;

use client::{Client, Server};
use serde_json::Value;
use std::{collections::BTreeMap, time::Duration};
use support::{answer, golden_dir, read_json, review_of};
use weft_injector::{Limits, StaticNamespaces};

fn shop() -> StaticNamespaces {
    StaticNamespaces(BTreeMap::from([(
        "shop".to_string(),
        BTreeMap::from([("weft.dev/inject".to_string(), "enabled".to_string())]),
    )]))
}

#[tokio::test]
async fn a_real_admission_review_gets_the_golden_patch() {
    let server = Server::start(shop(), Limits::default()).await;
    let pod = read_json(&golden_dir().join("deployment/pod.yaml"));
    let expected = read_json(&golden_dir().join("deployment/patch.json"));
    let body = serde_json::to_vec(&review_of("3f1c", "shop", &pod)).unwrap();
    for http2 in [false, true] {
        let client = Client::connect(&server, http2).await;
        let (status, headers, response) = client.post("/inject", body.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/json");
        let answer = answer(&response);
        assert_eq!((answer.uid.as_str(), answer.allowed), ("3f1c", true));
        assert_eq!(answer.patch, Some(expected.clone()), "http2: {http2}");
    }
}

#[tokio::test]
async fn probes_and_unknown_paths() {
    let server = Server::start(shop(), Limits::default()).await;
    let client = Client::connect(&server, false).await;
    assert_eq!(client.get("/ready").await.0, 200);
    assert_eq!(client.get("/live").await.0, 200);
    assert_eq!(client.get("/inject").await.0, 405);
    let (status, _, body) = client.get("/mutate").await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("POST /inject"));
}

#[tokio::test]
async fn a_replaced_certificate_is_served_on_the_next_connection() {
    let server = Server::start(shop(), Limits::default()).await;
    let first = Client::connect(&server, false).await;
    assert_eq!(first.peer_cert, server.cert_der());
    // Nothing changed: no reload.
    assert!(!server.reloader.poll());

    server.rotate_cert();
    assert!(server.reloader.poll(), "the new files were not picked up");
    let second = Client::connect(&server, false).await;
    assert_ne!(second.peer_cert, first.peer_cert);
    assert_eq!(second.peer_cert, server.cert_der());
    // The old connection goes on with the certificate it shook hands with.
    assert_eq!(first.get("/live").await.0, 200);

    // A broken file keeps the last good certificate in service.
    std::fs::write(
        server.dir.join("tls.crt"),
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    )
    .unwrap();
    assert!(!server.reloader.poll());
    let third = Client::connect(&server, false).await;
    assert_eq!(third.peer_cert, second.peer_cert);
}

#[tokio::test]
async fn replaced_trust_anchors_reach_new_pods() {
    let server = Server::start(shop(), Limits::default()).await;
    let pod = read_json(&golden_dir().join("job/pod.yaml"));
    let body = serde_json::to_vec(&review_of("a1", "shop", &pod)).unwrap();
    let anchors_in = |answer: &support::Answer| -> String {
        let patch = answer.patch.as_ref().unwrap().as_array().unwrap().clone();
        let proxy = patch
            .iter()
            .find(|op| op["value"].to_string().contains("weft-proxy"))
            .unwrap();
        let containers = proxy["value"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![proxy["value"].clone()]);
        let proxy = containers
            .iter()
            .find(|c| c["name"] == "weft-proxy")
            .unwrap();
        let env = proxy["env"].as_array().unwrap();
        let anchors = env
            .iter()
            .find(|e| e["name"] == "WEFT_PROXY_TRUST_ANCHORS")
            .unwrap();
        anchors["value"].as_str().unwrap().to_string()
    };
    let client = Client::connect(&server, false).await;
    let before = anchors_in(&answer(&client.post("/inject", body.clone()).await.2));
    assert_eq!(before, server.anchors);

    let new_root = weft_certs::generate_root("cluster.local", Duration::from_secs(3600)).unwrap();
    std::fs::write(server.dir.join("anchors.pem"), &new_root.cert_pem).unwrap();
    assert!(server.reloader.poll());
    let after = anchors_in(&answer(&client.post("/inject", body).await.2));
    assert_eq!(after, new_root.cert_pem);
}

#[tokio::test]
async fn a_namespace_without_the_annotation_is_left_alone() {
    let server = Server::start(shop(), Limits::default()).await;
    let mut pod = read_json(&golden_dir().join("deployment/pod.yaml"));
    pod["metadata"]["namespace"] = Value::from("billing");
    let body = serde_json::to_vec(&review_of("b2", "billing", &pod)).unwrap();
    let client = Client::connect(&server, false).await;
    let answer = answer(&client.post("/inject", body).await.2);
    assert_eq!(answer.patch, None);
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
}
