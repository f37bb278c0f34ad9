//! Ending watch streams when the server shuts down.
//!
//! A watch stream never finishes on its own, and tonic's graceful shutdown waits for every open
//! stream, so each stream is cut short when the drain signal fires.

use futures::{Stream, StreamExt};
use std::pin::Pin;
use tokio::sync::watch;

/// A boxed response stream, as the generated service traits want it.
pub(crate) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>;

/// Fires when the sender half is dropped (or sends); `None` never fires.
#[derive(Clone, Debug)]
pub(crate) struct Drain(Option<watch::Receiver<()>>);

impl Drain {
    /// A drain signalled when `rx`'s sender sends or is dropped.
    pub(crate) fn new(rx: watch::Receiver<()>) -> Self {
        Self(Some(rx))
    }

    /// A drain that never fires: streams end only when their client goes away.
    pub(crate) fn never() -> Self {
        Self(None)
    }

    /// Boxes `stream`, ending it when the drain fires.
    pub(crate) fn wrap<T, S>(&self, stream: S) -> BoxStream<T>
    where
        S: Stream<Item = Result<T, tonic::Status>> + Send + 'static,
    {
        let rx = self.0.clone();
        let signaled = async move {
            match rx {
                // Either a send or a dropped sender means "stop".
                Some(mut rx) => {
                    let _ = rx.changed().await;
                }
                None => futures::future::pending::<()>().await,
            }
        };
        Box::pin(stream.take_until(signaled))
    }
}
