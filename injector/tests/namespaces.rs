//! The namespace cache against a fake API server (a `tower_test` mock behind a real
//! `kube::Client`): every request is checked (method, path, query, metadata-only Accept) and
//! answered with the JSON a real API server sends. Lookups of listed or watched namespaces
//! cost no request; a namespace the cache has not seen is read once; errors and silence
//! become errors, not hangs.

#![allow(clippy::unwrap_used)]

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use std::{collections::BTreeMap, time::Duration};
use tower_test::mock;
use weft_injector::{LookupError, NamespaceCache, Namespaces};

type Handle = mock::Handle<Request<Body>, Response<Body>>;
type Respond = mock::SendResponse<Response<Body>>;

/// Polls `$cond` on the (paused) tokio clock until it holds, or panics after 60s of it.
macro_rules! assert_eventually {
    ($cond:expr, $($msg:tt)+) => {{
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if $cond {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }};
}

/// Waits for the next request and checks it is `GET path?query` for metadata only.
async fn expect(api: &mut Handle, path: &str, query: &[(&str, &str)]) -> Respond {
    let (req, respond) = tokio::time::timeout(Duration::from_secs(30), api.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request for {path}"))
        .expect("the client is gone");
    assert_eq!(req.method(), Method::GET, "{}", req.uri());
    assert_eq!(req.uri().path(), path, "{}", req.uri());
    let got: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let want: BTreeMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want, "{}", req.uri());
    let accept = req.headers()["accept"].to_str().unwrap();
    assert!(
        accept.contains("as=PartialObjectMetadata"),
        "not a metadata request: {accept}"
    );
    respond
}

fn send(respond: Respond, status: StatusCode, body: Vec<u8>) {
    respond.send_response(
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap(),
    );
}

fn meta(name: &str, rv: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {
            "name": name,
            "uid": format!("0b7e2c1a-0000-4000-8000-{:012}", rv.parse::<u64>().unwrap()),
            "resourceVersion": rv,
            "creationTimestamp": "2026-11-01T08:00:00Z",
            "labels": {"kubernetes.io/metadata.name": name},
            "annotations": annotations,
        }
    })
}

#[tokio::test(start_paused = true)]
async fn lookups_come_from_the_cache_and_misses_from_the_api() {
    let (service, mut api) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let (cache, task) = NamespaceCache::start(client);
    tokio::spawn(task);
    assert!(!cache.ready());

    let list = expect(&mut api, "/api/v1/namespaces", &[("limit", "500")]).await;
    let items = json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadataList",
        "metadata": {"resourceVersion": "100"},
        "items": [
            meta("shop", "11", json!({"weft.dev/inject": "enabled", "weft.dev/proxy-log-level": "debug"})),
            meta("kube-system", "4", Value::Null),
        ],
    });
    send(list, StatusCode::OK, serde_json::to_vec(&items).unwrap());
    let watch = expect(
        &mut api,
        "/api/v1/namespaces",
        &[
            ("watch", "true"),
            ("timeoutSeconds", "290"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", "100"),
        ],
    )
    .await;
    let added = json!({"type": "ADDED", "object": meta("billing", "120", json!({"weft.dev/inject": "enabled"}))});
    send(watch, StatusCode::OK, format!("{added}\n").into_bytes());
    // The watch body ended; kube watches again from 120. Hold that one open.
    let _rewatch = expect(
        &mut api,
        "/api/v1/namespaces",
        &[
            ("watch", "true"),
            ("timeoutSeconds", "290"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", "120"),
        ],
    )
    .await;
    assert_eventually!(cache.ready(), "listed, but not ready");

    // From the cache: no request (the mock would see one and the next expect would fail).
    let shop = cache.annotations("shop").await.unwrap();
    assert_eq!(shop["weft.dev/inject"], "enabled");
    assert_eq!(shop["weft.dev/proxy-log-level"], "debug");
    assert!(cache.annotations("kube-system").await.unwrap().is_empty());
    assert_eq!(
        cache.annotations("billing").await.unwrap()["weft.dev/inject"],
        "enabled"
    );

    // Not seen yet: one GET.
    let lookup = tokio::spawn({
        let cache = cache.clone();
        async move { cache.annotations("fresh").await }
    });
    let get = expect(&mut api, "/api/v1/namespaces/fresh", &[]).await;
    send(
        get,
        StatusCode::OK,
        serde_json::to_vec(&meta("fresh", "130", json!({"weft.dev/inject": "enabled"}))).unwrap(),
    );
    assert_eq!(lookup.await.unwrap().unwrap()["weft.dev/inject"], "enabled");

    // Gone: no annotations.
    let lookup = tokio::spawn({
        let cache = cache.clone();
        async move { cache.annotations("gone").await }
    });
    let get = expect(&mut api, "/api/v1/namespaces/gone", &[]).await;
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "namespaces \"gone\" not found", "reason": "NotFound",
        "details": {"name": "gone", "kind": "namespaces"}, "code": 404});
    send(
        get,
        StatusCode::NOT_FOUND,
        serde_json::to_vec(&not_found).unwrap(),
    );
    assert!(lookup.await.unwrap().unwrap().is_empty());

    // Refused: an error naming the API server.
    let lookup = tokio::spawn({
        let cache = cache.clone();
        async move { cache.annotations("secret").await }
    });
    let get = expect(&mut api, "/api/v1/namespaces/secret", &[]).await;
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "namespaces \"secret\" is forbidden: User \"system:serviceaccount:weft-system:weft-injector\" cannot get resource \"namespaces\"",
        "reason": "Forbidden", "details": {"name": "secret", "kind": "namespaces"}, "code": 403});
    send(
        get,
        StatusCode::FORBIDDEN,
        serde_json::to_vec(&forbidden).unwrap(),
    );
    let err = lookup.await.unwrap().unwrap_err();
    assert!(matches!(err, LookupError::Api(_)), "{err}");
    assert!(err.to_string().contains("forbidden"), "{err}");

    // Silence: a timeout, not a hang.
    let lookup = tokio::spawn({
        let cache = cache.clone();
        async move { cache.annotations("slow").await }
    });
    let _held = expect(&mut api, "/api/v1/namespaces/slow", &[]).await;
    let err = lookup.await.unwrap().unwrap_err();
    assert!(matches!(err, LookupError::Timeout(_)), "{err}");
}

/// Namespaces that cannot be read.
struct Unreachable;

impl Namespaces for Unreachable {
    fn annotations<'a>(
        &'a self,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<weft_injector_patch::Annotations, LookupError>> {
        Box::pin(async { Err(LookupError::Timeout(Duration::from_secs(2))) })
    }

    fn ready(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn an_unreadable_namespace_leaves_the_pods_own_word() {
    let config = weft_injector_patch::Config::new("ghcr.io/weft-mesh", "0.1.0");
    let injector = weft_injector_patch::Injector::new(config);
    let pod = |annotations: Value| {
        json!({"metadata": {"name": "p", "annotations": annotations},
               "spec": {"containers": [{"name": "app", "image": "app"}]}})
    };
    let review = |pod: Value| {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "operation": "CREATE", "namespace": "shop", "object": pod}
        }))
        .unwrap()
    };
    for (annotations, patched) in [
        (json!({}), false),
        (json!({"weft.dev/inject": "enabled"}), true),
    ] {
        let out =
            weft_injector::review::review(&review(pod(annotations)), &Unreachable, &injector).await;
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(out["response"]["patch"].is_string(), patched, "{out}");
        let warning = out["response"]["warnings"][0].as_str().unwrap();
        assert!(
            warning.contains("cannot read the annotations of namespace shop"),
            "{warning}"
        );
    }
}
