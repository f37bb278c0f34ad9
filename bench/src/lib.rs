//! Weft benchmarks: an open-loop HTTP/1.1 load generator and the minimal server it targets.
//!
//! The `weft-load` binary drives [`run`]; `weft-bench-server` runs [`server::serve`];
//! `weft-bench-sidecars` runs [`sidecars::run`] and `weft-bench-control` the [`control`]
//! benchmarks.

#![forbid(unsafe_code)]

pub mod cli;
mod conn;
pub mod control;
mod load;
mod parse;
mod report;
mod schedule;
pub mod server;
pub mod sidecars;
mod stats;
mod target;

pub use self::{
    conn::RequestError,
    load::{LoadConfig, LoadError, run},
    parse::{InvalidDuration, InvalidRate, Rate, parse_duration},
    report::{Latency, Millis, Report},
    schedule::Schedule,
    stats::ErrorCounts,
    target::{InvalidTarget, ResolveError, Target},
};
