//! How long a TrafficSplit change in the files source takes to reach a proxy.
//!
//! The set-up is the demo's ([`Shop`]): a controller reading a directory, and a client, web-v1
//! and web-v2, all meshed, in pods on one bridge. One request makes the client's sidecar watch
//! the `web` service; then the split flips between 90/10 and 10/90, and each flip is timed from
//! the file's rename to the client sidecar counting an `outbound_policy` update on its
//! `/metrics`. The rename and the polling run on one thread inside the client pod, polling
//! every millisecond by default, so the resolution is about a millisecond.
//!
//! A second pass times the controller alone: from the rename to its `/index` showing a new
//! files generation, polled from inside its pod. The difference is the gRPC stream and the
//! proxy.

use super::{
    BoxError, Error, Summary, admin,
    admin::Index,
    millis,
    poll::{self, Found},
    round3,
};
use crate::Millis;
use serde::Serialize;
use std::{
    fmt,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};
use weft_cli_local::{
    controller::ADMIN_PORT,
    shop::{self, Shop},
    traffic,
};

/// The split's two states (web-v1, web-v2); every change goes from one to the other.
const WEIGHTS: [(u32, u32); 2] = [(90, 10), (10, 90)];

/// The proxy metric that counts policy messages.
const KIND: &str = "outbound_policy";

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    /// Changes timed in each pass.
    pub changes: usize,
    /// How often to poll.
    pub poll: Duration,
    /// Quiet time after each change, so the next starts from a settled system.
    pub pause: Duration,
    /// How long one change may take before the run fails.
    pub timeout: Duration,
    /// `Some(n)`: after each change, send `n` requests and check the split moved.
    pub verify: Option<usize>,
}

/// What was measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Changes per pass.
    pub changes: usize,
    /// Rename to the client sidecar counting the update.
    pub to_proxy_ms: Summary,
    /// The average time between polls of the sidecar: the resolution.
    pub proxy_poll_period_ms: f64,
    /// Rename to the controller's `/index` showing a new generation.
    pub to_controller_ms: Summary,
    /// The average time between polls of the controller.
    pub controller_poll_period_ms: f64,
    /// Policy messages the sidecar counted per change (1 when nothing is sent twice).
    pub updates_per_change: f64,
    /// Every change's time to the proxy, in order.
    pub to_proxy_samples_ms: Vec<Millis>,
    /// Every change's time to the controller, in order.
    pub to_controller_samples_ms: Vec<Millis>,
    /// The split as observed by requests after each change.
    pub verify: Option<Verify>,
}

/// The split as traffic saw it after each change.
#[derive(Clone, Debug, Serialize)]
pub struct Verify {
    /// Requests sent after each change.
    pub requests_per_change: usize,
    /// Changes after which most requests went where most weight was.
    pub moved: usize,
    /// Changes checked.
    pub checked: usize,
    /// The largest distance between the observed and the configured web-v2 share, in points.
    pub max_error_points: f64,
    /// The mean of those distances.
    pub mean_error_points: f64,
}

/// Runs both passes and removes every pod and process, also on failure.
pub fn run(config: &Config) -> Result<Report, Error> {
    let shop = Shop::start((50, 50), &[]).map_err(Error::setup(
        "set up the demo's pods, sidecars and controller",
    ))?;
    let request = Shop::web_request("/");
    // The first request makes the client's sidecar watch the service.
    let first = traffic::tally(&shop.client.pod, &request, 1, 1);
    if first.failures > 0 {
        return Err(Error::Failed {
            what: format!("the first request failed: {:?}", first.errors),
            log: logs(&shop),
        });
    }
    if shop.wait_policy_update(0.0, config.timeout).is_none() {
        return Err(Error::Timeout {
            what: "the client sidecar's first policy".into(),
            after: config.timeout,
            log: logs(&shop),
        });
    }
    let updates_before = shop.policy_updates();
    let (to_proxy, observed) = proxy_pass(config, &shop)?;
    let updates = shop.policy_updates() - updates_before;
    let to_controller = controller_pass(config, &shop)?;
    Ok(Report {
        changes: config.changes,
        to_proxy_ms: Summary::of(&elapsed(&to_proxy)),
        proxy_poll_period_ms: mean_period_ms(&to_proxy),
        to_controller_ms: Summary::of(&elapsed(&to_controller)),
        controller_poll_period_ms: mean_period_ms(&to_controller),
        updates_per_change: updates / config.changes.max(1) as f64,
        to_proxy_samples_ms: samples(&to_proxy),
        to_controller_samples_ms: samples(&to_controller),
        verify: config.verify.map(|n| verify(n, &observed)),
    })
}

/// Times each change to the client sidecar; with `verify`, also tallies where requests go
/// after it: the weights and the observed web-v2 share.
fn proxy_pass(config: &Config, shop: &Shop) -> Result<(Vec<Found>, Vec<Observed>), Error> {
    let timing = (config.poll, config.timeout);
    let request = Shop::web_request("/");
    let (mut found, mut observed) = (Vec::new(), Vec::new());
    for k in 0..config.changes {
        let weights = WEIGHTS[k % 2];
        let (dir, metrics) = (shop.dir.clone(), shop.client.admin_addr());
        let polled = shop
            .client
            .pod
            .run(move || proxy_change(timing, dir, weights, metrics))
            .map_err(Error::setup("poll the client sidecar"))?;
        found.push(polled.ok_or_else(|| Error::Timeout {
            what: format!("change {k} reaching the client sidecar"),
            after: config.timeout,
            log: logs(shop),
        })?);
        if let Some(n) = config.verify {
            let tally = traffic::tally(&shop.client.pod, &request, n, 4);
            if tally.failures > 0 {
                return Err(Error::Failed {
                    what: format!("{} requests failed: {:?}", tally.failures, tally.errors),
                    log: logs(shop),
                });
            }
            observed.push((weights, tally.percent("web-v2")));
        }
        std::thread::sleep(config.pause);
    }
    Ok((found, observed))
}

/// Times each change to the controller's `/index`, continuing the proxy pass's alternation so
/// its first change is a change too.
fn controller_pass(config: &Config, shop: &Shop) -> Result<Vec<Found>, Error> {
    let timing = (config.poll, config.timeout);
    let index = SocketAddr::from(([127, 0, 0, 1], ADMIN_PORT));
    let mut found = Vec::new();
    for k in 0..config.changes {
        let weights = WEIGHTS[(config.changes + k) % 2];
        let dir = shop.dir.clone();
        let polled = shop
            .controller
            .pod
            .run(move || controller_change(timing, dir, weights, index))
            .map_err(Error::setup("poll the controller"))?;
        found.push(polled.ok_or_else(|| Error::Timeout {
            what: format!("change {k} reaching the controller's index"),
            after: config.timeout,
            log: logs(shop),
        })?);
        std::thread::sleep(config.pause);
    }
    Ok(found)
}

/// Reads the sidecar's count, writes the split, and polls until the count grows. Runs in the
/// client pod, whose loopback reaches the sidecar's admin port.
async fn proxy_change(
    (period, timeout): (Duration, Duration),
    dir: PathBuf,
    weights: (u32, u32),
    metrics: SocketAddr,
) -> Polled {
    let before = admin::updates(&admin::get(metrics, "/metrics").await?, KIND);
    let start = Instant::now();
    shop::write_split(&dir, weights)?;
    let found = poll::until(start, period, timeout, || async {
        let text = admin::get(metrics, "/metrics").await?;
        Ok::<_, BoxError>(admin::updates(&text, KIND) > before)
    })
    .await?;
    Ok(found)
}

/// Reads the controller's generation, writes the split, and polls `/index` until the
/// generation grows. Runs in the controller's pod.
async fn controller_change(
    (period, timeout): (Duration, Duration),
    dir: PathBuf,
    weights: (u32, u32),
    index: SocketAddr,
) -> Polled {
    let before = Index::get(index).await?.files.generation;
    let start = Instant::now();
    shop::write_split(&dir, weights)?;
    let found = poll::until(start, period, timeout, || async {
        let generation = Index::get(index).await?.files.generation;
        Ok::<_, BoxError>(generation > before)
    })
    .await?;
    Ok(found)
}

/// One change's outcome: `Ok(None)` when it timed out.
type Polled = Result<Option<Found>, BoxError>;

fn verify(requests: usize, observed: &[Observed]) -> Verify {
    let errors: Vec<f64> = observed
        .iter()
        .map(|((w1, w2), v2)| (v2 - 100.0 * f64::from(*w2) / f64::from(w1 + w2)).abs())
        .collect();
    let moved = observed
        .iter()
        .filter(|((w1, w2), v2)| (w2 > w1) == (*v2 > 50.0))
        .count();
    Verify {
        requests_per_change: requests,
        moved,
        checked: observed.len(),
        max_error_points: round3(errors.iter().copied().fold(0.0, f64::max)),
        mean_error_points: round3(errors.iter().sum::<f64>() / errors.len().max(1) as f64),
    }
}

/// The weights set and the web-v2 share observed after them, in percent.
type Observed = ((u32, u32), f64);

fn elapsed(found: &[Found]) -> Vec<Duration> {
    found.iter().map(|f| f.elapsed).collect()
}

fn samples(found: &[Found]) -> Vec<Millis> {
    found.iter().map(|f| millis(f.elapsed)).collect()
}

fn mean_period_ms(found: &[Found]) -> f64 {
    let sum: f64 = found.iter().map(|f| f.period().as_secs_f64() * 1e3).sum();
    round3(sum / found.len().max(1) as f64)
}

/// The end of the client sidecar's and the controller's logs, for failures.
fn logs(shop: &Shop) -> String {
    let tail = |log: String| {
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    format!(
        "--- client sidecar log ---\n{}\n--- controller log ---\n{}",
        tail(shop.client.process.log()),
        tail(shop.controller.log())
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "TrafficSplit change in the files source, {} changes (90/10 <-> 10/90)",
            self.changes
        )?;
        writeln!(f, "  {:<28} {}", "rename -> proxy (ms)", self.to_proxy_ms)?;
        writeln!(
            f,
            "  {:<28} {}",
            "rename -> controller (ms)", self.to_controller_ms
        )?;
        writeln!(
            f,
            "  resolution: polled every {:.2} ms (sidecar /metrics), {:.2} ms (controller /index)",
            self.proxy_poll_period_ms, self.controller_poll_period_ms
        )?;
        write!(
            f,
            "  policy updates per change at the sidecar: {:.2}",
            self.updates_per_change
        )?;
        if let Some(v) = &self.verify {
            write!(
                f,
                "\n  verify: split moved after {}/{} changes ({} requests each); web-v2 share off by {:.1} points on average, {:.1} at most",
                v.moved, v.checked, v.requests_per_change, v.mean_error_points, v.max_error_points
            )?;
        }
        Ok(())
    }
}
