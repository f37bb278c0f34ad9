//! The Weft admission webhook (`weft-injector`): adds `weft-init` and the `weft-proxy` native
//! sidecar to pods of namespaces annotated `weft.dev/inject: enabled`.
//!
//! Nothing is built here yet; the injection issue fills it in. Local mode
//! (`weft-cli-local::Sidecar`) sets pods up the way the injector will.

#![forbid(unsafe_code)]
