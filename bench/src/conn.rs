//! One keep-alive HTTP/1.1 client connection, and the ways a request on it can fail.

pub(crate) mod oneshot;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::{io, net::SocketAddr, time::Duration};
use tokio::{net::TcpStream, task::JoinHandle};

/// Why a request got no response. Each counts as one error in the report.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}")]
    Connect {
        /// Where the connection went.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The TCP connection opened but HTTP/1.1 could not be started on it.
    #[error("cannot start HTTP/1.1 with {addr}")]
    Handshake {
        /// Where the connection went.
        addr: SocketAddr,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// Sending the request or reading the response failed.
    #[error("request failed")]
    Http(#[source] hyper::Error),
    /// Sending the request or reading the response on a one-request connection failed.
    #[error("exchange with {addr} failed")]
    Io {
        /// Where the connection went.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// A one-request connection's answer was not an HTTP/1.x response.
    #[error("malformed response from {addr}: {reason}")]
    Malformed {
        /// Where the connection went.
        addr: SocketAddr,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// No complete response within the timeout, counted from when the request was due.
    #[error("no response within {0:?} of the request's due time")]
    Timeout(Duration),
}

/// A client connection whose background task ends when the connection is dropped.
pub(crate) struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
}

// === impl Conn ===

impl Conn {
    /// Opens a connection with Nagle's algorithm off: requests are small and latency-bound.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self, RequestError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| RequestError::Connect { addr, source })?;
        stream
            .set_nodelay(true)
            .map_err(|source| RequestError::Connect { addr, source })?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| RequestError::Handshake { addr, source })?;
        let task = tokio::spawn(async move {
            // The request that was in flight sees this failure too and is counted there.
            let _ = connection.await;
        });
        sender
            .ready()
            .await
            .map_err(|source| RequestError::Handshake { addr, source })?;
        Ok(Self { sender, task })
    }

    /// Waits until the connection can take a request; false if the server has closed it.
    pub(crate) async fn ready(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    /// Sends `request` and reads the whole response body, so the connection can be reused.
    pub(crate) async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<StatusCode, RequestError> {
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(RequestError::Http)?;
        let status = response.status();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(RequestError::Http)?;
        }
        Ok(status)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A connection is dropped after a timeout or an error; its task may be stuck waiting on
        // a server that will never answer, and must not outlive the run.
        self.task.abort();
    }
}
