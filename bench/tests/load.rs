//! Runs the load generator against the bench server, both in this process.

use std::{num::NonZeroUsize, time::Duration};
use tokio::net::TcpListener;
use weft_bench::{LoadConfig, Rate};

async fn start_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(weft_bench::server::serve(listener, std::future::pending()));
    format!("http://{addr}/")
}

fn config(url: &str, rate: Rate, duration: Duration) -> LoadConfig {
    LoadConfig {
        target: url.parse().expect("server URL parses"),
        rate,
        duration,
        warmup: Duration::ZERO,
        connections: NonZeroUsize::new(4).expect("4 is not zero"),
        body_bytes: 0,
        timeout: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_every_scheduled_request() {
    let url = start_server().await;
    // 1000 req/s for 200ms schedules exactly 200 requests.
    let rate = "1000".parse().expect("valid rate");
    let report = weft_bench::run(config(&url, rate, Duration::from_millis(200)))
        .await
        .expect("run completes");
    assert_eq!(report.sent, 200, "{report}");
    assert_eq!(report.ok, 200, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.non_2xx, 0, "{report}");
    assert!(report.latency_ms.max.micros > 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_bodies_over_kept_alive_connections() {
    let url = start_server().await;
    let mut config = config(
        &url,
        "500".parse().expect("valid rate"),
        Duration::from_millis(100),
    );
    config.body_bytes = 64 * 1024;
    let report = weft_bench::run(config).await.expect("run completes");
    assert_eq!(
        (report.sent, report.ok, report.errors),
        (50, 50, 0),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_reports_what_it_sent() {
    let url = start_server().await;
    let report = weft_bench::run(config(&url, Rate::Max, Duration::from_millis(100)))
        .await
        .expect("run completes");
    assert!(report.sent > 0, "{report}");
    assert_eq!(report.ok, report.sent, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.target_rate, None);
}

#[tokio::test]
async fn silent_server_times_out_every_request() {
    // Accepts connections (the kernel does, from the backlog) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}/", listener.local_addr().expect("bound address"));
    let mut config = config(
        &url,
        "100".parse().expect("valid rate"),
        Duration::from_millis(100),
    );
    config.timeout = Duration::from_millis(200);
    let report = weft_bench::run(config).await.expect("run completes");
    assert_eq!(
        (report.sent, report.ok, report.errors),
        (10, 0, 10),
        "{report}"
    );
    assert_eq!(report.error_kinds.timeout, 10, "{report}");
    drop(listener);
}

#[tokio::test]
async fn unreachable_target_is_an_error() {
    // Bind then drop, so nothing listens on the port.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    drop(listener);
    let url = format!("http://{addr}/");
    let error = weft_bench::run(config(&url, Rate::Max, Duration::from_millis(100)))
        .await
        .expect_err("nothing listens there");
    let message = error.to_string();
    assert!(
        message.contains("none of the 4 connections could be opened"),
        "{message}"
    );
}
