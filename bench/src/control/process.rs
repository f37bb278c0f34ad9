//! Processes and directories the benchmark owns: killed and removed on drop, also when the
//! benchmark fails; left over only if it is killed outright, and then swept by the next run.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

/// A child process, killed and reaped on drop.
#[derive(Debug)]
pub struct KillOnDrop {
    child: Child,
    log: PathBuf,
}

impl KillOnDrop {
    /// Starts `program args…` with stdout and stderr to `log`. It runs under
    /// `setpriv --pdeathsig=KILL`, which execs it (same pid), so it dies with this process even
    /// when this process is killed before it can clean up.
    pub fn spawn(program: &Path, args: &[String], log: &Path) -> std::io::Result<Self> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = Command::new("setpriv")
            .arg("--pdeathsig=KILL")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        Ok(Self {
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A directory under the system's temporary directory named after this process, removed on
/// drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

const TEMP_PREFIX: &str = "weft-bench-control-";

impl TempDir {
    /// Creates `$TMPDIR/weft-bench-control-<pid>-<name>`, first removing any such directories
    /// of processes that no longer exist.
    pub fn new(name: &str) -> std::io::Result<Self> {
        sweep_stale();
        let path = std::env::temp_dir().join(format!("{TEMP_PREFIX}{}-{name}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(TEMP_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A process's memory, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Resident set size now (`VmRSS`), in bytes.
    pub rss_bytes: u64,
    /// The highest resident set size so far (`VmHWM`), in bytes.
    pub hwm_bytes: u64,
}

impl Memory {
    /// Reads `/proc/<pid>/status`.
    pub fn of(pid: u32) -> std::io::Result<Self> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path)?;
        Self::parse(&text).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{path} has no VmRSS and VmHWM lines"),
            )
        })
    }

    /// Reads the `VmRSS` and `VmHWM` lines (in kB) of a `status` file.
    pub fn parse(status: &str) -> Option<Self> {
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
                .map(|kb| kb * 1024)
        };
        Some(Self {
            rss_bytes: kb("VmRSS:")?,
            hwm_bytes: kb("VmHWM:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_high_water_mark() {
        let status =
            "Name:\tweft-controller\nVmPeak:\t  100 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss_bytes: 1024 * 1024,
                hwm_bytes: 2048 * 1024
            })
        );
        assert_eq!(Memory::parse("Name:\tx\n"), None);
        let me = Memory::of(std::process::id()).expect("our own status");
        assert!(me.rss_bytes > 0 && me.hwm_bytes >= me.rss_bytes, "{me:?}");
    }

    #[test]
    fn kills_its_child_and_removes_its_directory() {
        let dir = TempDir::new("test-kill").expect("a temp dir");
        let path = dir.path().to_path_buf();
        let log = path.join("sleep.log");
        let sleep = KillOnDrop::spawn(Path::new("sleep"), &["30".to_string()], &log)
            .expect("setpriv and sleep");
        let pid = sleep.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(sleep);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "reaped");
        drop(dir);
        assert!(!path.exists());
    }
}
