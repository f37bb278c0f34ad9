//! The `weft-proxy` binary refuses bad configuration with a clear message and a non-zero exit.

use std::{net::TcpListener, process::Command, time::Duration};

fn proxy() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft-proxy"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

#[test]
fn bad_values_are_all_reported_and_exit_2() {
    let out = proxy()
        .env("WEFT_PROXY_DETECT_TIMEOUT", "soon")
        .env("WEFT_PROXY_OPAQUE_PORTS", "25,99999")
        .env("WEFT_PROXY_INBOUND_ADDR", "0.0.0.0")
        .env("WEFT_PROXY_BOGUS", "1")
        .output()
        .expect("run weft-proxy");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "invalid proxy configuration",
        "WEFT_PROXY_DETECT_TIMEOUT=\"soon\"",
        "\"99999\" is not a port",
        "WEFT_PROXY_INBOUND_ADDR=\"0.0.0.0\"",
        "WEFT_PROXY_BOGUS is not a Weft proxy setting",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn a_port_in_use_fails_start_up_with_its_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let out = proxy()
        .env("WEFT_PROXY_INBOUND_ADDR", "127.0.0.1:0")
        .env("WEFT_PROXY_OUTBOUND_ADDR", addr.to_string())
        .env("WEFT_PROXY_ADMIN_ADDR", "127.0.0.1:0")
        .output()
        .expect("run weft-proxy");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr} (outbound)")) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn starts_serves_admin_and_stops_on_shutdown() {
    // Find a free port for the admin server, then let the proxy take it.
    let admin = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let mut child = KillOnDrop(
        proxy()
            .env("WEFT_PROXY_INBOUND_ADDR", "127.0.0.1:0")
            .env("WEFT_PROXY_OUTBOUND_ADDR", "127.0.0.1:0")
            .env("WEFT_PROXY_ADMIN_ADDR", admin.to_string())
            .env("WEFT_PROXY_SHUTDOWN_GRACE", "5s")
            .spawn()
            .expect("spawn weft-proxy"),
    );
    let get = |method: &str, path: &str| -> Option<String> {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(admin).ok()?;
        write!(tcp, "{method} {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n").ok()?;
        let mut out = String::new();
        tcp.read_to_string(&mut out).ok()?;
        Some(out)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        match get("GET", "/ready") {
            Some(r) => break r,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            None => panic!("admin server never answered"),
        }
    };
    assert!(ready.starts_with("HTTP/1.0 200"), "{ready}");
    let metrics = get("GET", "/metrics").expect("metrics");
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "{metrics}"
    );
    assert!(
        get("GET", "/nope")
            .expect("404")
            .starts_with("HTTP/1.0 404")
    );
    assert!(
        get("GET", "/shutdown")
            .expect("405")
            .starts_with("HTTP/1.0 405")
    );
    assert!(
        get("POST", "/shutdown")
            .expect("shutdown")
            .starts_with("HTTP/1.0 200")
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "proxy did not stop after /shutdown"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// Kills the proxy if the test fails before it stops by itself.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
