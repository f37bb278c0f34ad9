//! The OTLP/gRPC trace receiver: a `TraceService` on a thread of its own that keeps every span
//! it is sent, and that can be stopped, resumed and slowed down to test exporters.

use super::{
    server::{self, Received, Store},
    span::Span,
};
use crate::pod::{Background, Pod};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, MutexGuard, PoisonError, atomic::Ordering},
    time::{Duration, Instant},
};

/// An in-process OTLP/gRPC trace collector that keeps what it receives in memory.
///
/// It serves until it is stopped or dropped. Received spans survive [`Receiver::stop`] and
/// [`Receiver::resume`]; only [`Receiver::clear`] forgets them.
#[derive(Debug)]
pub struct Receiver {
    store: Arc<Store>,
    /// The address it listens on, with the port it was given when asked for port 0.
    bound: SocketAddr,
    pod: Option<Pod>,
    serving: Option<Background>,
}

/// Why a [`Receiver`] could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The address could not be bound (in use, or not an address of that namespace).
    #[error("cannot listen for OTLP/gRPC on {addr} in {place}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The network namespace: the caller's, or a pod's.
        place: String,
        /// Why.
        source: io::Error,
    },
    /// Its thread ended before it listened (it could not enter the pod or build its runtime, or
    /// it panicked).
    #[error("the OTLP/gRPC receiver for {addr} in {place} ended before it listened")]
    Died {
        /// The address.
        addr: SocketAddr,
        /// The network namespace: the caller's, or a pod's.
        place: String,
    },
}

/// What the spans received never satisfied within the time given.
#[derive(Debug, thiserror::Error)]
#[error(
    "the OTLP/gRPC receiver on {addr} waited {after:?} in vain: {spans} spans from {requests} \
     exports were received"
)]
pub struct WaitError {
    /// The receiver's address.
    pub addr: SocketAddr,
    /// How long it waited.
    pub after: Duration,
    /// How many spans it held at the end.
    pub spans: usize,
    /// How many exports it had received at the end.
    pub requests: u64,
}

// === impl Receiver ===

impl Receiver {
    /// Starts serving on `addr` in the caller's network namespace (`127.0.0.1:0` picks a free
    /// port; [`Receiver::addr`] tells which).
    pub fn start(addr: SocketAddr) -> Result<Self, ReceiverError> {
        Self::serve(addr, None)
    }

    /// Starts serving on `port` of every address of `pod` (0 picks a free port), so proxies in
    /// other pods export to the pod's IP, as they would to a collector's Service.
    pub fn start_in(pod: &Pod, port: u16) -> Result<Self, ReceiverError> {
        Self::serve((Ipv4Addr::UNSPECIFIED, port).into(), Some(pod.clone()))
    }

    fn serve(addr: SocketAddr, pod: Option<Pod>) -> Result<Self, ReceiverError> {
        let mut receiver = Self {
            store: Arc::default(),
            bound: addr,
            pod,
            serving: None,
        };
        receiver.resume()?;
        Ok(receiver)
    }

    /// Where exporters reach it: the pod's IP and the port in a pod; otherwise the bound
    /// address, with loopback for an unspecified IP.
    pub fn addr(&self) -> SocketAddr {
        match &self.pod {
            Some(pod) => (pod.ip, self.bound.port()).into(),
            None if self.bound.ip().is_unspecified() => {
                (Ipv4Addr::LOCALHOST, self.bound.port()).into()
            }
            None => self.bound,
        }
    }

    /// The endpoint to configure an OTLP/gRPC exporter with, e.g. `http://10.42.0.5:4317`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The settings that make a proxy export its spans here (`WEFT_PROXY_OTLP_ADDR`) and start
    /// traces for `sampling` (0 to 1) of the requests that carry no trace context
    /// (`WEFT_PROXY_TRACE_SAMPLING`).
    pub fn proxy_env(&self, sampling: f64) -> [(String, String); 2] {
        [
            ("WEFT_PROXY_OTLP_ADDR".into(), self.addr().to_string()),
            ("WEFT_PROXY_TRACE_SAMPLING".into(), sampling.to_string()),
        ]
    }

    /// Every span received so far, in the order they arrived.
    pub fn spans(&self) -> Vec<Span> {
        self.store.lock().spans.clone()
    }

    /// Every export whose spans were kept, as it was sent, in the order they arrived: what
    /// [`super::relay`] forwards to another collector.
    pub fn raw_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.store.lock().raw.clone()
    }

    /// How many `Export` calls arrived since the start or the last [`Receiver::clear`],
    /// counted on arrival (also those still delayed, or given up by their client).
    pub fn requests(&self) -> u64 {
        self.store.lock().requests
    }

    /// Forgets every span and export and resets the count of requests.
    pub fn clear(&self) {
        let mut received = self.store.lock();
        received.spans.clear();
        received.raw.clear();
        received.requests = 0;
    }

    /// Waits until `done` holds for the spans received so far (checked now and after each
    /// export), and returns those spans. `done` runs with the receiver locked, so it must not
    /// call the receiver itself.
    pub fn wait_for(
        &self,
        mut done: impl FnMut(&[Span]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Span>, WaitError> {
        let received = self.wait(|r| done(&r.spans), timeout)?;
        Ok(received.spans.clone())
    }

    /// Waits until at least `n` `Export` calls have arrived (see [`Receiver::requests`]).
    pub fn wait_for_requests(&self, n: u64, timeout: Duration) -> Result<u64, WaitError> {
        Ok(self.wait(|r| r.requests >= n, timeout)?.requests)
    }

    fn wait(
        &self,
        mut done: impl FnMut(&Received) -> bool,
        timeout: Duration,
    ) -> Result<MutexGuard<'_, Received>, WaitError> {
        let deadline = Instant::now() + timeout;
        let mut received = self.store.lock();
        loop {
            if done(&received) {
                return Ok(received);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WaitError {
                    addr: self.addr(),
                    after: timeout,
                    spans: received.spans.len(),
                    requests: received.requests,
                });
            }
            received = self
                .store
                .changed
                .wait_timeout(received, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// For tests of exporters and of [`super::relay`]: makes each later `Export` wait `delay`
    /// before it is answered (zero: answer at once), as a lagging collector would. Its spans
    /// are kept when the answer is sent, so an export its client gives up on first (a
    /// `grpc-timeout` shorter than the delay) is counted but not kept.
    pub fn set_delay(&self, delay: Duration) {
        // Past u64::MAX nanoseconds (584 years) every delay is the same.
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.store.delay_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Stops serving at once: the listener and every open connection are closed, so exports
    /// in flight fail and new ones are refused. Nothing happens if it is already stopped.
    pub fn stop(&mut self) {
        // Dropping the task ends its runtime, which closes every socket it holds.
        self.serving = None;
    }

    /// Serves again on the same address (and in the same pod) after [`Receiver::stop`].
    /// Nothing happens if it is serving.
    pub fn resume(&mut self) -> Result<(), ReceiverError> {
        if self.serving.is_some() {
            return Ok(());
        }
        let (serving, bound) = server::spawn(self.bound, self.pod.as_ref(), self.store.clone())?;
        self.bound = bound;
        self.serving = Some(serving);
        Ok(())
    }

    /// Whether it is serving (started and not stopped).
    #[cfg(test)]
    pub(super) fn is_serving(&self) -> bool {
        self.serving.is_some()
    }
}
