//! The serving side of the receiver: a [`Background`] task, in the caller's network namespace
//! or a pod's, running the `TraceService` until it is dropped.

use super::{
    receiver::ReceiverError,
    span::{Span, flatten},
};
use crate::pod::{Background, Pod};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::Duration,
};
use tonic::transport::{Server, server::TcpIncoming};

/// The largest export accepted; well above what a proxy's batch of spans encodes to.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Starts serving on `addr`, in `pod` or the caller's network namespace, and returns once it
/// listens, with the address it bound. Dropping the task stops it, which closes every socket
/// it holds.
pub(super) fn spawn(
    addr: SocketAddr,
    pod: Option<&Pod>,
    store: Arc<Store>,
) -> Result<(Background, SocketAddr), ReceiverError> {
    let (bound_tx, bound_rx) = mpsc::channel();
    let serve = move || serve(addr, store, bound_tx);
    let (task, place) = match pod {
        Some(pod) => (pod.spawn(serve), format!("pod {}", pod.name)),
        None => (
            Background::here(serve),
            "the caller's network namespace".to_string(),
        ),
    };
    match bound_rx.recv() {
        Ok(Ok(bound)) => Ok((task, bound)),
        Ok(Err(source)) => Err(ReceiverError::Bind {
            addr,
            place,
            source,
        }),
        Err(mpsc::RecvError) => Err(ReceiverError::Died { addr, place }),
    }
}

type Bound = mpsc::Sender<io::Result<SocketAddr>>;

/// Binds `addr`, reports the bound address on `bound`, and serves until dropped.
async fn serve(addr: SocketAddr, store: Arc<Store>, bound: Bound) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            let _ = bound.send(Err(e));
            return;
        }
    };
    match listener.local_addr() {
        Ok(local) => {
            let _ = bound.send(Ok(local));
        }
        Err(e) => {
            let _ = bound.send(Err(e));
            return;
        }
    }
    let service =
        TraceServiceServer::new(Collector { store }).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    if let Err(error) = Server::builder()
        .add_service(service)
        .serve_with_incoming(incoming)
        .await
    {
        tracing::warn!(%addr, %error, "the OTLP/gRPC receiver stopped serving");
    }
}

// === impl Store ===

/// What the receiver and its serving threads share.
#[derive(Debug, Default)]
pub(super) struct Store {
    received: Mutex<Received>,
    /// Signalled whenever `received` changes.
    pub(super) changed: Condvar,
    pub(super) delay_nanos: AtomicU64,
}

#[derive(Debug, Default)]
pub(super) struct Received {
    pub(super) spans: Vec<Span>,
    /// The exports those spans came in, as sent, for relaying them unchanged.
    pub(super) raw: Vec<ExportTraceServiceRequest>,
    pub(super) requests: u64,
}

impl Store {
    pub(super) fn lock(&self) -> MutexGuard<'_, Received> {
        // A panic while holding the lock cannot leave a half-pushed span behind; keep serving.
        self.received.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut Received)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

/// The `TraceService` implementation.
struct Collector {
    store: Arc<Store>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.store.update(|r| r.requests += 1);
        let delay = Duration::from_nanos(self.store.delay_nanos.load(Ordering::Relaxed));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let request = request.into_inner();
        let spans = flatten(request.resource_spans.clone());
        self.store.update(|r| {
            r.spans.extend(spans);
            r.raw.push(request);
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}
