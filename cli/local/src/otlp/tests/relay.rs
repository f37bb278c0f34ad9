//! Relaying a receiver's exports to a second receiver, as the demo relays to Jaeger; a
//! collector that is down or failing; collector addresses.

use super::{Exporter, resource, span, start};
use crate::otlp::{CollectorAddr, RelayError, Relayed, relay};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, span::SpanKind as Kind},
};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(5);

fn addr_of(receiver: &crate::otlp::Receiver) -> CollectorAddr {
    receiver
        .addr()
        .to_string()
        .parse()
        .expect("a receiver's address is a collector address")
}

/// `n` server spans of service `web`, ids from `first`.
fn many(first: u8, n: u8) -> Vec<ResourceSpans> {
    let spans = (0..n)
        .map(|i| span(first.wrapping_add(i), None, Kind::Server, 0, 10))
        .collect();
    vec![resource("web", spans)]
}

#[test]
fn relays_every_export_unchanged_to_another_receiver() {
    let (first, second) = (start(), start());
    let mut exporter = Exporter::new(first.addr());
    let sent = [
        vec![
            resource("client.shop", vec![span(1, None, Kind::Client, 0, 100)]),
            resource("web-v1.shop", vec![span(2, Some(1), Kind::Server, 10, 80)]),
        ],
        vec![resource(
            "web-v1.shop",
            vec![span(3, Some(2), Kind::Client, 20, 50)],
        )],
        vec![resource(
            "web-v2.shop",
            vec![span(4, Some(3), Kind::Server, 30, 30)],
        )],
    ];
    for resource_spans in &sent {
        exporter
            .export(resource_spans.clone())
            .expect("the export is accepted");
    }
    let raw = first.raw_requests();
    let expected: Vec<ExportTraceServiceRequest> = sent
        .iter()
        .map(|resource_spans| ExportTraceServiceRequest {
            resource_spans: resource_spans.clone(),
        })
        .collect();
    assert_eq!(raw, expected, "every export is kept as it was sent");

    let relayed = relay(&raw, &addr_of(&second), TIMEOUT).expect("the relay is accepted");
    assert_eq!(
        relayed,
        Relayed {
            spans: 4,
            exports: 1
        }
    );
    assert_eq!(second.requests(), 1);
    assert_eq!(
        second.spans(),
        first.spans(),
        "the same spans, with their resources, in the same order"
    );

    first.clear();
    assert!(first.raw_requests().is_empty(), "clear forgets exports too");
}

#[test]
fn relays_in_exports_of_at_most_512_spans() {
    let (first, second) = (start(), start());
    let mut exporter = Exporter::new(first.addr());
    for i in 0u8..3 {
        exporter
            .export(many(i.wrapping_mul(200), 200))
            .expect("the export is accepted");
    }
    exporter
        .export(vec![resource("idle", vec![])])
        .expect("an export without spans is accepted");

    let relayed = relay(&first.raw_requests(), &addr_of(&second), TIMEOUT).expect("relayed");
    // 200 + 200 fit in one export, a third 200 would not; the empty export is not sent.
    assert_eq!(
        relayed,
        Relayed {
            spans: 600,
            exports: 2
        }
    );
    assert_eq!(second.requests(), 2);
    assert_eq!(second.spans(), first.spans());
    assert_eq!(
        relay(&[], &addr_of(&second), TIMEOUT).expect("nothing to send"),
        Relayed::default()
    );
}

#[test]
fn an_unreachable_collector_is_an_error_that_names_it_and_why() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("its address");
    drop(listener);
    let to: CollectorAddr = addr.to_string().parse().expect("an address");
    let started = Instant::now();
    let err = relay(&[], &to, TIMEOUT).expect_err("nothing listens there");
    assert!(started.elapsed() < TIMEOUT, "a refusal is not a timeout");
    assert!(matches!(err, RelayError::Unreachable { .. }), "{err:?}");
    let message = err.to_string().to_lowercase();
    assert!(message.contains(&format!("http://{addr}")), "{message}");
    assert!(message.contains("refused"), "{message}");
}

#[test]
fn a_failed_export_is_an_error_with_what_was_relayed_before() {
    let (first, second) = (start(), start());
    Exporter::new(first.addr())
        .export(many(0, 3))
        .expect("the export is accepted");
    second.set_delay(Duration::from_secs(2));
    let err = relay(
        &first.raw_requests(),
        &addr_of(&second),
        Duration::from_millis(200),
    )
    .expect_err("the collector answers too late");
    let RelayError::Failed { relayed, code, .. } = &err else {
        panic!("not a failed export: {err:?}");
    };
    assert_eq!(*relayed, Relayed::default());
    assert!(
        matches!(code, tonic::Code::DeadlineExceeded | tonic::Code::Cancelled),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("after 0 spans were relayed"),
        "{err}"
    );
}

#[test]
fn collector_addresses_are_host_and_port_over_plain_http() {
    for (text, uri) in [
        ("127.0.0.1:4317", "http://127.0.0.1:4317"),
        (
            "http://jaeger.weft-system:4317",
            "http://jaeger.weft-system:4317",
        ),
        ("localhost:4317/", "http://localhost:4317"),
        ("[::1]:4317", "http://[::1]:4317"),
    ] {
        let addr: CollectorAddr = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(addr.to_string(), uri);
    }
    for (text, why) in [
        ("https://jaeger:4317", "TLS"),
        ("jaeger", "no port"),
        (":4317", "no host"),
        ("jaeger:0", "port"),
        ("jaeger:99999", "port"),
        ("http://jaeger:4317/v1/traces", "port"),
        ("user@jaeger:4317", "no host"),
    ] {
        let err = text
            .parse::<CollectorAddr>()
            .expect_err(&format!("{text} is refused"));
        let message = err.to_string();
        assert!(message.contains(why), "{text}: {message}");
        assert!(message.contains("expected HOST:PORT"), "{message}");
    }
}
