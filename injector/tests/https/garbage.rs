//! Garbage in, over HTTPS: every malformed or unexpected request gets a well-formed
//! AdmissionReview that allows the pod unchanged with a warning, or a clear HTTP error; slow
//! and idle clients are cut off by the timeouts; and the server answers real reviews after it.

use super::{
    client::{Client, Server},
    shop,
    support::{answer, golden_dir, read_json, review_of},
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_injector::Limits;

fn short() -> Limits {
    Limits {
        max_body: 1024 * 1024,
        read_timeout: Duration::from_millis(500),
        drain: Duration::from_secs(1),
    }
}

fn pod() -> Value {
    read_json(&golden_dir().join("deployment/pod.yaml"))
}

/// Bodies that are not a v1 AdmissionReview about creating a Pod, with the uid the answer
/// must carry and a word its warning must contain.
fn corpus() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let good = review_of("u-1", "shop", &pod());
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let text = serde_json::to_vec(&good).unwrap();
    let mut deep = String::new();
    for _ in 0..10_000 {
        deep.push('[');
    }
    vec![
        ("empty body", Vec::new(), "", "not JSON"),
        (
            "truncated JSON",
            text[..text.len() / 2].to_vec(),
            "",
            "not JSON",
        ),
        (
            "binary junk",
            vec![0xff, 0x00, 0xfe, 0x12, 0x80, 0x7f, 0xc3],
            "",
            "not JSON",
        ),
        (
            "JSON null",
            b"null".to_vec(),
            "",
            "expected an admission.k8s.io/v1 AdmissionReview",
        ),
        (
            "a JSON array",
            b"[1,2,3]".to_vec(),
            "",
            "expected an admission.k8s.io/v1",
        ),
        ("deeply nested", deep.into_bytes(), "", "not JSON"),
        (
            "v1beta1",
            with(&|v| v["apiVersion"] = json!("admission.k8s.io/v1beta1")),
            "u-1",
            "v1beta1",
        ),
        (
            "another kind",
            with(&|v| v["kind"] = json!("ConversionReview")),
            "u-1",
            "ConversionReview",
        ),
        (
            "no request",
            with(&|v| {
                v.as_object_mut().unwrap().remove("request");
            }),
            "",
            "no request",
        ),
        (
            "no uid",
            with(&|v| {
                v["request"].as_object_mut().unwrap().remove("uid");
            }),
            "",
            "no uid",
        ),
        (
            "uid a number",
            with(&|v| v["request"]["uid"] = json!(7)),
            "",
            "no uid",
        ),
        (
            "a Deployment",
            with(&|v| {
                v["request"]["kind"] =
                    json!({"group": "apps", "version": "v1", "kind": "Deployment"})
            }),
            "u-1",
            "not a v1 Pod",
        ),
        (
            "an UPDATE",
            with(&|v| v["request"]["operation"] = json!("UPDATE")),
            "u-1",
            "UPDATE",
        ),
        (
            "a subresource",
            with(&|v| v["request"]["subResource"] = json!("ephemeralcontainers")),
            "u-1",
            "ephemeralcontainers",
        ),
        (
            "no object",
            with(&|v| v["request"]["object"] = Value::Null),
            "u-1",
            "no object",
        ),
        (
            "no namespace",
            with(&|v| {
                v["request"].as_object_mut().unwrap().remove("namespace");
                v["request"]["object"]["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("namespace");
            }),
            "u-1",
            "no namespace",
        ),
        (
            "no containers",
            with(&|v| {
                v["request"]["object"]["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("containers");
            }),
            "u-1",
            "/spec/containers",
        ),
        (
            "containers a map",
            with(&|v| v["request"]["object"]["spec"]["containers"] = json!({"a": 1})),
            "u-1",
            "/spec/containers",
        ),
        (
            "volumes a string",
            with(&|v| v["request"]["object"]["spec"]["volumes"] = json!("data")),
            "u-1",
            "/spec/volumes",
        ),
        (
            "annotation a number",
            with(&|v| {
                v["request"]["object"]["metadata"]["annotations"]["weft.dev/inject"] = json!(1)
            }),
            "u-1",
            "weft.dev~1inject",
        ),
        (
            "hostNetwork a string",
            with(&|v| v["request"]["object"]["spec"]["hostNetwork"] = json!("yes")),
            "u-1",
            "/spec/hostNetwork",
        ),
    ]
}

#[tokio::test]
async fn every_bad_review_is_allowed_with_a_warning() {
    let server = Server::start(shop(), short()).await;
    let client = Client::connect(&server, false).await;
    for (what, body, uid, word) in corpus() {
        let (status, _, response) = client.post("/inject", body).await;
        assert_eq!(status, 200, "{what}");
        let answer = answer(&response);
        assert_eq!(answer.uid, uid, "{what}");
        assert!(answer.allowed, "{what}");
        assert_eq!(answer.patch, None, "{what}");
        assert!(
            answer
                .warnings
                .iter()
                .any(|w| w.contains(word) && w.contains("without the Weft proxy")),
            "{what}: {:?}",
            answer.warnings
        );
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let server = Server::start(shop(), short()).await;
    let client = Client::connect(&server, false).await;
    // A pod with a 2 MiB annotation: over the 1 MiB limit.
    let mut pod = pod();
    pod["metadata"]["annotations"]["big"] = json!("x".repeat(2 * 1024 * 1024));
    let body = serde_json::to_vec(&review_of("big", "shop", &pod)).unwrap();
    let (status, _, text) = client.post("/inject", body).await;
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&text).contains("over 1048576 bytes"));

    // Declared too large, sent in chunks without a length: refused while reading.
    let mut tls = server.tls_stream().await;
    let head = "POST /inject HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut refused = false;
    for _ in 0..40 {
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if tls.write_all(&frame).await.is_err() {
            refused = true;
            break;
        }
    }
    let response = read_some(&mut tls).await;
    assert!(
        refused || response.starts_with("HTTP/1.1 413"),
        "{response}"
    );
    still_serves(&server).await;
}

#[tokio::test]
async fn a_trickled_body_times_out() {
    let server = Server::start(shop(), short()).await;
    let mut tls = server.tls_stream().await;
    let head = "POST /inject HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"apiV";
    tls.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let response = read_some(&mut tls).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(5));
    still_serves(&server).await;
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let server = Server::start(shop(), short()).await;
    // Headers that never end.
    let mut tls = server.tls_stream().await;
    tls.write_all(b"POST /inject HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let _ = read_some(&mut tls).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "slow headers held the connection"
    );

    // A TCP connection that never starts TLS.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the idle connection stayed open: {read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // Plain HTTP on the HTTPS port.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"POST /inject HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(_) | Err(_))), "plain HTTP hung");
    still_serves(&server).await;
}

/// Whatever came back before the server closed or went quiet for 5 s.
async fn read_some(tls: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The server still meshes a real pod.
async fn still_serves(server: &Server) {
    let client = Client::connect(server, true).await;
    let body = serde_json::to_vec(&review_of("after", "shop", &pod())).unwrap();
    let (status, _, response) = client.post("/inject", body).await;
    assert_eq!(status, 200);
    assert!(
        answer(&response).patch.is_some(),
        "no patch after the garbage"
    );
}
