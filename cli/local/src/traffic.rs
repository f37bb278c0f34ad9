//! Client traffic from inside a pod, tallied by the value of a response header (which backend
//! served it), so a traffic split can be observed from the client's side.

use crate::pod::{Background, Pod};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// What one request got: the header's value, or why it failed.
pub type Outcome = Result<String, String>;

/// Outcomes counted by value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Successful responses by the header's value (`-` when absent).
    pub by_value: BTreeMap<String, u64>,
    /// Failed requests (transport errors and non-2xx statuses).
    pub failures: u64,
    /// The first few failure reasons.
    pub errors: Vec<String>,
}

impl Tally {
    /// Counts `outcomes`.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Self {
        let mut t = Self::default();
        for o in outcomes {
            match o {
                Ok(v) => *t.by_value.entry(v.clone()).or_default() += 1,
                Err(e) => {
                    t.failures += 1;
                    if t.errors.len() < 5 {
                        t.errors.push(e.clone());
                    }
                }
            }
        }
        t
    }

    /// Successful responses.
    pub fn ok(&self) -> u64 {
        self.by_value.values().sum()
    }

    /// The share of successful responses with `value`, in percent.
    pub fn percent(&self, value: &str) -> f64 {
        let ok = self.ok();
        if ok == 0 {
            return 0.0;
        }
        100.0 * self.by_value.get(value).copied().unwrap_or(0) as f64 / ok as f64
    }
}

/// A request to send: method, URL, extra headers, and the response header to tally.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method (GET unless [`Request::method`] says otherwise).
    pub method: http::Method,
    /// `http://host:port/path`.
    pub url: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The response header whose value is tallied.
    pub tally_header: String,
}

impl Request {
    /// A GET of `url`, tallied by `tally_header`.
    pub fn get(url: impl Into<String>, tally_header: impl Into<String>) -> Self {
        Self {
            method: http::Method::GET,
            url: url.into(),
            headers: vec![],
            tally_header: tally_header.into(),
        }
    }

    /// The same request with `method` (its body stays empty).
    pub fn method(mut self, method: http::Method) -> Self {
        self.method = method;
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

async fn send(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    req: &Request,
) -> Outcome {
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(&req.url);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let request = builder
        .body(Empty::new())
        .map_err(|e| format!("bad request: {e}"))?;
    let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = rsp.status();
    let value = rsp
        .headers()
        .get(&req.tally_header)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let proxy_error = rsp
        .headers()
        .get("weft-proxy-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Read the body so the connection is reused.
    let _ = rsp.into_body().collect().await;
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "status {status}{}",
            proxy_error.map(|e| format!(": {e}")).unwrap_or_default()
        ))
    }
}

fn client(
    concurrency: usize,
) -> Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build_http()
}

/// Sends `requests` requests from `pod` over `concurrency` keep-alive connections and tallies
/// the outcomes.
pub fn tally(pod: &Pod, req: &Request, requests: usize, concurrency: usize) -> Tally {
    let req = req.clone();
    let outcomes = pod.run(move || async move {
        let client = client(concurrency);
        let req = Arc::new(req);
        let per_task = requests.div_ceil(concurrency.max(1));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..concurrency.max(1) {
            let (client, req) = (client.clone(), req.clone());
            let n = per_task.min(requests.saturating_sub(i * per_task));
            tasks.spawn(async move {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(send(&client, &req).await);
                }
                out
            });
        }
        let mut all = Vec::with_capacity(requests);
        while let Some(r) = tasks.join_next().await {
            all.extend(r.unwrap_or_default());
        }
        all
    });
    Tally::of(&outcomes)
}

/// Continuous traffic from a pod, each outcome stamped with when it completed.
#[derive(Debug)]
pub struct Traffic {
    log: Arc<Mutex<Vec<(Instant, Outcome)>>>,
    _task: Background,
}

impl Traffic {
    /// Starts `concurrency` request loops in `pod`, each pausing `pause` between requests.
    pub fn start(pod: &Pod, req: &Request, concurrency: usize, pause: Duration) -> Self {
        let log: Arc<Mutex<Vec<(Instant, Outcome)>>> = Arc::default();
        let (req, sink) = (Arc::new(req.clone()), log.clone());
        let task = pod.spawn(move || async move {
            let client = client(concurrency);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..concurrency.max(1) {
                let (client, req, sink) = (client.clone(), req.clone(), sink.clone());
                tasks.spawn(async move {
                    loop {
                        let outcome = send(&client, &req).await;
                        lock(&sink).push((Instant::now(), outcome));
                        tokio::time::sleep(pause).await;
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        });
        Self { log, _task: task }
    }

    /// Every outcome so far, with its completion time.
    pub fn outcomes(&self) -> Vec<(Instant, Outcome)> {
        lock(&self.log).clone()
    }

    /// The outcomes completed at or after `since`.
    pub fn since(&self, since: Instant) -> Tally {
        let log = lock(&self.log);
        Tally::of(log.iter().filter(|(t, _)| *t >= since).map(|(_, o)| o))
    }

    /// How many outcomes there are.
    pub fn len(&self) -> usize {
        lock(&self.log).len()
    }

    /// Whether there are none yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
