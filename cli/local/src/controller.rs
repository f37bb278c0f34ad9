//! The controller in local mode: `weft-controller --source files` in a pod of its own, so every
//! proxy reaches it over the bridge as it would reach the controller's Service in a cluster.

use crate::{LocalIdentity, Network, NetworkError, Pod, Process, bin_path};
use nix::sys::signal::Signal;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

/// The destination and policy gRPC port.
pub const GRPC_PORT: u16 = 8086;
/// The admin port.
pub const ADMIN_PORT: u16 = 9990;
/// The identity (`Certify`) gRPC port.
pub const IDENTITY_PORT: u16 = 8080;

/// The identity settings the controller runs with.
#[derive(Clone, Debug)]
pub struct IdentityArgs {
    /// The trust anchors, issuer certificate and key, and token registry files.
    pub files: [PathBuf; 4],
    /// How long issued certificates live (`--leaf-lifetime`).
    pub leaf_lifetime: Duration,
}

impl IdentityArgs {
    /// The files of `identity`, with leaves of `leaf_lifetime`.
    pub fn new(identity: &LocalIdentity, leaf_lifetime: Duration) -> Self {
        Self {
            files: [
                identity.anchors_path(),
                identity.issuer_cert_path(),
                identity.issuer_key_path(),
                identity.registry_path(),
            ],
            leaf_lifetime,
        }
    }
}

/// A running (or stopped) `weft-controller` reading a directory.
#[derive(Debug)]
pub struct Controller {
    /// Its pod.
    pub pod: Pod,
    /// The manifests directory it reads.
    pub dir: PathBuf,
    identity: Option<IdentityArgs>,
    process: Option<Process>,
}

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The pod could not be made.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The binary is missing.
    #[error(transparent)]
    Bin(#[from] crate::BinError),
    /// It did not start.
    #[error("weft-controller did not start: {why}\n{log}")]
    Start {
        /// What went wrong.
        why: String,
        /// Its log.
        log: String,
    },
}

impl Controller {
    /// Makes the `weft-controller` pod and starts the controller on `dir`, issuing
    /// certificates if `identity` is given (without it, mTLS is off).
    pub fn start(
        net: &Network,
        dir: &Path,
        identity: Option<IdentityArgs>,
    ) -> Result<Self, ControllerError> {
        Self::start_named(net, "weft-controller", dir, identity)
    }

    /// [`Controller::start`] in a pod named `name` (a second controller, e.g. another mesh).
    pub fn start_named(
        net: &Network,
        name: &str,
        dir: &Path,
        identity: Option<IdentityArgs>,
    ) -> Result<Self, ControllerError> {
        let pod = net.pod(name)?;
        let mut this = Self {
            pod,
            dir: dir.to_path_buf(),
            identity,
            process: None,
        };
        this.restart()?;
        Ok(this)
    }

    /// The address proxies use (`WEFT_PROXY_CONTROLLER_ADDR`).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.pod.ip.into(), GRPC_PORT)
    }

    /// The address proxies certify at (`WEFT_PROXY_IDENTITY_ADDR`).
    pub fn identity_addr(&self) -> SocketAddr {
        SocketAddr::new(self.pod.ip.into(), IDENTITY_PORT)
    }

    /// Stops the controller (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            let _ = p.signal(Signal::SIGTERM);
            if p.wait_timeout(Duration::from_secs(5)).is_none() {
                let _ = p.signal(Signal::SIGKILL);
                let _ = p.wait_timeout(Duration::from_secs(5));
            }
        }
    }

    /// Starts the controller again (stopping it first if it runs), and waits until it listens.
    pub fn restart(&mut self) -> Result<(), ControllerError> {
        self.stop();
        let bin = bin_path("weft-controller")?;
        // If whoever started it dies without cleaning up (Ctrl-C), so does the controller.
        let mut cmd = self.pod.command("setpriv");
        cmd.arg("--pdeathsig=KILL")
            .arg(&bin)
            .args(["--source", "files", "--dir"])
            .arg(&self.dir)
            .args(["--grpc-addr", &format!("0.0.0.0:{GRPC_PORT}")])
            .args(["--admin-addr", &format!("0.0.0.0:{ADMIN_PORT}")])
            .env("WEFT_CONTROLLER_LOG", "info");
        let mut ports = vec![GRPC_PORT, ADMIN_PORT];
        if let Some(id) = &self.identity {
            let [anchors, cert, key, registry] = &id.files;
            cmd.arg("--trust-anchors")
                .arg(anchors)
                .arg("--issuer-cert")
                .arg(cert)
                .arg("--issuer-key")
                .arg(key)
                .arg("--token-registry")
                .arg(registry)
                .args(["--identity-addr", &format!("0.0.0.0:{IDENTITY_PORT}")])
                .args([
                    "--leaf-lifetime",
                    &format!("{}s", id.leaf_lifetime.as_secs()),
                ]);
            ports.push(IDENTITY_PORT);
        }
        let process = self
            .pod
            .start("controller", cmd)
            .map_err(|e| ControllerError::Start {
                why: e.to_string(),
                log: String::new(),
            })?;
        let listening = self.pod.wait_listening(&ports, Duration::from_secs(10));
        if let Err(e) = listening {
            return Err(ControllerError::Start {
                why: e.to_string(),
                log: process.log(),
            });
        }
        self.process = Some(process);
        Ok(())
    }

    /// The controller's log so far.
    pub fn log(&self) -> String {
        self.process.as_ref().map(Process::log).unwrap_or_default()
    }
}
