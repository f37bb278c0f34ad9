//! A private L2 network of pods: a switch namespace with a bridge, one namespace per pod.

use crate::{
    cmd::{CmdError, run},
    pod::Pod,
    process::Process,
};
use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

/// Why a network or pod could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A prerequisite (root, `ip`, netns support) is missing.
    #[error("local mode needs {0}")]
    Prerequisite(String),
    /// A host command failed.
    #[error(transparent)]
    Cmd(#[from] CmdError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// More pods than the subnet holds.
    #[error("a network holds at most 250 pods")]
    Full,
}

const NETNS_DIR: &str = "/run/netns";
const PREFIX: &str = "weft-";

/// Checks what local mode needs: root, `ip` with netns support, `setpriv`.
pub fn check_prerequisites() -> Result<(), NetworkError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(NetworkError::Prerequisite(
            "root (it creates network namespaces and iptables rules); run it with sudo".into(),
        ));
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("setpriv", "util-linux"),
        ("iptables", "iptables"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(NetworkError::Prerequisite(format!(
                "`{tool}` in PATH (Debian/Ubuntu: apt-get install {package})"
            )));
        }
    }
    Ok(())
}

/// Whether this host can run a test that needs local mode (see [`check_prerequisites`]). In CI
/// (`CI=true`) a missing prerequisite fails the test: this panics, naming `test`. Elsewhere the
/// test says why it does not run, and should return.
pub fn prerequisites_met(test: &str) -> bool {
    match check_prerequisites() {
        Ok(()) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: local-mode prerequisites missing in CI: {e}")
        }
        Err(e) => {
            eprintln!("{test}: not run here: {e}");
            false
        }
    }
}

/// A bridge and the pods on it. Dropping it removes everything it made.
#[derive(Debug)]
pub struct Network {
    id: String,
    switch: String,
    next_host: AtomicU32,
    state: Arc<Mutex<State>>,
    logs: PathBuf,
}

#[derive(Debug, Default)]
struct State {
    namespaces: Vec<String>,
    processes: Vec<Process>,
    etc_dirs: Vec<PathBuf>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Network {
    /// The subnet every network uses; networks are isolated from each other and the host.
    pub const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 0);

    /// Creates the switch namespace and its bridge.
    pub fn new() -> Result<Self, NetworkError> {
        check_prerequisites()?;
        sweep_stale();
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let logs = std::env::temp_dir().join(&id);
        std::fs::create_dir_all(&logs).map_err(|source| NetworkError::Io {
            path: logs.clone(),
            source,
        })?;
        let net = Self {
            switch: format!("{id}-sw"),
            id,
            next_host: AtomicU32::new(2),
            state: Arc::default(),
            logs,
        };
        net.add_namespace(&net.switch)?;
        let sw = net.switch.as_str();
        run("ip", &["-n", sw, "link", "add", "br0", "type", "bridge"])?;
        run(
            "ip",
            &["-n", sw, "addr", "add", "10.42.0.1/24", "dev", "br0"],
        )?;
        run(
            "ip",
            &[
                "-n",
                sw,
                "-6",
                "addr",
                "add",
                "fd42::1/64",
                "dev",
                "br0",
                "nodad",
            ],
        )?;
        run("ip", &["-n", sw, "link", "set", "br0", "up"])?;
        Ok(net)
    }

    /// Adds a pod: a namespace with `eth0` on the bridge, an IPv4 and an IPv6 address, and
    /// default routes through the bridge.
    pub fn pod(&self, name: &str) -> Result<Pod, NetworkError> {
        let host = self.next_host.fetch_add(1, Ordering::Relaxed);
        let host8 = u8::try_from(host)
            .ok()
            .filter(|h| *h < 252)
            .ok_or(NetworkError::Full)?;
        let netns = format!("{}-{name}", self.id);
        self.add_namespace(&netns)?;
        let (ns, sw) = (netns.as_str(), self.switch.as_str());
        let veth = format!("v{host}");
        run(
            "ip",
            &[
                "-n", sw, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        )?;
        run(
            "ip",
            &["-n", sw, "link", "set", &veth, "master", "br0", "up"],
        )?;
        let ip = Ipv4Addr::new(10, 42, 0, host8);
        let ip6 = Ipv6Addr::new(0xfd42, 0, 0, 0, 0, 0, 0, u16::from(host8));
        run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        run(
            "ip",
            &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
        )?;
        run(
            "ip",
            &[
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &format!("{ip6}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        )?;
        run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
        run(
            "ip",
            &["-n", ns, "route", "add", "default", "via", "10.42.0.1"],
        )?;
        run(
            "ip",
            &["-n", ns, "-6", "route", "add", "default", "via", "fd42::1"],
        )?;
        Ok(Pod {
            name: name.to_string(),
            netns,
            ip,
            ip6,
            network: self.handle(),
        })
    }

    /// Writes `/etc/netns/<pod>/hosts`, which `ip netns exec` mounts over `/etc/hosts`, so
    /// processes in the pod resolve service names as on a cluster.
    pub fn set_hosts(
        &self,
        pod: &Pod,
        entries: &[(std::net::IpAddr, String)],
    ) -> Result<(), NetworkError> {
        let dir = Path::new("/etc/netns").join(&pod.netns);
        let io = |source| NetworkError::Io {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        self.lock().etc_dirs.push(dir.clone());
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for (ip, name) in entries {
            text.push_str(&format!("{ip} {name}\n"));
        }
        std::fs::write(dir.join("hosts"), text).map_err(io)
    }

    /// The network's name; every namespace it makes starts with it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where process logs of this network are written.
    pub fn log_dir(&self) -> &Path {
        &self.logs
    }

    pub(crate) fn handle(&self) -> NetworkHandle {
        NetworkHandle {
            state: self.state.clone(),
            logs: self.logs.clone(),
        }
    }

    fn add_namespace(&self, name: &str) -> Result<(), NetworkError> {
        run("ip", &["netns", "add", name])?;
        self.lock().namespaces.push(name.to_string());
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let mut state = self.lock();
        let panicking = std::thread::panicking();
        for p in state.processes.drain(..) {
            p.kill();
            if panicking {
                eprintln!("--- log of {} ---\n{}", p.name(), tail(&p.log(), 40));
            }
        }
        // Pods first, then the switch: deleting a namespace deletes its links and rules.
        for ns in state.namespaces.drain(..).rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", &ns])
                .stderr(Stdio::null())
                .status();
        }
        for dir in state.etc_dirs.drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
        if !panicking {
            let _ = std::fs::remove_dir_all(&self.logs);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What pods need of their network: a place to register processes and logs.
#[derive(Clone, Debug)]
pub(crate) struct NetworkHandle {
    state: Arc<Mutex<State>>,
    logs: PathBuf,
}

impl NetworkHandle {
    pub(crate) fn register(&self, p: Process) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .processes
            .push(p);
    }

    pub(crate) fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }
}

/// Removes namespaces left by Weft processes that no longer exist (killed before cleanup).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip")
                .args(["netns", "del", &name])
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&name));
        }
    }
}
