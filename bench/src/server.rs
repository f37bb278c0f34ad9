//! The target app for benchmarks: an HTTP/1.1 server that answers every request with
//! `200 OK` and a small fixed body, keeping connections alive.
//!
//! It does as little as a server can, so that what a benchmark measures is the network and the
//! mesh, not the app.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use std::{future::Future, pin::pin, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};

/// The body of every response.
pub const BODY: &[u8] = b"weft-bench ok\n";

/// How long to pause accepting after an accept error such as running out of file descriptors,
/// rather than spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves connections from `listener` until `shutdown` completes, then lets open connections
/// finish the request they are on and returns once all have closed.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    // Each connection task holds a clone of `drained`; when the last is dropped, `recv` ends.
    let (drained, mut all_closed) = mpsc::channel::<()>(1);
    // Dropping `stop` tells every connection to close once idle.
    let (stop, stopped) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, stopped.clone(), drained.clone()));
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    drop(stop);
    drop(drained);
    let _ = all_closed.recv().await;
}

async fn serve_connection(
    stream: TcpStream,
    mut stopped: watch::Receiver<()>,
    _drained: mpsc::Sender<()>,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot disable Nagle's algorithm");
    }
    let connection =
        http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(respond));
    let mut connection = pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // Clients resetting connections is normal at the end of a load test.
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Reads the request body to its end, so the connection can take the next request, and
/// answers `200 OK`.
async fn respond(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}
