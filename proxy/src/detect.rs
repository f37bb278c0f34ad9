//! Protocol detection on a connection's first bytes.

use bytes::{Bytes, BytesMut};
use std::{io, time::Duration};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What a client speaks, as far as the proxy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// An HTTP/1.0 or HTTP/1.1 request line.
    Http1,
    /// The HTTP/2 prior-knowledge connection preface.
    Http2,
    /// A TLS ClientHello record.
    Tls,
    /// Anything else, including silence until the detect timeout.
    Opaque,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An HTTP/1 request line longer than this is treated as opaque data.
const MAX_DETECT: usize = 8 * 1024;

/// Reads until the protocol is known, the client stops sending for `timeout`, or it closes.
/// Returns the protocol and every byte read, which must be replayed to the next hop.
pub async fn detect<I: AsyncRead + Unpin>(
    io: &mut I,
    timeout: Duration,
) -> io::Result<(Protocol, Bytes)> {
    let mut buf = BytesMut::with_capacity(MAX_DETECT);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let read = tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await;
        match read {
            // Silence: a server-speaks-first protocol on a port not marked opaque.
            Err(_elapsed) => return Ok((Protocol::Opaque, buf.freeze())),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(0)) => {
                let proto = classify(&buf).unwrap_or(Protocol::Opaque);
                return Ok((proto, buf.freeze()));
            }
            Ok(Ok(_)) => {
                if let Some(proto) = classify(&buf) {
                    return Ok((proto, buf.freeze()));
                }
                if buf.len() >= MAX_DETECT {
                    return Ok((Protocol::Opaque, buf.freeze()));
                }
            }
        }
    }
}

/// Classifies a prefix, or `None` when more bytes are needed to decide.
pub fn classify(buf: &[u8]) -> Option<Protocol> {
    if buf.is_empty() {
        return None;
    }
    let n = buf.len().min(H2_PREFACE.len());
    if buf[..n] == H2_PREFACE[..n] {
        return (buf.len() >= H2_PREFACE.len()).then_some(Protocol::Http2);
    }
    if buf[0] == 0x16 {
        // TLS handshake record: content type 22, version 3.x.
        if buf.len() < 3 {
            return None;
        }
        return Some(if buf[1] == 3 && buf[2] <= 4 {
            Protocol::Tls
        } else {
            Protocol::Opaque
        });
    }
    http1(buf)
}

/// `METHOD SP request-target SP HTTP/1.x CRLF`, checked as far as the bytes go.
fn http1(buf: &[u8]) -> Option<Protocol> {
    let method_end = match buf.iter().position(|&b| b == b' ') {
        Some(i) => i,
        None if buf.iter().all(|b| is_tchar(*b)) => return None,
        None => return Some(Protocol::Opaque),
    };
    if method_end == 0 || !buf[..method_end].iter().all(|b| is_tchar(*b)) {
        return Some(Protocol::Opaque);
    }
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = &buf[..line_end];
    let is_http1 = line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0");
    Some(if is_http1 && line_end > method_end + 9 {
        Protocol::Http1
    } else {
        Protocol::Opaque
    })
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn classifies_prefixes() {
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Some(Protocol::Http1)
        );
        assert_eq!(classify(b"POST /x?y=1 HTTP/1.0\r\n"), Some(Protocol::Http1));
        assert_eq!(classify(b"GET / HT"), None);
        assert_eq!(classify(b"GET"), None);
        assert_eq!(classify(H2_PREFACE), Some(Protocol::Http2));
        assert_eq!(classify(&H2_PREFACE[..10]), None);
        assert_eq!(classify(&[0x16, 3, 1, 0, 0xa5]), Some(Protocol::Tls));
        assert_eq!(classify(&[0x16, 9, 9]), Some(Protocol::Opaque));
        assert_eq!(classify(b"\x00\x01binary"), Some(Protocol::Opaque));
        assert_eq!(classify(b"GET / SMTP/1.1\r\n"), Some(Protocol::Opaque));
        assert_eq!(classify(b"hello world\r\n"), Some(Protocol::Opaque));
        assert_eq!(classify(b"PING\r\n"), Some(Protocol::Opaque));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_opaque_after_the_timeout() {
        let (_client, mut server) = tokio::io::duplex(64);
        let (proto, bytes) = detect(&mut server, Duration::from_secs(1)).await.unwrap();
        assert_eq!((proto, bytes.len()), (Protocol::Opaque, 0));
    }

    #[tokio::test]
    async fn split_request_line_is_reassembled() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move {
            client.write_all(b"GET /a").await.unwrap();
            tokio::task::yield_now().await;
            client.write_all(b" HTTP/1.1\r\n").await.unwrap();
            client
        });
        let (proto, bytes) = detect(&mut server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(proto, Protocol::Http1);
        assert_eq!(&bytes[..], b"GET /a HTTP/1.1\r\n");
        drop(task.await);
    }

    #[tokio::test]
    async fn long_garbage_stops_at_the_limit() {
        let (mut client, mut server) = tokio::io::duplex(MAX_DETECT * 2);
        client
            .write_all(&vec![b'A'; MAX_DETECT + 10])
            .await
            .unwrap();
        let (proto, bytes) = detect(&mut server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(proto, Protocol::Opaque);
        assert!(bytes.len() >= MAX_DETECT);
    }
}
