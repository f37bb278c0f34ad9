//! Runs the load generator against the bench server, both in this process.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
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
        new_connection_per_request: false,
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

/// A server that counts connections and answers one request on each, then closes it: what a
/// client that opens a connection per request needs, and a way to see that it did.
async fn start_counting_server() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}/", listener.local_addr().expect("bound address"));
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                assert!(
                    String::from_utf8_lossy(&head).contains("connection: close"),
                    "the client asks the server to close"
                );
                let response = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
                let _ = stream.write_all(response).await;
            });
        }
    });
    (url, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_for_every_request() {
    let (url, accepted) = start_counting_server().await;
    let mut config = config(
        &url,
        "500".parse().expect("valid rate"),
        Duration::from_millis(100),
    );
    config.new_connection_per_request = true;
    let report = weft_bench::run(config).await.expect("run completes");
    assert_eq!((report.sent, report.ok), (50, 50), "{report}");
    assert!(report.new_connection_per_request);
    // One test connection before the run, then one per request.
    assert_eq!(accepted.load(Ordering::Relaxed), 51, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_new_connections_against_the_bench_server() {
    let url = start_server().await;
    let mut config = config(&url, Rate::Max, Duration::from_millis(100));
    config.new_connection_per_request = true;
    config.body_bytes = 100;
    let report = weft_bench::run(config).await.expect("run completes");
    assert!(report.sent > 0, "{report}");
    assert_eq!(report.ok, report.sent, "{report}");
}

#[tokio::test]
async fn new_connections_to_a_closed_port_fail_before_the_run() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    drop(listener);
    let mut config = config(
        &format!("http://{addr}/"),
        Rate::Max,
        Duration::from_millis(100),
    );
    config.new_connection_per_request = true;
    let error = weft_bench::run(config)
        .await
        .expect_err("nothing listens there");
    let message = error.to_string();
    assert!(
        message.contains(&format!("cannot open a test connection to {addr}")),
        "{message}"
    );
}
