//! The controller under test: a generated cluster in a temporary directory and
//! `weft-controller --source files` on it, on free loopback ports.

use crate::control::{
    BoxError, Error,
    admin::Index,
    process::{KillOnDrop, Memory, TempDir},
    scale::{Counts, Scale},
};
use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tokio::runtime::Runtime;
use weft_cli_local::{bin_path, manifests};

/// The controller under test. Fields drop in order: the process is killed before its
/// directory is removed.
pub(super) struct Running {
    pub(super) process: KillOnDrop,
    pub(super) scale: Scale,
    pub(super) dir: PathBuf,
    pub(super) grpc: SocketAddr,
    pub(super) admin: SocketAddr,
    /// When the process was started.
    pub(super) started: Instant,
    _tmp: TempDir,
}

/// Writes the cluster and starts the controller on it.
pub(super) fn start(scale: &Scale) -> Result<(Running, usize, u64), Error> {
    let bin = bin_path("weft-controller").map_err(Error::setup("find weft-controller"))?;
    let tmp = TempDir::new("memory").map_err(Error::setup("make a temporary directory"))?;
    let dir = tmp.path().join("manifests");
    let written = write_cluster(scale, &dir);
    let (files, bytes) = written.map_err(Error::setup(format!(
        "write manifests to {}",
        dir.display()
    )))?;
    let (grpc, admin) = free_ports().map_err(Error::setup("find free loopback ports"))?;
    let args = [
        "--source",
        "files",
        "--dir",
        &dir.display().to_string(),
        "--grpc-addr",
        &grpc.to_string(),
        "--admin-addr",
        &admin.to_string(),
    ]
    .map(String::from);
    let log = tmp.path().join("controller.log");
    let started = Instant::now();
    let process = KillOnDrop::spawn(&bin, &args, &log).map_err(Error::setup(format!(
        "start {} under setpriv",
        bin.display()
    )))?;
    let running = Running {
        process,
        scale: *scale,
        dir,
        grpc,
        admin,
        started,
        _tmp: tmp,
    };
    Ok((running, files, bytes))
}

/// Writes one file per namespace into `dir` (made first); how many files and bytes.
fn write_cluster(scale: &Scale, dir: &Path) -> Result<(usize, u64), BoxError> {
    std::fs::create_dir_all(dir)?;
    let files = scale.files()?;
    let mut bytes = 0;
    for file in &files {
        manifests::write(dir, &file.name, &file.text)?;
        bytes += file.text.len() as u64;
    }
    Ok((files.len(), bytes))
}

/// Two loopback ports nothing listens on (now): the OS picks them.
fn free_ports() -> std::io::Result<(SocketAddr, SocketAddr)> {
    let a = TcpListener::bind("127.0.0.1:0")?;
    let b = TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?, b.local_addr()?))
}

/// Waits until `/index` reports a load with exactly `objects` and no invalid document; when.
pub(super) fn wait_loaded(
    c: &mut Running,
    rt: &Runtime,
    objects: &Counts,
    timeout: Duration,
) -> Result<Instant, Error> {
    let deadline = Instant::now() + timeout;
    let index = loop {
        if let Some(status) = c.process.exited() {
            return Err(c.failed(format!("weft-controller exited while loading ({status})")));
        }
        let last = match rt.block_on(Index::get(c.admin)) {
            Ok(index) if index.files.generation >= 1 => break index,
            Ok(index) => format!("{index:?}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("loading the manifests (last /index: {last})"),
                after: timeout,
                log: c.process.log_tail(20),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let when = Instant::now();
    let expected = [
        ("namespaces", objects.namespaces),
        ("services", objects.services),
        ("endpointslices", objects.endpointslices),
        ("pods", objects.pods),
        ("trafficsplits", objects.trafficsplits),
    ];
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(kind, n)| index.count(kind) != *n as u64)
        .map(|(kind, n)| format!("{kind}: {} of {n}", index.count(kind)))
        .collect();
    if !wrong.is_empty() || !index.files.invalid.is_empty() {
        let invalid: Vec<&String> = index.files.invalid.iter().take(3).collect();
        let what = format!("the controller loaded {wrong:?}, invalid documents {invalid:?}");
        return Err(c.failed(what));
    }
    Ok(when)
}

// === impl Running ===

impl Running {
    pub(super) fn memory(&self) -> Result<Memory, Error> {
        Memory::of(self.process.pid()).map_err(Error::setup("read the controller's memory"))
    }

    /// A failure, with the end of the controller's log.
    pub(super) fn failed(&self, what: String) -> Error {
        Error::Failed {
            what,
            log: format!("--- controller log ---\n{}", self.process.log_tail(20)),
        }
    }
}
