//! Resilience end to end: a real controller reading routes and Service annotations, real
//! sidecars with mTLS, and faulty apps in the web pods that count every try they receive.
//!
//! Each test builds its own shop; they run one at a time because they count requests and
//! check timings that a saturated 2-core machine would blur.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{MutexGuard, atomic::Ordering},
    time::{Duration, Instant},
};
use weft_cli_local::{
    Background, Pod, manifests, metric_sum,
    shop::{NAMESPACE, Options, Shop},
    traffic::{self, Request, Traffic},
};
use weft_e2e::{
    assert_eventually,
    faulty::{Faulty, FaultyGrpc, SERVED_BY},
};
use weft_proto::{destination, identity};

/// The faulty HTTP apps' port in both web pods.
const HTTP: u16 = 8085;
/// The faulty gRPC apps' port.
const GRPC: u16 = 8095;

/// A shop with faulty apps in web-v1 and web-v2.
struct Fixture {
    v1: Faulty,
    v2: Faulty,
    g1: FaultyGrpc,
    g2: FaultyGrpc,
    _apps: Vec<Background>,
    shop: Shop,
    _guard: MutexGuard<'static, ()>,
}

fn fixture(test: &str) -> Option<Fixture> {
    let (guard, shop) = weft_e2e::shop(test, Options::default())?;
    let (v1, v2) = (Faulty::new("web-v1"), Faulty::new("web-v2"));
    let (g1, g2) = (FaultyGrpc::new("web-v1"), FaultyGrpc::new("web-v2"));
    let apps = vec![
        shop.v1.pod.spawn({
            let (h, g) = (v1.clone(), g1.clone());
            move || async move {
                tokio::join!(h.serve(HTTP), g.serve(GRPC));
            }
        }),
        shop.v2.pod.spawn({
            let (h, g) = (v2.clone(), g2.clone());
            move || async move {
                tokio::join!(h.serve(HTTP), g.serve(GRPC));
            }
        }),
    ];
    for pod in [&shop.v1.pod, &shop.v2.pod] {
        pod.wait_listening(&[HTTP, GRPC], Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{test}: faulty apps: {e}"));
    }
    Some(Fixture {
        v1,
        v2,
        g1,
        g2,
        _apps: apps,
        shop,
        _guard: guard,
    })
}

impl Fixture {
    /// Writes a Service `name` at `ip`:`port` over the web pods `pods` (`v1`, `v2`), with
    /// `annotations`, and `extra` documents (routes) into the controller's directory.
    fn service(
        &self,
        name: &str,
        ip: Ipv4Addr,
        port: u16,
        pods: &[&str],
        annotations: &[(&str, &str)],
        extra: &str,
    ) {
        let eps: Vec<(&str, IpAddr)> = pods
            .iter()
            .map(|p| match *p {
                "v1" => (
                    self.shop.v1.pod.name.as_str(),
                    IpAddr::V4(self.shop.v1.pod.ip),
                ),
                _ => (
                    self.shop.v2.pod.name.as_str(),
                    IpAddr::V4(self.shop.v2.pod.ip),
                ),
            })
            .collect();
        let svc = manifests::service_with_annotations(
            NAMESPACE,
            name,
            IpAddr::V4(ip),
            port,
            &eps,
            annotations,
        );
        let text = if extra.is_empty() {
            svc
        } else {
            format!("{svc}---\n{extra}")
        };
        self.shop
            .write_manifest(&format!("{name}.yaml"), &text)
            .expect("write manifest");
    }

    fn client(&self) -> &Pod {
        &self.shop.client.pod
    }

    /// Waits until `GET url` from the client gets `want` (the controller has the new objects
    /// and the client's sidecar follows them).
    fn wait_for(&self, url: &str, want: StatusCode) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, headers, _) = send(self.client(), Method::GET, url, Body::Empty);
            if status == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "GET {url} still answers {status} ({headers:?}), not {want}\n{}",
                self.shop.client.process.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client_metric(&self, name: &str, labels: &[&str]) -> f64 {
        metric_sum(&self.shop.client.metrics(), name, labels)
    }
}

/// A request body.
#[derive(Clone, Copy, Debug)]
enum Body {
    Empty,
    /// This many bytes with a `content-length`.
    Sized(usize),
    /// This many bytes streamed in 16 KiB chunks with no length.
    Chunked(usize),
}

/// Sends one request from `pod` on a new connection; the status, headers and how long the
/// answer took.
fn send(pod: &Pod, method: Method, url: &str, body: Body) -> (StatusCode, HeaderMap, Duration) {
    let url = url.to_string();
    pod.run(move || async move {
        let client: Client<_, BoxBody<Bytes, std::io::Error>> =
            Client::builder(TokioExecutor::new()).build_http();
        let body = match body {
            Body::Empty => Full::new(Bytes::new()).map_err(|e| match e {}).boxed(),
            Body::Sized(n) => Full::new(Bytes::from(vec![7u8; n]))
                .map_err(|e| match e {})
                .boxed(),
            Body::Chunked(n) => {
                let chunks = (0..n).step_by(16 * 1024).map(move |start| {
                    let len = (n - start).min(16 * 1024);
                    Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![7u8; len])))
                });
                BodyExt::boxed(StreamBody::new(futures_util::stream::iter(chunks)))
            }
        };
        let req = http::Request::builder()
            .method(method)
            .uri(&url)
            .body(body)
            .expect("a valid request");
        let start = Instant::now();
        let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
            .await
            .unwrap_or_else(|_| panic!("{url}: no answer in 10 s"))
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        let took = start.elapsed();
        let (parts, body) = rsp.into_parts();
        let _ = body.collect().await;
        (parts.status, parts.headers, took)
    })
}

fn proxy_error(headers: &HeaderMap) -> &str {
    headers
        .get("weft-proxy-error")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

const FLAKY_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 20);
const DOWN_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 21);

/// A route for `service` whose `path` rule retries 503s up to `attempts` times, and a rule
/// for everything else with no retries.
fn retry_route(service: &str, path: &str, attempts: u32) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {service}-retry, namespace: shop}}
spec:
  parentRefs: [{{group: \"\", kind: Service, name: {service}, port: {HTTP}}}]
  rules:
  - matches: [{{path: {{type: Exact, value: {path}}}}}]
    retry: {{attempts: {attempts}, codes: [503], backoff: 1ms}}
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
"
    )
}

#[test]
fn a_backend_failing_30_percent_succeeds_999_in_1000_within_the_retry_budget() {
    let Some(f) = fixture("a_backend_failing_30_percent") else {
        return;
    };
    // The window spans the whole run, so the budget bounds the run's total retries.
    f.service(
        "flaky",
        FLAKY_IP,
        HTTP,
        &["v1", "v2"],
        &[("weft.dev/retry-budget", "60%,10/s,60s")],
        &retry_route("flaky", "/flaky", 8),
    );
    let url = format!("http://{FLAKY_IP}:{HTTP}/flaky");
    f.wait_for(&format!("http://{FLAKY_IP}:{HTTP}/"), StatusCode::OK);

    let started = Instant::now();
    let tally = traffic::tally(f.client(), &Request::get(&url, SERVED_BY), 5000, 8);
    let took = started.elapsed();
    let tries = f.v1.counts.get("/flaky") + f.v2.counts.get("/flaky");
    let retries = tries - 5000;
    eprintln!(
        "5000 requests in {took:?}: {} ok, {} failed; the backends saw {tries} tries ({retries} retries)",
        tally.ok(),
        tally.failures
    );
    assert!(
        tally.ok() >= 4995,
        "only {} of 5000 succeeded: {:?}",
        tally.ok(),
        tally.errors
    );
    // 30% of tries fail: about 0.43 retries a request are needed.
    assert!(
        retries >= 1500,
        "too few retries for a 30% failure rate: {retries}"
    );
    let allowed = 0.6 * 5000.0 + 10.0 * (60.0 + took.as_secs_f64());
    assert!(
        (retries as f64) <= allowed,
        "{retries} retries exceed the budget's {allowed}"
    );
    let counted = f.client_metric("route_retry_total", &["route=\"shop/flaky-retry\""]);
    assert_eq!(
        counted, retries as f64,
        "route_retry_total counts every retry sent"
    );

    // A backend that always fails: without a budget 1000 requests would make 7000 tries; the
    // default-style budget (20%, no reserve) holds them to 1200.
    f.service(
        "down",
        DOWN_IP,
        HTTP,
        &["v1", "v2"],
        &[("weft.dev/retry-budget", "20%,0/s,60s")],
        &retry_route("down", "/fail", 6),
    );
    f.wait_for(&format!("http://{DOWN_IP}:{HTTP}/"), StatusCode::OK);
    let url = format!("http://{DOWN_IP}:{HTTP}/fail");
    let tally = traffic::tally(f.client(), &Request::get(&url, SERVED_BY), 1000, 8);
    assert_eq!(
        tally.failures, 1000,
        "every request fails: {:?}",
        tally.errors
    );
    let tries = f.v1.counts.get("/fail") + f.v2.counts.get("/fail");
    eprintln!("1000 requests to a dead backend made {tries} tries");
    assert!(
        tries <= 1200,
        "{tries} tries: retries passed 20% of 1000 requests"
    );
    assert!(
        tries >= 1150,
        "the budget's retries were not used: {tries} tries"
    );
    let exhausted = f.client_metric(
        "route_retry_budget_exhausted_total",
        &["route=\"shop/down-retry\""],
    );
    assert!(
        exhausted >= 500.0,
        "budget exhaustion counted {exhausted} times"
    );
}

const FAIL_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 22);

#[test]
fn post_bodies_over_64_kib_are_never_retried_and_posts_only_when_the_route_says_so() {
    let Some(f) = fixture("post_bodies_over_64_kib") else {
        return;
    };
    // `/fail` names POST: its POSTs may be retried. `/fail/any` takes any method.
    let route = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: fail-retry, namespace: shop}}
spec:
  parentRefs: [{{group: \"\", kind: Service, name: fail, port: {HTTP}}}]
  rules:
  - matches: [{{path: {{type: Exact, value: /fail}}, method: POST}}]
    retry: {{attempts: 3, codes: [503], backoff: 1ms}}
  - matches: [{{path: {{type: PathPrefix, value: /fail/any}}}}]
    retry: {{attempts: 3, codes: [503], backoff: 1ms}}
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
"
    );
    f.service("fail", FAIL_IP, HTTP, &["v1"], &[], &route);
    f.wait_for(&format!("http://{FAIL_IP}:{HTTP}/"), StatusCode::OK);
    let fail = format!("http://{FAIL_IP}:{HTTP}/fail");
    let any = format!("http://{FAIL_IP}:{HTTP}/fail/any");

    let mut expected = (0, 0);
    let cases = [
        (
            Method::POST,
            &fail,
            Body::Sized(1024),
            4,
            "a small POST the route retries",
        ),
        (
            Method::POST,
            &fail,
            Body::Chunked(60 * 1024),
            4,
            "a streamed 60 KiB POST",
        ),
        (
            Method::POST,
            &fail,
            Body::Sized(100 * 1024),
            1,
            "a 100 KiB POST with a length",
        ),
        (
            Method::POST,
            &fail,
            Body::Chunked(100 * 1024),
            1,
            "a streamed 100 KiB POST",
        ),
        (
            Method::POST,
            &fail,
            Body::Chunked(64 * 1024 + 1),
            1,
            "one byte over 64 KiB",
        ),
        (
            Method::POST,
            &any,
            Body::Sized(10),
            1,
            "a POST the route does not name",
        ),
        (Method::GET, &any, Body::Empty, 4, "a GET"),
        (Method::PUT, &any, Body::Sized(2048), 4, "an idempotent PUT"),
    ];
    for (method, url, body, tries, what) in cases {
        let (status, headers, _) = send(f.client(), method, url, body);
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {headers:?}"
        );
        let path = if url.ends_with("/any") {
            "/fail/any"
        } else {
            "/fail"
        };
        let slot = if path == "/fail" {
            &mut expected.0
        } else {
            &mut expected.1
        };
        *slot += tries;
        assert_eq!(
            f.v1.counts.get(path),
            *slot,
            "{what}: the backend should have seen {tries} tries"
        );
    }
    let sent: u64 = [
        1024 * 4,
        60 * 1024 * 4,
        100 * 1024,
        100 * 1024,
        64 * 1024 + 1,
    ]
    .iter()
    .sum();
    assert_eq!(
        f.v1.body_bytes.get("/fail"),
        sent,
        "every try carried the whole body"
    );
}

const SLOW_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 23);
const SLOW_ANNOTATED_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 24);
const EMPTY_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 28);

#[test]
fn a_500ms_route_timeout_answers_a_2s_backend_with_504_within_600ms_and_no_endpoints_503_after_the_queue_timeout()
 {
    let Some(f) = fixture("a_500ms_route_timeout") else {
        return;
    };
    let route = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: slow-timeout, namespace: shop}}
spec:
  parentRefs: [{{group: \"\", kind: Service, name: slow, port: {HTTP}}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /slow}}}}]
    timeouts: {{request: 500ms}}
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
"
    );
    f.service("slow", SLOW_IP, HTTP, &["v1"], &[], &route);
    // The same cut from a Service annotation alone.
    f.service(
        "slow-annotated",
        SLOW_ANNOTATED_IP,
        HTTP,
        &["v1"],
        &[("weft.dev/timeout-request", "300ms")],
        "",
    );
    f.wait_for(&format!("http://{SLOW_IP}:{HTTP}/"), StatusCode::OK);
    f.wait_for(
        &format!("http://{SLOW_ANNOTATED_IP}:{HTTP}/"),
        StatusCode::OK,
    );

    for (ip, limit, cap) in [(SLOW_IP, 500, 600), (SLOW_ANNOTATED_IP, 300, 400)] {
        for _ in 0..3 {
            let url = format!("http://{ip}:{HTTP}/slow/2000");
            let (status, headers, took) = send(f.client(), Method::GET, &url, Body::Empty);
            eprintln!("{url}: {status} after {took:?}");
            assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{headers:?}");
            assert_eq!(
                proxy_error(&headers),
                format!("request timed out after {limit}ms")
            );
            assert!(
                took >= Duration::from_millis(limit) && took <= Duration::from_millis(cap),
                "{url}: 504 after {took:?}, expected {limit}-{cap} ms"
            );
        }
        // Faster answers pass.
        let url = format!("http://{ip}:{HTTP}/slow/50");
        assert_eq!(
            send(f.client(), Method::GET, &url, Body::Empty).0,
            StatusCode::OK
        );
    }
    let timeouts = f.client_metric("route_timeout_total", &["timeout=\"request\""]);
    assert_eq!(timeouts, 6.0);

    // A Service with no endpoints: requests wait in the backend's queue for its fail-fast
    // timeout (3 s), then get 503.
    f.service("empty", EMPTY_IP, HTTP, &[], &[], "");
    let url = format!("http://{EMPTY_IP}:{HTTP}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, headers, took) = loop {
        let (status, headers, took) = send(f.client(), Method::GET, &url, Body::Empty);
        if proxy_error(&headers).contains("no endpoints") || Instant::now() > deadline {
            break (status, headers, took);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{headers:?}");
    assert!(
        proxy_error(&headers).ends_with("within 3s"),
        "{:?}",
        proxy_error(&headers)
    );
    assert!(
        (Duration::from_secs(3)..Duration::from_millis(3500)).contains(&took),
        "the queue failed fast after {took:?}"
    );
}

const EJECT_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 25);

#[test]
fn a_failing_endpoint_is_ejected_within_a_second_and_all_ejected_fails_fast() {
    let Some(f) = fixture("a_failing_endpoint_is_ejected") else {
        return;
    };
    f.service(
        "eject",
        EJECT_IP,
        HTTP,
        &["v1", "v2"],
        &[
            // One failure ejects: P2C alone already steers away from an endpoint after a
            // failure, so consecutive failures would come only now and then.
            ("weft.dev/failure-accrual", "consecutive"),
            ("weft.dev/failure-accrual-max-failures", "1"),
            ("weft.dev/failure-accrual-min-penalty", "30s"),
        ],
        "",
    );
    f.wait_for(&format!("http://{EJECT_IP}:{HTTP}/"), StatusCode::OK);
    let tried_v2 = f.v2.counts.get("/");

    f.v2.broken.store(true, Ordering::Release);
    let broke_at = Instant::now();
    let url = format!("http://{EJECT_IP}:{HTTP}/");
    let traffic = Traffic::start(
        f.client(),
        &Request::get(&url, SERVED_BY),
        2,
        Duration::from_millis(2),
    );
    std::thread::sleep(Duration::from_secs(3));
    let outcomes = traffic.outcomes();
    drop(traffic);
    let failures: Vec<Instant> = outcomes
        .iter()
        .filter(|(_, o)| o.is_err())
        .map(|(t, _)| *t)
        .collect();
    let last_failure = failures.iter().max().copied().unwrap_or(broke_at);
    let moved_after = last_failure.saturating_duration_since(broke_at);
    let after = outcomes
        .iter()
        .filter(|(t, _)| *t > last_failure)
        .collect::<Vec<_>>();
    eprintln!(
        "{} requests, {} failed; the last failure came {moved_after:?} after web-v2 broke; {} after it",
        outcomes.len(),
        failures.len(),
        after.len()
    );
    assert!(!failures.is_empty(), "web-v2 was never tried while broken");
    assert!(
        moved_after <= Duration::from_secs(1),
        "web-v2 kept failing requests for {moved_after:?}"
    );
    assert!(after.len() > 100, "too little traffic after the ejection");
    assert!(
        after.iter().all(|(_, o)| o.as_deref() == Ok("web-v1")),
        "after the ejection only web-v1 answers"
    );
    let v2_tries = f.v2.counts.get("/") - tried_v2;
    assert!(
        v2_tries <= 2,
        "web-v2 got {v2_tries} requests after it broke"
    );
    let ejections = f.client_metric("endpoint_ejections_total", &["dst_backend=\"shop/eject"]);
    assert!(
        ejections >= 1.0,
        "web-v2's ejection counted {ejections} times"
    );

    // Both broken: web-v1 now takes every request, fails, and is ejected like web-v2; then
    // requests fail fast without reaching either.
    f.v1.broken.store(true, Ordering::Release);
    let mut before_fast = 0;
    loop {
        let (status, headers, _) = send(f.client(), Method::GET, &url, Body::Empty);
        if proxy_error(&headers).contains("ejected") {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            break;
        }
        before_fast += 1;
        assert!(
            before_fast <= 10,
            "still no fail-fast after 10 failed requests: {headers:?}"
        );
    }
    let ejections = f.client_metric("endpoint_ejections_total", &["dst_backend=\"shop/eject"]);
    assert!(
        ejections >= 2.0,
        "both endpoints ejected, counted {ejections}"
    );
    assert!(
        before_fast <= 2,
        "{before_fast} requests failed before web-v1 was ejected too"
    );
    let v1_before = f.v1.counts.get("/");
    let v2_before = f.v2.counts.get("/");
    for _ in 0..20 {
        let (status, headers, took) = send(f.client(), Method::GET, &url, Body::Empty);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{headers:?}");
        assert!(proxy_error(&headers).contains("ejected"), "{headers:?}");
        assert!(
            took < Duration::from_millis(100),
            "a fail-fast 503 took {took:?}"
        );
    }
    assert_eq!(
        (f.v1.counts.get("/"), f.v2.counts.get("/")),
        (v1_before, v2_before),
        "an all-ejected backend sends nothing"
    );
    let failfast = f.client_metric("backend_failfast_total", &["reason=\"all_ejected\""]);
    assert!(failfast >= 21.0, "fail-fast answers counted: {failfast}");
}

const GRPC_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 26);
const GRPC_V2_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 27);

#[test]
fn a_grpc_route_by_method_retries_unavailable() {
    let Some(f) = fixture("a_grpc_route_by_method") else {
        return;
    };
    // Certify goes to web-v2 and is retried on UNAVAILABLE; everything else to web-v1.
    let route = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: grpc-certify
  namespace: shop
  annotations:
    weft.dev/retry-grpc: unavailable
    weft.dev/retry-limit: \"4\"
    weft.dev/timeout-request: 1s
spec:
  parentRefs: [{{group: \"\", kind: Service, name: grpc, port: {GRPC}}}]
  rules:
  - matches: [{{method: {{service: io.linkerd.proxy.identity.Identity, method: Certify}}}}]
    backendRefs: [{{name: grpc-v2, port: {GRPC}}}]
  - backendRefs: [{{name: grpc, port: {GRPC}}}]
"
    );
    f.service(
        "grpc",
        GRPC_IP,
        GRPC,
        &["v1"],
        &[("weft.dev/retry-budget", "100%,10/s")],
        &route,
    );
    f.service("grpc-v2", GRPC_V2_IP, GRPC, &["v2"], &[], "");
    let target = format!("http://{GRPC_IP}:{GRPC}");

    let outcome = f.client().run(move || async move {
        let channel = tonic::transport::Endpoint::from_shared(target)
            .expect("a valid URI")
            .connect_lazy();
        let mut certify = identity::identity_client::IdentityClient::new(channel.clone());
        let mut dst = destination::destination_client::DestinationClient::new(channel);
        let call = |id: String| identity::CertifyRequest {
            identity: id,
            ..Default::default()
        };
        // Wait for the route: the first answer from web-v2.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rsp = certify.certify(call("warm-up".into())).await;
            let by = rsp
                .as_ref()
                .ok()
                .and_then(|r| r.metadata().get(SERVED_BY).cloned());
            if by.is_some_and(|v| v == "web-v2") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the GRPCRoute never applied: {rsp:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut ok = 0;
        for i in 0..200 {
            if certify.certify(call(format!("fail-1-k{i}"))).await.is_ok() {
                ok += 1;
            }
        }
        let twice = certify.certify(call("fail-2-a".into())).await;
        let hopeless = certify.certify(call("fail-9-b".into())).await;
        let started = Instant::now();
        let slow = certify.certify(call("slow-3000".into())).await;
        let slow_took = started.elapsed();
        let get = dst
            .get(destination::GetDestination::default())
            .await
            .map(|r| r.metadata().get(SERVED_BY).cloned());
        let twice = twice.map(|r| r.metadata().get(SERVED_BY).cloned());
        (ok, twice, hopeless, slow, slow_took, get)
    });
    let (ok, twice, hopeless, slow, slow_took, get) = outcome;
    assert_eq!(ok, 200, "calls that fail once all succeed on a retry");
    for i in 0..200 {
        assert_eq!(f.g2.counts.get(&format!("k{i}")), 2, "call k{i}: one retry");
    }
    assert_eq!(
        twice
            .expect("two failures, then success")
            .and_then(|v| v.to_str().ok().map(String::from)),
        Some("web-v2".to_string())
    );
    assert_eq!(f.g2.counts.get("a"), 3);
    let status = hopeless.expect_err("nine failures outlast four retries");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(f.g2.counts.get("b"), 5, "the first try and four retries");
    let status = slow.expect_err("the route cuts a 3 s call");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.message(), "request timed out after 1s");
    assert!(
        (Duration::from_secs(1)..Duration::from_millis(1200)).contains(&slow_took),
        "DEADLINE_EXCEEDED after {slow_took:?}"
    );
    // The caller's own deadline (`grpc-timeout`), tighter than the route's. Sent with a
    // plain HTTP/2 client: tonic would also start a timer of its own from the header.
    let (headers, took) = grpc_call_with_timeout(f.client(), &format!("http://{GRPC_IP}:{GRPC}"));
    assert_eq!(
        headers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"4"[..]),
        "{headers:?}"
    );
    assert_eq!(proxy_error(&headers), "request timed out after 300ms");
    assert!(
        took < Duration::from_millis(500),
        "DEADLINE_EXCEEDED after {took:?}"
    );
    let get = get.expect("Destination/Get goes to web-v1");
    assert_eq!(
        get.and_then(|v| v.to_str().ok().map(String::from)),
        Some("web-v1".into())
    );
    assert_eq!(f.g1.counts.get("get"), 1);
    assert_eq!(
        f.g1.counts.get("a") + f.g1.counts.get("k0"),
        0,
        "no Certify reached web-v1"
    );
    assert_eventually!(
        f.client_metric("route_retry_total", &["route=\"shop/grpc-certify\""]) >= 206.0,
        Duration::from_secs(2),
        "route_retry_total counts the gRPC retries"
    );
}

/// `Identity/Certify` for `slow-3000` with `grpc-timeout: 300m`, over plain HTTP/2; the
/// response headers (a trailers-only answer carries `grpc-status` there) and how long it took.
fn grpc_call_with_timeout(pod: &Pod, target: &str) -> (HeaderMap, Duration) {
    let url = format!("{target}/io.linkerd.proxy.identity.Identity/Certify");
    pod.run(move || async move {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        // A length-prefixed CertifyRequest { identity: "slow-3000" } (field 1, 9 bytes).
        let mut msg = vec![0x0a, 9];
        msg.extend_from_slice(b"slow-3000");
        let mut frame = vec![0, 0, 0, 0, msg.len() as u8];
        frame.extend_from_slice(&msg);
        let req = http::Request::post(&url)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", "300m")
            .body(Full::new(Bytes::from(frame)))
            .expect("a valid request");
        let start = Instant::now();
        let rsp = client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        (rsp.headers().clone(), start.elapsed())
    })
}
