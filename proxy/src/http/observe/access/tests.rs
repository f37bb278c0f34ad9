use super::*;
use crate::http::observe::ConnInfo;
use http_body_util::{Either, Full};
use std::{sync::Arc, time::UNIX_EPOCH};

fn conn(direction: Direction) -> ConnInfo {
    ConnInfo {
        direction,
        peer: "10.42.0.3:51234".parse().expect("addr"),
        target: "10.43.0.10:8080".parse().expect("addr"),
        client_id: (direction == Direction::Inbound)
            .then(|| Arc::from("client.shop.serviceaccount.identity.cluster.local")),
    }
}

fn line(direction: Direction) -> Line {
    let req = Request::post("/orders?id=7")
        .header("host", "web.shop.svc.cluster.local:8080")
        .header("user-agent", "curl/8.5")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(())
        .expect("request");
    // 2026-12-06T13:55:36Z
    let at = UNIX_EPOCH + Duration::from_secs(1_796_565_336);
    let mut rsp: Response<ProxyBody> = Response::new(Either::Right(Full::new(Default::default())));
    *rsp.status_mut() = http::StatusCode::CREATED;
    rsp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, 42.into());
    let notes = Notes {
        route: Some("shop/orders".into()),
        backend: Some("shop/web-v2:8080".into()),
        endpoint: Some("10.42.0.7:8080".parse().expect("addr")),
        server_id: Some("web.shop.serviceaccount.identity.cluster.local".into()),
        retries: 1,
        ..Notes::default()
    };
    Line::of(&req, &conn(direction), at).finish(Some(&rsp), &notes, Duration::from_micros(1234))
}

#[test]
fn json_lines_carry_the_request_its_outcome_and_what_the_proxy_chose() {
    let text = line(Direction::Outbound).json();
    assert!(text.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
    assert_eq!(v["timestamp"], "2026-12-06T13:55:36Z");
    assert_eq!(v["direction"], "outbound");
    assert_eq!(v["client"], "10.42.0.3:51234");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["uri"], "/orders?id=7");
    assert_eq!(v["protocol"], "HTTP/1.1");
    assert_eq!(v["host"], "web.shop.svc.cluster.local:8080");
    assert_eq!(v["status"], 201);
    assert_eq!(v["bytes"], 42);
    assert_eq!(v["duration_us"], 1234);
    assert_eq!(v["route"], "shop/orders");
    assert_eq!(v["backend"], "shop/web-v2:8080");
    assert_eq!(v["endpoint"], "10.42.0.7:8080");
    assert_eq!(v["retries"], 1);
    assert_eq!(
        v["server_id"],
        "web.shop.serviceaccount.identity.cluster.local"
    );
    assert_eq!(v["client_id"], serde_json::Value::Null);
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn apache_lines_are_combined_format_with_the_duration() {
    assert_eq!(
        line(Direction::Inbound).apache(),
        "10.42.0.3 - - [06/Dec/2026:13:55:36 +0000] \"POST /orders?id=7 HTTP/1.1\" 201 42 \"-\" \"curl/8.5\" 1234\n"
    );
}

#[test]
fn no_response_is_status_zero_and_unknown_sizes_are_dashes() {
    let req = Request::get("/").body(()).expect("request");
    let l = Line::of(&req, &conn(Direction::Inbound), UNIX_EPOCH).finish(
        None,
        &Notes::default(),
        Duration::ZERO,
    );
    assert_eq!(
        l.apache(),
        "10.42.0.3 - - [01/Jan/1970:00:00:00 +0000] \"GET / HTTP/1.1\" 0 - \"-\" \"-\" 0\n"
    );
    let v: serde_json::Value = serde_json::from_str(&l.json()).expect("json");
    assert_eq!(
        v["client_id"],
        "client.shop.serviceaccount.identity.cluster.local"
    );
    assert_eq!(v["trace_id"], serde_json::Value::Null);
    assert_eq!(v["bytes"], serde_json::Value::Null);
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let (tx, rx) = mpsc::sync_channel(1);
    let dropped = Counter::default();
    let logger = AccessLogger {
        format: AccessLog::Json,
        tx,
        dropped: dropped.clone(),
    };
    logger.write(line(Direction::Outbound));
    logger.write(line(Direction::Outbound));
    logger.write(line(Direction::Outbound));
    assert_eq!(dropped.get(), 2);
    assert!(
        rx.try_recv()
            .expect("the first line")
            .contains("\"shop/orders\"")
    );
}
