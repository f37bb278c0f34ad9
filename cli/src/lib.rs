//! `weft`, the Weft command line: install and check a cluster's mesh, inject workloads
//! offline, make certificates, and run the local demo.

#![forbid(unsafe_code)]

pub mod check;
pub mod demo;
pub mod duration;
pub mod inject;
pub mod install;
