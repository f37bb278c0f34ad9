//! `weft`, the Weft command line: the local demo now; install, check, inject and certs as the
//! control plane grows.

#![forbid(unsafe_code)]

pub mod demo;
