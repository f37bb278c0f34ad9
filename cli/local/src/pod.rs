//! A pod: a network namespace with one address on the network's bridge.

use crate::{network::NetworkHandle, process::Process};
use std::{
    fs::File,
    future::Future,
    net::{Ipv4Addr, Ipv6Addr},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

/// A pod of a [`crate::Network`].
#[derive(Clone, Debug)]
pub struct Pod {
    /// The pod's short name.
    pub name: String,
    /// Its network namespace (`ip netns` name).
    pub netns: String,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its IPv6 address.
    pub ip6: Ipv6Addr,
    pub(crate) network: NetworkHandle,
}

/// A task running on a thread of its own with a current-thread tokio runtime, in a pod's
/// network namespace (or the caller's); stopped and joined on drop.
#[derive(Debug)]
pub struct Background {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Pod {
    /// Runs `f` to completion on a thread inside the pod's network namespace, with a
    /// current-thread tokio runtime: every socket it opens belongs to the pod.
    pub fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let netns = self.netns.clone();
        let thread = std::thread::spawn(move || {
            enter(&netns);
            runtime().block_on(f())
        });
        match thread.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Starts `f` in the background inside the pod; it runs until the handle is dropped.
    pub fn spawn<F, Fut>(&self, f: F) -> Background
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        Background::start(Some(&self.netns), f)
    }

    /// Waits until something in the pod accepts connections on each of `ports` (on loopback).
    pub fn wait_listening(
        &self,
        ports: &[u16],
        timeout: std::time::Duration,
    ) -> std::io::Result<()> {
        let ports = ports.to_vec();
        self.run(move || async move {
            let deadline = tokio::time::Instant::now() + timeout;
            for port in ports {
                loop {
                    match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(_) => break,
                        Err(e) if tokio::time::Instant::now() >= deadline => {
                            return Err(std::io::Error::new(
                                e.kind(),
                                format!("nothing listens on port {port}: {e}"),
                            ));
                        }
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                    }
                }
            }
            Ok(())
        })
    }

    /// A command run in the pod through `ip netns exec` (which also mounts
    /// `/etc/netns/<pod>/hosts` over `/etc/hosts`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, program]);
        cmd
    }

    /// Starts `cmd` (from [`Pod::command`]) with output to a log file; the network kills it on
    /// drop.
    pub fn start(&self, name: &str, mut cmd: Command) -> std::io::Result<Process> {
        let log = self.network.log_path(&format!("{}-{name}", self.name));
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()?;
        let p = Process {
            name: format!("{}/{name}", self.name),
            child: Arc::new(Mutex::new(child)),
            log,
        };
        self.network.register(p.clone());
        Ok(p)
    }
}

/// Moves this thread into `netns`. A pod thread that cannot enter its namespace must not run
/// its code in the host's, so this panics (the panic is re-raised where the pod is used).
fn enter(netns: &str) {
    let path = format!("/run/netns/{netns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("cannot enter network namespace {netns}: {e}"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build a tokio runtime: {e}"))
}

impl Background {
    /// Starts `f` in the background in the caller's network namespace; it runs until the
    /// handle is dropped.
    pub(crate) fn here<F, Fut>(f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        Self::start(None, f)
    }

    /// Starts `f` on a new thread, first moved into `netns` if given, and returns once its
    /// runtime runs (or the thread has died).
    fn start<F, Fut>(netns: Option<&str>, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let netns = netns.map(str::to_string);
        let thread = std::thread::spawn(move || {
            if let Some(netns) = netns {
                enter(&netns);
            }
            runtime().block_on(async move {
                let _ = ready_tx.send(());
                tokio::select! {
                    () = f() => {}
                    _ = rx => {}
                }
            });
        });
        let _ = ready_rx.recv();
        Self {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
