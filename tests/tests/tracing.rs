//! Tracing end to end: every sidecar exports spans over OTLP/gRPC to a receiver built from the
//! official opentelemetry-proto types, in a pod of its own. A client calls `chain` (an app in
//! web-v1 that forwards the trace headers and calls web-v2), so one request crosses four
//! proxies: client out, web-v1 in, web-v1 out, web-v2 in.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::MutexGuard,
    time::Duration,
};
use weft_cli_local::{
    Background, manifests, metric_sum,
    otlp::{self, Span, SpanKind},
    shop::{self, NAMESPACE, Options, Shop},
    traffic::{self, Request},
};
use weft_e2e::chain::Chain;

const CHAIN_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 30);
const CHAIN_PORT: u16 = 8087;
const CHAIN_HOST: &str = "chain.shop.svc.cluster.local:8087";
const PATIENCE: Duration = Duration::from_secs(10);

struct Fixture {
    chain: Chain,
    _app: Background,
    shop: Shop,
    _guard: MutexGuard<'static, ()>,
}

fn fixture(test: &str) -> Option<Fixture> {
    let options = Options {
        trace_sampling: Some(1.0),
        proxy_env: vec![("WEFT_PROXY_ACCESS_LOG".into(), "json".into())],
        ..Options::default()
    };
    let (guard, shop) = weft_e2e::shop(test, options)?;
    let chain = Chain::new(
        &format!("http://{}:{}/", shop::WEB_V2_IP, shop::PORT),
        "web-v2.shop.svc.cluster.local:8080",
    );
    let app = shop.v1.pod.spawn({
        let chain = chain.clone();
        move || chain.serve(CHAIN_PORT)
    });
    shop.v1
        .pod
        .wait_listening(&[CHAIN_PORT], PATIENCE)
        .unwrap_or_else(|e| panic!("{test}: chain app: {e}"));
    let v1 = (shop.v1.pod.name.as_str(), IpAddr::V4(shop.v1.pod.ip));
    let svc = manifests::service(NAMESPACE, "chain", CHAIN_IP.into(), CHAIN_PORT, &[v1]);
    shop.write_manifest("chain.yaml", &svc)
        .expect("write the chain Service");
    let f = Fixture {
        chain,
        _app: app,
        shop,
        _guard: guard,
    };
    // Until the controller has the Service, the client's sidecar has nowhere to send it.
    let deadline = std::time::Instant::now() + PATIENCE;
    while f.call(&[]).failures > 0 {
        assert!(std::time::Instant::now() < deadline, "chain never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    f.receiver().clear();
    Some(f)
}

impl Fixture {
    fn receiver(&self) -> &weft_cli_local::otlp::Receiver {
        self.shop.otlp.as_ref().expect("the shop traces")
    }

    /// One GET of `chain` from the client with `headers`.
    fn call(&self, headers: &[(&str, &str)]) -> traffic::Tally {
        let mut req = Request::get(format!("http://{CHAIN_IP}:{CHAIN_PORT}/chain"), "-")
            .header("host", CHAIN_HOST);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        traffic::tally(&self.shop.client.pod, &req, 1, 1)
    }

    /// The trace id of the last request the chain app received.
    fn last_trace_id(&self) -> String {
        let headers = self.chain.received().pop().expect("the app got a request");
        assert!(
            headers.contains_key("traceparent"),
            "the app got no traceparent: {headers:?}"
        );
        otlp::trace_id(&headers).expect("the traceparent has a trace id")
    }

    /// Waits for the spans of `trace_id` from all four hops.
    fn trace(&self, trace_id: &str) -> Vec<Span> {
        let of_trace = |spans: &[Span]| -> Vec<Span> {
            spans
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect()
        };
        let spans = self
            .receiver()
            .wait_for(|spans| of_trace(spans).len() >= 4, PATIENCE)
            .unwrap_or_else(|e| {
                let got: Vec<String> = of_trace(&self.receiver().spans())
                    .iter()
                    .map(|s| format!("{} {}", s.service_name().unwrap_or("?"), s.kind))
                    .collect();
                let counters = |m: String| {
                    let n = |name| metric_sum(&m, name, &[]);
                    (n("trace_spans_exported_total"), n("trace_spans_dropped_total"))
                };
                panic!(
                    "{e}; of this trace: {got:?}; exported/dropped: client {:?}, web-v1 {:?}, web-v2 {:?}\n{}",
                    counters(self.shop.client.metrics()),
                    counters(self.shop.v1.metrics()),
                    counters(self.shop.v2.metrics()),
                    self.logs()
                )
            });
        of_trace(&spans)
    }

    fn logs(&self) -> String {
        format!(
            "--- client proxy ---\n{}\n--- web-v1 proxy ---\n{}",
            self.shop.client.process.log(),
            self.shop.v1.process.log()
        )
    }
}

/// The span of `service` of `kind`.
fn find<'a>(spans: &'a [Span], service: &str, kind: SpanKind) -> &'a Span {
    spans
        .iter()
        .find(|s| s.service_name() == Some(service) && s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} span from {service} among {spans:#?}"))
}

fn attr<'a>(span: &'a Span, key: &str) -> &'a str {
    span.attribute_str(key)
        .unwrap_or_else(|| panic!("span {} has no {key}: {:#?}", span.name, span.attributes))
}

#[test]
fn one_request_is_one_trace_of_correctly_parented_spans_from_every_proxy() {
    let Some(f) = fixture("one_request_is_one_trace") else {
        return;
    };
    let tally = f.call(&[]);
    assert_eq!(tally.failures, 0, "{:?}", tally.errors);
    let spans = f.trace(&f.last_trace_id());
    assert_eq!(spans.len(), 4, "one span per hop: {spans:#?}");
    let trace = &spans[0].trace_id;
    assert!(
        spans.iter().all(|s| &s.trace_id == trace),
        "one trace: {spans:#?}"
    );

    let client_out = find(&spans, "client.shop", SpanKind::Client);
    let v1_in = find(&spans, "web-v1.shop", SpanKind::Server);
    let v1_out = find(&spans, "web-v1.shop", SpanKind::Client);
    let v2_in = find(&spans, "web-v2.shop", SpanKind::Server);
    assert_eq!(
        client_out.parent_span_id, None,
        "the client's proxy starts the trace"
    );
    assert_eq!(v1_in.parent_span_id.as_ref(), Some(&client_out.span_id));
    assert_eq!(v1_out.parent_span_id.as_ref(), Some(&v1_in.span_id));
    assert_eq!(v2_in.parent_span_id.as_ref(), Some(&v1_out.span_id));
    for (span, path) in [
        (client_out, "/chain"),
        (v1_in, "/chain"),
        (v1_out, "/"),
        (v2_in, "/"),
    ] {
        assert_eq!(attr(span, "http.request.method"), "GET");
        assert_eq!(attr(span, "url.path"), path);
        assert_eq!(span.attribute_int("http.response.status_code"), Some(200));
        assert_eq!(span.name, "GET");
        assert!(span.end_unix_nanos >= span.start_unix_nanos);
    }
    // Each child lies within its parent.
    for (parent, child) in [(client_out, v1_in), (v1_in, v1_out), (v1_out, v2_in)] {
        assert!(
            child.start_unix_nanos >= parent.start_unix_nanos
                && child.end_unix_nanos <= parent.end_unix_nanos,
            "{} is not within {}",
            child.name,
            parent.name
        );
    }
    assert_eq!(attr(client_out, "weft.direction"), "outbound");
    assert_eq!(attr(v1_in, "weft.direction"), "inbound");
    assert_eq!(
        attr(client_out, "server.address"),
        "chain.shop.svc.cluster.local"
    );
    assert_eq!(client_out.attribute_int("server.port"), Some(8087));
    assert_eq!(
        attr(client_out, "weft.dst_service"),
        "Service shop/chain:8087"
    );
    assert_eq!(attr(client_out, "weft.backend"), "shop/chain:8087");
    assert!(!attr(client_out, "weft.route").is_empty());
    let web_id = "web.shop.serviceaccount.identity.cluster.local";
    assert_eq!(attr(client_out, "weft.server_id"), web_id);
    assert_eq!(
        attr(v1_in, "weft.client_id"),
        "client.shop.serviceaccount.identity.cluster.local"
    );
    assert_eq!(attr(v2_in, "weft.client_id"), web_id);
    assert_eq!(
        attr(v1_in, "client.address"),
        f.shop.client.pod.ip.to_string()
    );
    for span in [client_out, v1_in, v1_out, v2_in] {
        let pod = span
            .resource
            .get("k8s.pod.name")
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            span.service_name().is_some_and(|s| s.starts_with(&pod)),
            "{:?}",
            span.resource
        );
        assert_eq!(
            span.resource
                .get("k8s.namespace.name")
                .map(ToString::to_string),
            Some("shop".to_string())
        );
    }
    // What web-v1's app received carried the web-v1 inbound span as its parent.
    let received = f.chain.received();
    let traceparent = received
        .last()
        .and_then(|h| h.get("traceparent"))
        .and_then(|v| v.to_str().ok())
        .expect("the app got a traceparent");
    assert_eq!(traceparent, format!("00-{trace}-{}-01", v1_in.span_id));
    // The access log line of each hop names the trace.
    for (sidecar, direction) in [(&f.shop.client, "outbound"), (&f.shop.v1, "inbound")] {
        let log = sidecar.process.log();
        let line = log
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON access log line"))
            .find(|v| v["trace_id"] == trace.as_str() && v["direction"] == direction)
            .unwrap_or_else(|| panic!("no {direction} access log line for {trace} in:\n{log}"));
        assert_eq!(line["uri"], "/chain");
        assert_eq!(line["status"], 200);
    }
    eprintln!(
        "{}",
        weft_cli_local::otlp::render(&weft_cli_local::otlp::traces(&spans)[0])
    );
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[test]
fn b3_and_w3c_callers_are_joined_and_an_unsampled_parent_makes_no_spans() {
    let Some(f) = fixture("b3_and_w3c_callers") else {
        return;
    };
    let single = format!("{TRACE}-{PARENT}-1");
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        ("b3 single", vec![("b3", single.as_str())]),
        (
            "b3 multi",
            vec![
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", PARENT),
                ("x-b3-sampled", "1"),
            ],
        ),
        (
            "traceparent",
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
        ),
    ];
    for (what, headers) in cases {
        f.receiver().clear();
        assert_eq!(f.call(&headers).failures, 0, "{what}");
        let spans = f.trace(TRACE);
        assert_eq!(spans.len(), 4, "{what}: {spans:#?}");
        let root = find(&spans, "client.shop", SpanKind::Client);
        assert_eq!(
            root.parent_span_id.as_deref(),
            Some(PARENT),
            "{what}: the caller's span is the parent"
        );
        // The app saw the updated context in the caller's own format too.
        let last = f.chain.received().pop().expect("a request");
        let v1_in = find(&spans, "web-v1.shop", SpanKind::Server);
        match what {
            "b3 single" => assert_eq!(
                last.get("b3").and_then(|v| v.to_str().ok()),
                Some(format!("{TRACE}-{}-1", v1_in.span_id).as_str())
            ),
            "b3 multi" => assert_eq!(
                last.get("x-b3-spanid").and_then(|v| v.to_str().ok()),
                Some(v1_in.span_id.as_str())
            ),
            _ => assert!(!last.contains_key("b3")),
        }
    }

    // Unsampled: the context goes on, no proxy records anything.
    f.receiver().clear();
    let unsampled = "00-11111111111111111111111111111111-2222222222222222-00";
    assert_eq!(f.call(&[("traceparent", unsampled)]).failures, 0);
    let got = f.chain.received().pop().expect("a request");
    let forwarded = got
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("the context reached the app");
    assert!(
        forwarded.starts_with("00-11111111111111111111111111111111-") && forwarded.ends_with("-00"),
        "{forwarded}"
    );
    // A sampled request afterwards shows export works; by then the unsampled one would be in.
    assert_eq!(f.call(&[]).failures, 0);
    f.trace(&f.last_trace_id());
    let spans = f.receiver().spans();
    let unsampled_spans: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == "11111111111111111111111111111111")
        .collect();
    assert!(
        unsampled_spans.is_empty(),
        "spans of an unsampled trace: {unsampled_spans:#?}"
    );
}

#[test]
fn with_the_collector_down_traffic_is_unaffected_and_drops_are_counted() {
    let Some(mut f) = fixture("with_the_collector_down") else {
        return;
    };
    let req = Request::get(format!("http://{CHAIN_IP}:{CHAIN_PORT}/chain"), "-")
        .header("host", CHAIN_HOST);
    let up = std::time::Instant::now();
    let before = traffic::tally(&f.shop.client.pod, &req, 500, 4);
    let up = up.elapsed();
    assert_eq!(before.failures, 0, "{:?}", before.errors);

    f.shop.otlp.as_mut().expect("tracing").stop();
    let down = std::time::Instant::now();
    let during = traffic::tally(&f.shop.client.pod, &req, 2000, 4);
    let down = down.elapsed();
    eprintln!("500 requests with the collector up: {up:?}; 2000 with it down: {down:?}");
    assert_eq!(during.failures, 0, "{:?}", during.errors);
    // Each proxy counts what it could not send; export is tried at least every 200 ms.
    let dropped = |metrics: String| metric_sum(&metrics, "trace_spans_dropped_total", &[]);
    weft_e2e::assert_eventually!(
        dropped(f.shop.client.metrics()) >= 1000.0 && dropped(f.shop.v2.metrics()) >= 1000.0,
        PATIENCE,
        "dropped spans: client {}, web-v2 {}",
        dropped(f.shop.client.metrics()),
        dropped(f.shop.v2.metrics())
    );

    // The collector is back: spans flow again.
    f.shop
        .otlp
        .as_mut()
        .expect("tracing")
        .resume()
        .expect("resume");
    assert_eq!(f.call(&[]).failures, 0);
    let spans = f.trace(&f.last_trace_id());
    assert_eq!(spans.len(), 4);
    let exported = metric_sum(&f.shop.client.metrics(), "trace_spans_exported_total", &[]);
    assert!(exported >= 500.0, "exported {exported}");
}
