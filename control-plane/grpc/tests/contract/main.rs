//! Contract tests of the gRPC services: a real tonic client over TCP against the services, fed
//! by a fake discovery source whose watch channels each test drives.

// Helpers outside `#[test]` functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod destination;
mod fake;
mod inbound;
mod outbound;
mod resilience;
mod server;

use fake::Fake;
use std::{future::Future, net::SocketAddr, time::Duration};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;
use weft_controller_grpc::{Config, ServeError, serve_on_listener};

/// The failure bound for anything the tests wait for; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A running server on 127.0.0.1.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

/// Serves `fake` on an ephemeral port.
pub async fn start(fake: &Fake) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_on_listener(
        listener,
        fake.clone(),
        Config::default(),
        async move {
            let _ = rx.await;
        },
    ));
    TestServer {
        addr,
        shutdown: Some(tx),
        task,
    }
}

impl TestServer {
    /// A new client connection.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        let _ = self.shutdown.take().unwrap().send(());
        within(&mut self.task).await.unwrap()
    }
}

/// `fut`, or a test failure after [`PATIENCE`].
pub async fn within<F: Future + Unpin>(fut: F) -> F::Output {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .expect("timed out waiting")
}

/// The next message of a response stream; fails the test on error, end or timeout.
pub async fn next<T>(stream: &mut tonic::Streaming<T>) -> T {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("timed out waiting for a message")
        .expect("stream failed")
        .expect("stream ended")
}

/// Waits until `cond` holds, polling; fails the test after [`PATIENCE`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
