//! Sources that feed the Weft index: `kube` (kube-runtime watchers against an API server)
//! and `files` (a directory of YAML holding the same kinds, reloaded on change). Both call
//! the same `IndexResource` methods, so the index cannot tell them apart.

#![forbid(unsafe_code)]

pub mod files;
pub mod kube;
