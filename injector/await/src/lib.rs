//! `weft-await`: waits until the proxy's `/ready` answers 200. The injector runs it as the
//! proxy container's `postStart` hook when native sidecars are off: the kubelet starts the
//! next container (the app) only when the hook returns, so the app never starts before its
//! proxy. Plain HTTP/1.0 over std, since it runs inside the minimal proxy image.

#![forbid(unsafe_code)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

/// Why the wait ended without the proxy being ready.
#[derive(Debug)]
pub struct NotReady {
    /// The last thing seen: a status line or a connection error.
    pub last: String,
    /// How long it waited.
    pub waited: Duration,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the proxy was not ready after {:?}; last: {}",
            self.waited, self.last
        )
    }
}

impl std::error::Error for NotReady {}

/// Asks `GET /ready` at `addr` every `every` until it answers 200 or `timeout` passes.
pub fn wait_ready(
    addr: SocketAddr,
    timeout: Duration,
    every: Duration,
) -> Result<Duration, NotReady> {
    let start = Instant::now();
    loop {
        let last = match probe(addr, every.max(Duration::from_millis(100))) {
            Ok(status) if status.split_whitespace().nth(1) == Some("200") => {
                return Ok(start.elapsed());
            }
            Ok(status) => status,
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= timeout {
            return Err(NotReady {
                last,
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(every);
    }
}

/// One request; the response's status line.
fn probe(addr: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    conn.write_all(b"GET /ready HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}
