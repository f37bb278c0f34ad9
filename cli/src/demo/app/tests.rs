//! `/checkout` against a backend on loopback: the trace headers go on and nothing else, the
//! answer carries the backend's and the trace id.

use super::{App, TRACE_ID};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
};
use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

fn app(backend: Option<Uri>) -> App {
    App {
        name: HeaderValue::from_static("web-v1"),
        body: Bytes::from_static(b"hello from web-v1\n"),
        flaky_rate: 0.0,
        slow: Duration::ZERO,
        backend,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                http::HeaderName::from_static(k),
                HeaderValue::from_static(v),
            )
        })
        .collect()
}

/// A backend on loopback that keeps the headers of each request and says hello.
async fn backend() -> (Uri, Arc<Mutex<Vec<HeaderMap>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port on loopback");
    let addr = listener.local_addr().expect("its address");
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let sink = sink.clone();
            let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                sink.lock()
                    .expect("not poisoned")
                    .push(req.headers().clone());
                async {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                        "hello from web-v2\n",
                    ))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc),
            );
        }
    });
    let uri = format!("http://{addr}/").parse().expect("a URI");
    (uri, seen)
}

#[tokio::test]
async fn checkout_passes_the_trace_headers_on_and_answers_with_the_backend() {
    let (uri, seen) = backend().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let incoming = headers(&[
        ("traceparent", traceparent),
        ("tracestate", "vendor=1"),
        ("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"),
        ("x-b3-sampled", "1"),
        ("authorization", "Bearer secret"),
        (
            "weft-client-id",
            "client.shop.serviceaccount.identity.cluster.local",
        ),
    ]);
    let rsp = app(Some(uri.clone())).handle("/checkout", &incoming).await;

    assert_eq!(rsp.status(), StatusCode::OK);
    assert_eq!(rsp.headers()[TRACE_ID], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(rsp.headers()[super::SERVED_BY], "web-v1");
    let body = rsp.into_body().collect().await.expect("a body").to_bytes();
    assert_eq!(
        body,
        format!("web-v1 checked out with {uri}: hello from web-v2\n")
    );
    let seen = seen.lock().expect("not poisoned").clone();
    let [sent] = seen.as_slice() else {
        panic!("one call to the backend: {seen:?}");
    };
    for name in ["traceparent", "tracestate", "b3", "x-b3-sampled"] {
        assert_eq!(sent.get(name), incoming.get(name), "{name}");
    }
    for name in ["authorization", "weft-client-id"] {
        assert!(sent.get(name).is_none(), "{name} is not a trace header");
    }
}

#[tokio::test]
async fn checkout_without_a_backend_or_reaching_none_fails() {
    let rsp = app(None).handle("/checkout", &HeaderMap::new()).await;
    assert_eq!(rsp.status(), StatusCode::NOT_FOUND);
    assert_eq!(rsp.headers()[TRACE_ID], "-");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let uri: Uri = format!("http://{}/", closed.local_addr().expect("its address"))
        .parse()
        .expect("a URI");
    drop(closed);
    let rsp = app(Some(uri.clone()))
        .handle("/checkout", &HeaderMap::new())
        .await;
    assert_eq!(rsp.status(), StatusCode::BAD_GATEWAY);
    let body = rsp.into_body().collect().await.expect("a body").to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.starts_with(&format!("web-v1: cannot call {uri}: ")),
        "{body}"
    );
}
