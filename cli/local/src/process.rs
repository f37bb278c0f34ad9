//! Processes started in pods, stopped when their network goes away.

use nix::{sys::signal::Signal, unistd::Pid};
use std::{
    path::PathBuf,
    process::{Child, ExitStatus},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A process running in a pod. Clones share it; the [`crate::Network`] kills it on drop.
#[derive(Clone, Debug)]
pub struct Process {
    pub(crate) name: String,
    pub(crate) child: Arc<Mutex<Child>>,
    pub(crate) log: PathBuf,
}

impl Process {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.lock().id()
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        let pid = i32::try_from(self.pid()).map_err(|_| nix::Error::ESRCH)?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal)
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&self) -> Option<ExitStatus> {
        self.lock().try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What it printed (stdout and stderr go to one log file).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn kill(&self) {
        let mut child = self.lock();
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        // A panic while holding the lock leaves the Child itself intact.
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }
}
