//! The serving side of the receiver: a thread with its own tokio runtime, in the caller's
//! network namespace or a pod's, running the `TraceService` until it is dropped.

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
    thread::JoinHandle,
    time::Duration,
};
use tonic::transport::{Server, server::TcpIncoming};

/// The largest export accepted; well above what a proxy's batch of spans encodes to.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

// === impl Serving ===

/// The thread that serves, with its own runtime; stopped and joined on drop.
#[derive(Debug)]
pub(super) enum Serving {
    /// On a thread in the caller's namespace.
    Here {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<JoinHandle<()>>,
    },
    /// On a thread in a pod's namespace.
    Pod {
        /// Held for its drop, which stops and joins the thread.
        _task: Background,
    },
}

impl Serving {
    /// Starts serving on `addr` and returns once it listens, with the address it bound.
    pub(super) fn spawn(
        addr: SocketAddr,
        pod: Option<&Pod>,
        store: Arc<Store>,
    ) -> Result<(Self, SocketAddr), ReceiverError> {
        let place = match pod {
            Some(pod) => format!("pod {}", pod.name),
            None => "the caller's network namespace".to_string(),
        };
        let (bound_tx, bound_rx) = mpsc::channel();
        let serving = match pod {
            Some(pod) => Self::Pod {
                _task: pod.spawn(move || serve(addr, store, bound_tx)),
            },
            None => {
                let (stop, stopped) = tokio::sync::oneshot::channel();
                let thread = std::thread::Builder::new()
                    .name(format!("otlp-{addr}"))
                    .spawn(move || run_here(addr, store, bound_tx, stopped))
                    .map_err(|source| ReceiverError::Start {
                        addr,
                        place: place.clone(),
                        source,
                    })?;
                Self::Here {
                    stop: Some(stop),
                    thread: Some(thread),
                }
            }
        };
        match bound_rx.recv() {
            Ok(Ok(bound)) => Ok((serving, bound)),
            Ok(Err(Failed::Bind(source))) => Err(ReceiverError::Bind {
                addr,
                place,
                source,
            }),
            Ok(Err(Failed::Runtime(source))) => Err(ReceiverError::Start {
                addr,
                place,
                source,
            }),
            Err(mpsc::RecvError) => Err(ReceiverError::Died { addr, place }),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        // A pod's `Background` stops and joins itself.
        if let Self::Here { stop, thread } = self {
            if let Some(stop) = stop.take() {
                let _ = stop.send(());
            }
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// Why a serving thread could not listen.
#[derive(Debug)]
enum Failed {
    Runtime(io::Error),
    Bind(io::Error),
}

type Bound = mpsc::Sender<Result<SocketAddr, Failed>>;

fn run_here(
    addr: SocketAddr,
    store: Arc<Store>,
    bound: Bound,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = bound.send(Err(Failed::Runtime(e)));
            return;
        }
    };
    runtime.block_on(async move {
        tokio::select! {
            () = serve(addr, store, bound) => {}
            _ = stopped => {}
        }
    });
}

/// Binds `addr`, reports the bound address on `bound`, and serves until dropped.
async fn serve(addr: SocketAddr, store: Arc<Store>, bound: Bound) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            let _ = bound.send(Err(Failed::Bind(e)));
            return;
        }
    };
    match listener.local_addr() {
        Ok(local) => {
            let _ = bound.send(Ok(local));
        }
        Err(e) => {
            let _ = bound.send(Err(Failed::Bind(e)));
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
