//! The controller's memory at scale, and how fast a change reaches its watcher with every
//! stream open.
//!
//! A generated cluster ([`Scale`]) is written to a temporary directory, one file per
//! namespace, and `weft-controller --source files` is started on it in this host's network
//! namespace, on loopback ports picked free. Its memory is read from `/proc/<pid>/status`
//! (`VmRSS` now, `VmHWM` the peak so far) once it has loaded everything, again with an
//! `OutboundPolicies.Watch` and a `Destination.Get` open per service, and again after one
//! split has been rewritten a number of times: each rewrite is timed to the message on that
//! split's policy stream, and in a second pass to the controller's `/index` showing the reload.

use super::{
    BoxError, Error, Summary,
    admin::Index,
    poll::{self, Found},
    process::Memory,
    round3,
    scale::{Counts, ManifestFile, SPLIT_WEIGHTS, Scale},
    streams::{self, Streams},
};
use controller::{Running, start, wait_loaded};
use serde::Serialize;
use std::{
    path::Path,
    time::{Duration, Instant},
};
use tokio::runtime::Runtime;
use weft_cli_local::manifests;

mod controller;
mod report;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    /// The cluster to generate.
    pub scale: Scale,
    /// Streams per HTTP/2 connection (a proxy holds one connection with a stream per target).
    pub streams_per_connection: usize,
    /// Split changes timed in each pass (none when there are fewer than ten services).
    pub changes: usize,
    /// How often to poll `/index`.
    pub poll: Duration,
    /// Quiet time after each change.
    pub pause: Duration,
    /// How long loading, or one change, may take before the run fails.
    pub timeout: Duration,
}

/// What was measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Objects generated (and counted by the controller).
    pub objects: Counts,
    /// Manifest files written.
    pub files: usize,
    /// Their size.
    pub manifest_bytes: u64,
    /// From starting the process to `/index` showing every object.
    pub load_s: f64,
    /// Loaded, no streams.
    pub idle: Memory,
    /// Policy watches opened, one per service.
    pub outbound_streams: usize,
    /// Endpoint streams opened, one per service.
    pub destination_streams: usize,
    /// HTTP/2 connections they share.
    pub connections: usize,
    /// Opening them all, first messages included.
    pub open_s: f64,
    /// The controller's `watches` count with them open.
    pub watches: u64,
    /// With every stream open.
    pub with_streams: Memory,
    /// Rename of the changed file to the message on the split's policy stream.
    pub change_to_watcher_ms: Summary,
    /// Rename to `/index` showing a new generation.
    pub change_to_index_ms: Summary,
    /// The average time between polls of `/index`: that pass's resolution.
    pub index_poll_period_ms: f64,
    /// Messages on other streams during the timed changes (0 when only the changed split's
    /// watchers hear of it).
    pub other_messages: u64,
    /// After the changes.
    pub after_changes: Memory,
}

#[derive(Clone, Copy)]
struct Timing {
    poll: Duration,
    pause: Duration,
    timeout: Duration,
}

/// Runs the benchmark; the controller is killed and the directory removed however it ends.
pub fn run(config: &Config) -> Result<Report, Error> {
    let scale = config.scale;
    let objects = scale.validate().map_err(|e| Error::Failed {
        what: e.to_string(),
        log: String::new(),
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::setup("start a tokio runtime"))?;
    let (mut controller, files, manifest_bytes) = start(&scale)?;
    let loaded = wait_loaded(&mut controller, &rt, &objects, config.timeout)?;
    let load_s = (loaded - controller.started).as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let idle = controller.memory()?;

    // The first split's root: its policy stream is the one timed.
    let watched = scale.split_roots().next();
    let per_connection = config.streams_per_connection;
    let opened = streams::open(controller.grpc, &scale, per_connection, watched);
    let mut open = rt
        .block_on(opened)
        .map_err(|e| controller.failed(e.to_string()))?;
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });
    let with_streams = controller.memory()?;
    let watches = rt
        .block_on(Index::get(controller.admin))
        .map_err(Error::setup("read the controller's /index"))?
        .count("watches");

    let timing = Timing {
        poll: config.poll,
        pause: config.pause,
        timeout: config.timeout,
    };
    let changes = match watched {
        Some(root) => time_changes(&controller, &rt, &mut open, root, config.changes, timing)?,
        None => Changes::default(),
    };
    if let Some(status) = controller.process.exited() {
        return Err(controller.failed(format!("weft-controller exited ({status})")));
    }
    let after_changes = controller.memory()?;
    Ok(Report {
        objects,
        files,
        manifest_bytes,
        load_s: round3(load_s),
        idle,
        outbound_streams: scale.services,
        destination_streams: scale.services,
        connections: open.connections,
        open_s: round3(open.opened_in.as_secs_f64()),
        watches,
        with_streams,
        change_to_watcher_ms: Summary::of(&changes.to_watcher),
        change_to_index_ms: Summary::of(&changes.to_index),
        index_poll_period_ms: round3(mean_ms(&changes.periods)),
        other_messages: changes.other_messages,
        after_changes,
    })
}

/// What the timed split changes measured.
#[derive(Default)]
struct Changes {
    to_watcher: Vec<Duration>,
    to_index: Vec<Duration>,
    periods: Vec<Duration>,
    other_messages: u64,
}

/// Rewrites the split rooted at Service `root` `n` times timing each to its policy stream,
/// then `n` times timing each to `/index`.
fn time_changes(
    c: &Running,
    rt: &Runtime,
    streams: &mut Streams,
    root: usize,
    n: usize,
    timing: Timing,
) -> Result<Changes, Error> {
    let scale = c.scale;
    // Alternates, so every rewrite changes the split.
    let change = |k: usize| {
        let weights = if k.is_multiple_of(2) {
            (10, 90)
        } else {
            SPLIT_WEIGHTS
        };
        let weights = |i| if i == root { weights } else { SPLIT_WEIGHTS };
        scale.file(scale.namespace_of(root), weights)
    };
    let mut changes = Changes::default();
    for k in 0..n {
        let timed = to_stream(&c.dir, change(k), streams, timing);
        let (latency, others) = rt.block_on(timed).map_err(|e| c.failed(e))?;
        changes.to_watcher.push(latency);
        changes.other_messages += others;
    }
    for k in n..2 * n {
        let found = index_change(c, change(k), timing).map_err(|e| c.failed(e))?;
        changes.to_index.push(found.elapsed);
        changes.periods.push(found.period());
        // Let the stream readers take what this change sent.
        rt.block_on(async { tokio::time::sleep(timing.pause).await });
    }
    Ok(changes)
}
/// Writes `file` and waits for the timed policy stream's next message; how long that took,
/// and how many messages other streams got meanwhile and during the pause after it.
async fn to_stream(
    dir: &Path,
    file: ManifestFile,
    streams: &mut Streams,
    timing: Timing,
) -> Result<(Duration, u64), String> {
    while streams.watched.try_recv().is_ok() {}
    let others = streams.later();
    let start = Instant::now();
    manifests::write(dir, &file.name, &file.text).map_err(|e| e.to_string())?;
    let arrived = tokio::time::timeout(timing.timeout, streams.watched.recv()).await;
    let at = match arrived {
        Ok(Some(at)) => at,
        Ok(None) => return Err("the timed policy stream ended".into()),
        Err(_) => return Err(format!("no policy update within {:?}", timing.timeout)),
    };
    tokio::time::sleep(timing.pause).await;
    let others = (streams.later() - others).saturating_sub(1);
    Ok((at - start, others))
}

/// Writes `file` and polls `/index` until its generation grows, on a thread of its own.
fn index_change(c: &Running, file: ManifestFile, timing: Timing) -> Result<Found, String> {
    let (dir, admin) = (c.dir.clone(), c.admin);
    let polled = poll::on_thread(move || async move {
        let before = Index::get(admin).await?.files.generation;
        let start = Instant::now();
        manifests::write(&dir, &file.name, &file.text)?;
        poll::until(start, timing.poll, timing.timeout, || async {
            let generation = Index::get(admin).await?.files.generation;
            Ok::<_, BoxError>(generation > before)
        })
        .await
    });
    match polled {
        Ok(Ok(Some(found))) => Ok(found),
        Ok(Ok(None)) => Err(format!("no new generation within {:?}", timing.timeout)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("cannot start a polling thread: {e}")),
    }
}

fn mean_ms(periods: &[Duration]) -> f64 {
    periods.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / periods.len().max(1) as f64
}
