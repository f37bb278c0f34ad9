//! The wait against a real listener that is not ready, then ready; and against nothing.

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use weft_injector_await::wait_ready;

#[test]
fn waits_until_ready() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut buf = [0u8; 512];
            let n = conn.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /ready HTTP/1.0\r\n"));
            let status = match count.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => "503 Service Unavailable",
                _ => "200 OK",
            };
            let _ = conn
                .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes());
        }
    });
    wait_ready(addr, Duration::from_secs(10), Duration::from_millis(10)).unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 3);
}

#[test]
fn gives_up_after_the_timeout() {
    // A port nothing listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = wait_ready(addr, Duration::from_millis(300), Duration::from_millis(50)).unwrap_err();
    assert!(err.waited >= Duration::from_millis(300));
    assert!(err.to_string().contains("not ready"), "{err}");
}
