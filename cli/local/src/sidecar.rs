//! A pod's sidecar as the injector would make it: `weft-init` rules, then `weft-proxy` running
//! as its own UID with no capabilities.

use crate::{
    bins::{BinError, bin_path},
    http::get,
    pod::Pod,
    process::Process,
};
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

/// The proxy's UID: `weft-init` exempts its connections from the outbound redirect.
pub const PROXY_UID: u32 = 2102;

/// Why a sidecar did not come up.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// A binary is missing.
    #[error(transparent)]
    Bin(#[from] BinError),
    /// `weft-init` failed.
    #[error("weft-init in pod {pod} failed: {output}")]
    Init {
        /// The pod.
        pod: String,
        /// What it printed.
        output: String,
    },
    /// The proxy could not be started.
    #[error("cannot start weft-proxy in pod {pod}: {source}")]
    Spawn {
        /// The pod.
        pod: String,
        /// Why.
        source: std::io::Error,
    },
    /// The proxy exited or never became ready.
    #[error("weft-proxy in pod {pod} did not become ready: {why}\n--- its log ---\n{log}")]
    NotReady {
        /// The pod.
        pod: String,
        /// What was seen.
        why: String,
        /// The proxy's log.
        log: String,
    },
}

/// A running sidecar proxy.
#[derive(Clone, Debug)]
pub struct Sidecar {
    /// Its pod.
    pub pod: Pod,
    /// The proxy process.
    pub process: Process,
    admin: SocketAddr,
}

impl Sidecar {
    /// Programs the redirect with `weft-init init_args…` and starts the proxy with `env`
    /// (`WEFT_PROXY_*` pairs), waiting until `/ready` answers 200.
    pub fn inject(
        pod: &Pod,
        init_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, SidecarError> {
        let init = bin_path("weft-init")?;
        let proxy = bin_path("weft-proxy")?;
        let out = pod
            .command(&init.to_string_lossy())
            .args(init_args)
            .output()
            .map_err(|source| SidecarError::Spawn {
                pod: pod.name.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(SidecarError::Init {
                pod: pod.name.clone(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        let mut cmd = pod.command("setpriv");
        cmd.arg(format!("--reuid={PROXY_UID}"))
            .arg(format!("--regid={PROXY_UID}"))
            .arg("--clear-groups")
            .arg("--inh-caps=-all")
            // If the process that started it dies without cleaning up, so does the proxy.
            .arg("--pdeathsig=KILL")
            .arg(&proxy)
            .env("WEFT_PROXY_LOG", "warn,weft_proxy=info")
            .env("WEFT_PROXY_WORKLOAD", format!("local/{}", pod.name))
            .envs(env.iter().copied());
        let process = pod
            .start("proxy", cmd)
            .map_err(|source| SidecarError::Spawn {
                pod: pod.name.clone(),
                source,
            })?;
        let admin = env
            .iter()
            .find(|(k, _)| *k == "WEFT_PROXY_ADMIN_ADDR")
            .and_then(|(_, v)| v.split(',').next()?.trim().parse::<SocketAddr>().ok())
            .map(|a| SocketAddr::new([127, 0, 0, 1].into(), a.port()))
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4191)));
        let sidecar = Self {
            pod: pod.clone(),
            process,
            admin,
        };
        sidecar.wait_ready(Duration::from_secs(10))?;
        Ok(sidecar)
    }

    fn wait_ready(&self, timeout: Duration) -> Result<(), SidecarError> {
        let deadline = Instant::now() + timeout;
        let not_ready = |why: String| SidecarError::NotReady {
            pod: self.pod.name.clone(),
            why,
            log: self.process.log(),
        };
        loop {
            if let Some(status) = self.process.try_wait() {
                return Err(not_ready(format!("it exited ({status})")));
            }
            match get(&self.pod, self.admin, "/ready") {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) if Instant::now() >= deadline => {
                    return Err(not_ready(format!("/ready answered {status}: {body}")));
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(not_ready(format!("/ready: {e}")));
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The proxy's `/metrics` text.
    pub fn metrics(&self) -> String {
        match get(&self.pod, self.admin, "/metrics") {
            Ok((200, body)) => body,
            Ok((status, body)) => format!("# /metrics answered {status}: {body}"),
            Err(e) => format!("# /metrics failed: {e}"),
        }
    }

    /// The admin address, as seen from inside the pod.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }
}
