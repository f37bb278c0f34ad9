//! Running a load test: one task per keep-alive connection (or per concurrent one-request
//! connection), fed by the pacer (open loop) or by its own previous response (closed loop).

use crate::{
    Rate, Report, Target,
    conn::{Conn, RequestError, oneshot},
    schedule::{self, Due, Schedule},
    stats::Stats,
    target::ResolveError,
};
use bytes::Bytes;
use std::{
    net::SocketAddr,
    num::NonZeroUsize,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{Mutex, mpsc};

/// Lead time between opening the connections and the first request being due, so the pacer
/// thread is running before anything is due.
const START_DELAY: Duration = Duration::from_millis(5);

/// What to send, how fast and for how long.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Where every request goes.
    pub target: Target,
    /// Requests per second, or as fast as responses allow.
    pub rate: Rate,
    /// How long to measure.
    pub duration: Duration,
    /// How long to send before measuring, to warm up connections, caches and the target.
    pub warmup: Duration,
    /// Keep-alive connections to spread requests over; with `new_connection_per_request`, how
    /// many one-request connections may be open at once.
    pub connections: NonZeroUsize,
    /// Open a new TCP connection for every request and close it after the response, to measure
    /// what connection set-up costs (accept, protocol detection, a mesh TLS handshake).
    pub new_connection_per_request: bool,
    /// Bytes of request body: 0 sends `GET`s, more sends `POST`s with that many bytes.
    pub body_bytes: usize,
    /// How long after its due time a request may take before it counts as an error.
    pub timeout: Duration,
}

/// Why a run could not start, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target's host name could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Not one connection could be opened, so there is nothing to measure.
    #[error("none of the {connections} connections could be opened")]
    Unreachable {
        /// Connections tried.
        connections: usize,
        /// The first connection's error.
        #[source]
        source: RequestError,
    },
    /// A run of one-request connections found the target refusing a first, test connection.
    #[error("cannot open a test connection to {addr}")]
    Probe {
        /// The target.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The pacer thread could not be started.
    #[error("cannot start the pacer thread")]
    Pacer(#[source] std::io::Error),
    /// A connection's task panicked or was cancelled.
    #[error("a connection task failed")]
    Worker(#[source] tokio::task::JoinError),
}

/// Where workers get the due time of their next request.
enum Source {
    /// From the pacer. A worker takes the next request only when its connection is free, so a
    /// request that finds every connection busy waits here, and that wait counts as latency.
    Open(Mutex<mpsc::UnboundedReceiver<Due>>),
    /// Now, until `end`: each connection sends again as soon as its last response is read.
    Closed { measure_from: Instant, end: Instant },
}

/// Runs the load test described by `config` and reports on its measured part.
///
/// Connections are opened before the clock starts. Requests that fail are counted, not
/// returned as errors; an error means the run could not happen at all.
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
    let addr = config.target.resolve().await?;
    let conns = if config.new_connection_per_request {
        probe(addr).await?;
        (0..config.connections.get()).map(|_| None).collect()
    } else {
        open_connections(addr, config.connections.get()).await?
    };

    let (source, measure_from) = match config.rate {
        Rate::PerSecond(rate) => {
            let schedule = Schedule::new(rate, config.warmup, config.duration);
            let start = Instant::now() + START_DELAY;
            let (tx, rx) = mpsc::unbounded_channel();
            schedule::spawn_pacer(schedule, start, tx).map_err(LoadError::Pacer)?;
            (Source::Open(Mutex::new(rx)), start + config.warmup)
        }
        Rate::Max => {
            let measure_from = Instant::now() + config.warmup;
            let end = measure_from + config.duration;
            (Source::Closed { measure_from, end }, measure_from)
        }
    };

    let source = Arc::new(source);
    let body = Bytes::from(vec![b'x'; config.body_bytes]);
    let request = Arc::new(RequestTemplate {
        target: config.target.clone(),
        closing: config
            .new_connection_per_request
            .then(|| config.target.closing_request(&body)),
        body,
    });
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let worker = Worker {
                addr,
                conn,
                request: request.clone(),
                timeout: config.timeout,
                stats: Stats::new(),
            };
            tokio::spawn(worker.run(source.clone()))
        })
        .collect();

    let mut stats = Stats::new();
    for worker in workers {
        stats.merge(worker.await.map_err(LoadError::Worker)?);
    }
    Ok(Report::new(&config, &stats, measure_from))
}

/// Opens every connection at once. Those that fail are retried by their first request; only
/// when all fail is the target plainly unreachable.
async fn open_connections(addr: SocketAddr, n: usize) -> Result<Vec<Option<Conn>>, LoadError> {
    let attempts: Vec<_> = (0..n).map(|_| tokio::spawn(Conn::connect(addr))).collect();
    let mut conns = Vec::with_capacity(n);
    let mut first_error = None;
    for attempt in attempts {
        match attempt.await.map_err(LoadError::Worker)? {
            Ok(conn) => conns.push(Some(conn)),
            Err(error) => {
                first_error.get_or_insert(error);
                conns.push(None);
            }
        }
    }
    match first_error {
        Some(source) if conns.iter().all(Option::is_none) => Err(LoadError::Unreachable {
            connections: n,
            source,
        }),
        _ => Ok(conns),
    }
}

/// Checks that the target accepts connections before a run that opens none in advance.
async fn probe(addr: SocketAddr) -> Result<(), LoadError> {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(_) => Ok(()),
        Err(source) => Err(LoadError::Probe { addr, source }),
    }
}

/// The parts of every request that do not change.
struct RequestTemplate {
    target: Target,
    body: Bytes,
    /// The whole request on the wire, for one-request connections.
    closing: Option<Bytes>,
}

/// Sends requests over one connection, reconnecting after errors.
struct Worker {
    addr: SocketAddr,
    conn: Option<Conn>,
    request: Arc<RequestTemplate>,
    timeout: Duration,
    stats: Stats,
}

// === impl Source ===

impl Source {
    async fn next(&self) -> Option<Due> {
        match self {
            Self::Open(queue) => queue.lock().await.recv().await,
            Self::Closed { measure_from, end } => {
                let at = Instant::now();
                (at < *end).then_some(Due {
                    at,
                    measured: at >= *measure_from,
                })
            }
        }
    }
}

// === impl Worker ===

impl Worker {
    async fn run(mut self, source: Arc<Source>) -> Stats {
        while let Some(due) = source.next().await {
            let outcome = self.send(due.at).await;
            if due.measured {
                self.stats.record(due.at, Instant::now(), outcome);
            }
        }
        self.stats
    }

    /// Sends one request, giving up `timeout` after it was due.
    async fn send(&mut self, due: Instant) -> Result<http::StatusCode, RequestError> {
        let deadline = due + self.timeout;
        if Instant::now() >= deadline {
            // Expired while queued for a connection: sending it now would measure nothing.
            return Err(RequestError::Timeout(self.timeout));
        }
        tokio::time::timeout_at(deadline.into(), self.exchange())
            .await
            .unwrap_or(Err(RequestError::Timeout(self.timeout)))
    }

    /// Sends one request on the kept-alive connection, or a new one if there is none or the
    /// server closed it while idle. The connection is kept only after a complete exchange:
    /// after an error or a timeout its state is unknown. One-request connections are opened
    /// here and closed by the server.
    async fn exchange(&mut self) -> Result<http::StatusCode, RequestError> {
        if let Some(request) = &self.request.closing {
            return oneshot::exchange(self.addr, request).await;
        }
        let kept = match self.conn.take() {
            Some(mut conn) => conn.ready().await.then_some(conn),
            None => None,
        };
        let mut conn = match kept {
            Some(conn) => conn,
            None => Conn::connect(self.addr).await?,
        };
        let request = self.request.target.request(&self.request.body);
        let status = conn.send(request).await?;
        self.conn = Some(conn);
        Ok(status)
    }
}
