//! Weft local mode: "pods" as network namespaces on a private bridge, on one Linux host.
//!
//! Each [`Network`] gets its own switch namespace holding the bridge, so nothing is added to
//! the host's own network namespace, and every pod is a namespace with one veth on that
//! bridge. Everything a network creates (namespaces, links, rules inside them, processes,
//! `/etc/netns` files) is removed when it is dropped, also while a test panics; namespaces left
//! by a process that was killed outright are swept by the next run.
//!
//! The demo (`weft demo`) and the end-to-end tests both stand on this crate.

#![forbid(unsafe_code)]

mod bins;
mod cmd;
pub mod controller;
mod http;
pub mod identity;
pub mod manifests;
mod network;
pub mod otlp;
mod pod;
mod process;
pub mod shop;
mod sidecar;
pub mod traffic;

pub use bins::{BinError, bin_path};
pub use cmd::{CmdError, run};
pub use controller::{Controller, ControllerError};
pub use http::{get, metric_sum};
pub use identity::{IdentityError, LocalIdentity};
pub use network::{Network, NetworkError, check_prerequisites, prerequisites_met};
pub use pod::{Background, Pod};
pub use process::Process;
pub use sidecar::{PROXY_UID, Sidecar, SidecarError};
