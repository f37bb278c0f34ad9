//! One request on a connection of its own (`--new-connection-per-request`): connect, send the
//! request with `Connection: close`, read until the server closes.
//!
//! This is plain bytes rather than hyper on purpose: the client reads to the server's end of
//! the stream before it closes its own, so the server closes first and keeps the `TIME_WAIT`.
//! A client that closed first would keep one `TIME_WAIT` socket per request and run out of
//! local ports (about 28,000 per destination per minute) long before the proxies run out of
//! anything.

use super::RequestError;
use http::StatusCode;
use std::net::SocketAddr;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Opens a connection to `addr`, sends `request` (a whole HTTP/1.1 request that asks the server
/// to close) and reads the response to the end of the stream; the response's status.
pub(crate) async fn exchange(addr: SocketAddr, request: &[u8]) -> Result<StatusCode, RequestError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|source| RequestError::Connect { addr, source })?;
    stream
        .set_nodelay(true)
        .map_err(|source| RequestError::Connect { addr, source })?;
    let io = |source| RequestError::Io { addr, source };
    stream.write_all(request).await.map_err(io)?;
    let mut response = Vec::with_capacity(256);
    stream.read_to_end(&mut response).await.map_err(io)?;
    status(&response).map_err(|reason| RequestError::Malformed { addr, reason })
}

/// The status code of a complete HTTP/1.x response head at the start of `response`.
fn status(response: &[u8]) -> Result<StatusCode, &'static str> {
    if response.is_empty() {
        return Err("the server closed the connection without answering");
    }
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response ended inside its head")?;
    let line = response[..head_end]
        .split(|&b| b == b'\r')
        .next()
        .unwrap_or_default();
    let code = match line.split(|&b| b == b' ').collect::<Vec<_>>()[..] {
        [b"HTTP/1.1" | b"HTTP/1.0", code, ..] => code,
        _ => return Err("the status line is not HTTP/1.x"),
    };
    StatusCode::from_bytes(code).map_err(|_| "the status code is not a number from 100 to 999")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_of_a_complete_head() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
        assert_eq!(status(ok), Ok(StatusCode::OK));
        let old = b"HTTP/1.0 503 Service Unavailable\r\n\r\n";
        assert_eq!(status(old), Ok(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn says_what_is_wrong_with_a_response() {
        assert_eq!(
            status(b""),
            Err("the server closed the connection without answering")
        );
        assert_eq!(
            status(b"HTTP/1.1 200 OK\r\ncontent-le"),
            Err("the response ended inside its head")
        );
        assert_eq!(
            status(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err("the status line is not HTTP/1.x")
        );
        assert_eq!(
            status(b"HTTP/1.1 2x0 OK\r\n\r\n"),
            Err("the status code is not a number from 100 to 999")
        );
    }
}
