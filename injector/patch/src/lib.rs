//! The Weft sidecar injection as an RFC 6902 JSON patch: the decision (`weft.dev/inject` on
//! the namespace or pod, never twice, never `hostNetwork`), the `weft-init` and `weft-proxy`
//! containers, the token volume, the proxy's settings and the pod's overrides. The admission
//! webhook and `weft inject` both use it, so a pod meshed offline is the pod the webhook makes.

#![forbid(unsafe_code)]

pub mod annotations;
pub mod config;
mod containers;
mod decide;
mod documents;
mod patch;
mod pod;
pub mod quantity;
mod uninject;

pub use annotations::{Annotations, Overrides};
pub use config::{Config, Resources};
pub use decide::Skip;
pub use documents::{DocumentError, Report, inject_documents, uninject_documents};
pub use patch::{Injection, Injector, Outcome, PodError};
pub use uninject::uninject;
