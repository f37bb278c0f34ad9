//! The receiver, driven by a real OTLP/gRPC client built from `opentelemetry-proto`; the tree
//! building and rendering are in `tree`, serving inside a pod in `pod`, the trace headers
//! apps forward in `headers`.

use super::{Receiver, ReceiverError, SpanKind, StatusCode, Value};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::SpanKind as Kind, status},
};
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};
use tonic::transport::{Channel, Endpoint};

mod headers;
mod pod;
mod relay;
mod tree;

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const TRACE_HEX: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const T0: u64 = 1_700_000_000_000_000_000;
const WAIT: Duration = Duration::from_secs(10);

/// An OTLP/gRPC client on a runtime of its own, with one channel kept across calls as an
/// exporter keeps it.
struct Exporter {
    runtime: tokio::runtime::Runtime,
    client: TraceServiceClient<Channel>,
}

impl Exporter {
    fn new(addr: SocketAddr) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("a valid endpoint");
        let channel = runtime.block_on(async { endpoint.connect_lazy() });
        Self {
            runtime,
            client: TraceServiceClient::new(channel),
        }
    }

    fn export(&mut self, spans: Vec<ResourceSpans>) -> Result<(), tonic::Status> {
        self.export_within(spans, None)
    }

    /// Exports with a `grpc-timeout` of `timeout`, if given.
    fn export_within(
        &mut self,
        resource_spans: Vec<ResourceSpans>,
        timeout: Option<Duration>,
    ) -> Result<(), tonic::Status> {
        let mut request = tonic::Request::new(ExportTraceServiceRequest { resource_spans });
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        self.runtime
            .block_on(self.client.export(request))
            .map(|_| ())
    }
}

fn start() -> Receiver {
    Receiver::start(([127, 0, 0, 1], 0).into()).expect("the receiver starts on loopback")
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_string()))
}

/// Span `id` of [`TRACE`] (ids are eight bytes `id`), child of `parent`, `start_us` after
/// [`T0`] and lasting `micros`.
fn span(id: u8, parent: Option<u8>, kind: Kind, start_us: u64, micros: u64) -> Span {
    Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("span {id}"),
        kind: kind as i32,
        start_time_unix_nano: T0 + start_us * 1000,
        end_time_unix_nano: T0 + (start_us + micros) * 1000,
        ..Default::default()
    }
}

fn resource(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![text("service.name", service), text("weft.pod", "p")],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "weft-proxy".to_string(),
                version: "0.1.0".to_string(),
                ..Default::default()
            }),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn keeps_each_span_with_hex_ids_its_parent_kind_and_resource() {
    let receiver = start();
    let mut client_span = span(0x01, None, Kind::Client, 0, 2310);
    client_span.attributes = vec![
        text("http.request.method", "GET"),
        kv("http.response.status_code", any_value::Value::IntValue(200)),
        kv("retried", any_value::Value::BoolValue(false)),
        kv("weight", any_value::Value::DoubleValue(0.5)),
        kv("raw", any_value::Value::BytesValue(vec![0xde, 0xad])),
        kv(
            "list",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(any_value::Value::StringValue("a".to_string())),
                }],
            }),
        ),
        kv(
            "map",
            any_value::Value::KvlistValue(KeyValueList {
                values: vec![text("k", "v")],
            }),
        ),
        KeyValue {
            key: "empty".to_string(),
            value: None,
            ..Default::default()
        },
    ];
    let mut server_span = span(0x02, Some(0x01), Kind::Server, 500, 1800);
    server_span.status = Some(Status {
        message: "upstream reset".to_string(),
        code: status::StatusCode::Error as i32,
    });
    let mut exporter = Exporter::new(receiver.addr());
    exporter
        .export(vec![
            resource("client.shop", vec![client_span]),
            resource("web-v1.shop", vec![server_span]),
        ])
        .expect("the export is accepted");

    assert_eq!(receiver.requests(), 1);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let (client, server) = (&spans[0], &spans[1]);
    assert_eq!(client.trace_id, TRACE_HEX);
    assert_eq!(client.span_id, "0101010101010101");
    assert_eq!(client.parent_span_id, None);
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(client.name, "span 1");
    assert_eq!(client.service_name(), Some("client.shop"));
    assert_eq!(client.resource["weft.pod"], Value::String("p".to_string()));
    assert_eq!(
        (client.scope.name.as_str(), client.scope.version.as_str()),
        ("weft-proxy", "0.1.0")
    );
    assert_eq!(client.start_unix_nanos, T0);
    assert_eq!(client.duration(), Duration::from_micros(2310));
    assert_eq!(client.attribute_str("http.request.method"), Some("GET"));
    assert_eq!(client.attribute_int("http.response.status_code"), Some(200));
    let attr = |key: &str| client.attributes[key].to_string();
    assert_eq!(
        [attr("retried"), attr("weight"), attr("raw"), attr("list")],
        ["false", "0.5", "dead", "[a]"]
    );
    assert_eq!(
        client.attributes["map"],
        Value::Map(BTreeMap::from([(
            "k".to_string(),
            Value::String("v".to_string())
        )]))
    );
    assert_eq!(client.attributes["empty"], Value::Empty);
    assert_eq!(client.status.code, StatusCode::Unset);

    assert_eq!(server.trace_id, TRACE_HEX);
    assert_eq!(server.parent_span_id.as_deref(), Some("0101010101010101"));
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.service_name(), Some("web-v1.shop"));
    assert_eq!(server.status.code, StatusCode::Error);
    assert_eq!(server.status.message, "upstream reset");
}

#[test]
fn wait_for_wakes_on_exports_and_times_out_with_what_it_has() {
    let receiver = start();
    let err = receiver
        .wait_for(|spans| !spans.is_empty(), Duration::from_millis(50))
        .expect_err("nothing was exported");
    assert_eq!((err.spans, err.requests), (0, 0));
    assert!(
        err.to_string().contains(&receiver.addr().to_string()),
        "{err}"
    );

    let addr = receiver.addr();
    let sender = std::thread::spawn(move || {
        let mut exporter = Exporter::new(addr);
        for id in 1..=3 {
            let spans = vec![span(id, None, Kind::Server, 0, 10)];
            exporter.export(vec![resource("web", spans)])?;
        }
        Ok::<_, tonic::Status>(())
    });
    let spans = receiver
        .wait_for(|spans| spans.len() >= 3, WAIT)
        .expect("three spans arrive");
    let ids: Vec<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(
        ids,
        ["0101010101010101", "0202020202020202", "0303030303030303"]
    );
    sender
        .join()
        .expect("no panic")
        .expect("every export is accepted");
    assert_eq!(
        receiver.wait_for_requests(3, WAIT).expect("three exports"),
        3
    );

    receiver.clear();
    assert!(receiver.spans().is_empty());
    assert_eq!(receiver.requests(), 0);
}

#[test]
fn stop_refuses_exports_and_resume_serves_on_the_same_address() {
    let mut receiver = start();
    let addr = receiver.addr();
    let mut exporter = Exporter::new(addr);
    let batch = || vec![resource("web", vec![span(1, None, Kind::Server, 0, 10)])];
    exporter.export(batch()).expect("accepted while serving");

    receiver.stop();
    assert!(!receiver.is_serving());
    // The open connection was closed under the channel: its next export fails, however the
    // client notices (a broken pipe, or a refused reconnect).
    exporter
        .export(batch())
        .expect_err("the open connection is gone");
    let err = Exporter::new(addr)
        .export(batch())
        .expect_err("refused while stopped");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    let refused = std::net::TcpStream::connect(addr).expect_err("nothing listens");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        receiver.spans().len(),
        1,
        "what was received survives a stop"
    );
    receiver.stop();

    receiver.resume().expect("serves again");
    assert!(receiver.is_serving());
    assert_eq!(receiver.addr(), addr);
    exporter
        .export(batch())
        .expect("the same channel reconnects");
    Exporter::new(addr)
        .export(batch())
        .expect("a new client connects");
    assert_eq!(receiver.spans().len(), 3);
    assert_eq!(receiver.requests(), 3);
}

#[test]
fn stop_closes_connections_with_exports_in_flight() {
    let mut receiver = start();
    receiver.set_delay(Duration::from_secs(30));
    let addr = receiver.addr();
    let started = Instant::now();
    let in_flight = std::thread::spawn(move || {
        let spans = vec![span(1, None, Kind::Server, 0, 10)];
        Exporter::new(addr).export(vec![resource("web", spans)])
    });
    receiver
        .wait_for_requests(1, WAIT)
        .expect("the export arrives");
    receiver.stop();
    let result = in_flight.join().expect("no panic");
    assert!(result.is_err(), "an export cut by stop fails: {result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stop did not wait for the delay"
    );
    assert!(receiver.spans().is_empty());
}

#[test]
fn slow_mode_delays_each_answer_and_keeps_only_what_it_answered() {
    const DELAY: Duration = Duration::from_millis(800);
    let receiver = start();
    let mut exporter = Exporter::new(receiver.addr());
    let batch = |id| vec![resource("web", vec![span(id, None, Kind::Server, 0, 10)])];
    receiver.set_delay(DELAY);

    let started = Instant::now();
    exporter
        .export(batch(1))
        .expect("a slow answer is still an answer");
    assert!(
        started.elapsed() >= DELAY,
        "answered after {:?}",
        started.elapsed()
    );

    let err = exporter
        .export_within(batch(2), Some(Duration::from_millis(50)))
        .expect_err("the client gives up before the answer");
    assert!(
        matches!(
            err.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{err:?}"
    );
    assert_eq!(
        receiver.requests(),
        2,
        "a request given up is still counted"
    );
    // Its handler was dropped with the call: nothing shows up even after the delay.
    let late = receiver.wait_for(|spans| spans.len() > 1, DELAY + Duration::from_millis(200));
    assert!(late.is_err(), "an export given up on was kept: {late:?}");

    receiver.set_delay(Duration::ZERO);
    let started = Instant::now();
    exporter.export(batch(3)).expect("accepted");
    assert!(
        started.elapsed() < DELAY,
        "still slow: {:?}",
        started.elapsed()
    );
    let ids: Vec<String> = receiver.spans().into_iter().map(|s| s.span_id).collect();
    assert_eq!(ids, ["0101010101010101", "0303030303030303"]);
}

#[test]
fn an_address_in_use_is_an_error_that_names_it() {
    let first = start();
    let err = Receiver::start(first.addr()).expect_err("the port is taken");
    assert!(
        matches!(err, ReceiverError::Bind { addr, .. } if addr == first.addr()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&first.addr().to_string()), "{message}");
    assert!(
        message.contains("the caller's network namespace"),
        "{message}"
    );
}

#[test]
fn endpoint_is_loopback_for_an_unspecified_address() {
    let receiver = Receiver::start(([0, 0, 0, 0], 0).into()).expect("starts on every address");
    let port = receiver.addr().port();
    assert_ne!(port, 0);
    assert_eq!(receiver.endpoint(), format!("http://127.0.0.1:{port}"));
    Exporter::new(receiver.addr())
        .export(vec![resource(
            "web",
            vec![span(1, None, Kind::Server, 0, 10)],
        )])
        .expect("reached on loopback");
}

#[test]
fn proxy_env_points_a_proxy_at_the_receiver_with_its_sampling() {
    let receiver = start();
    assert_eq!(
        receiver.proxy_env(0.25),
        [
            ("WEFT_PROXY_OTLP_ADDR".into(), receiver.addr().to_string()),
            ("WEFT_PROXY_TRACE_SAMPLING".into(), "0.25".into()),
        ]
    );
}
