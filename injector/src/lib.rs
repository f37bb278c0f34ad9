//! The Weft admission webhook (`weft-injector`): an HTTPS server answering
//! `admission.k8s.io/v1` AdmissionReviews for Pods with the JSON patch that adds `weft-init`
//! and the `weft-proxy` sidecar ([`weft_injector_patch`]), reading namespace annotations from a
//! kube-runtime reflector and its certificate from files it reloads.

#![forbid(unsafe_code)]

pub mod flags;
pub mod namespaces;
pub mod reload;
pub mod review;
pub mod server;
pub mod tls;

pub use flags::{FlagError, InjectFlags};
pub use namespaces::{LookupError, NamespaceCache, Namespaces, StaticNamespaces};
pub use reload::Reloader;
pub use server::{INJECT_PATH, Limits, Webhook, serve};
pub use tls::{CertFiles, TlsError};
