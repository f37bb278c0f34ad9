//! weft-init: programs a pod's TCP redirect to the Weft sidecar proxy with iptables.
//!
//! It runs once, as the pod's init container, in the pod's network namespace. In the nat
//! table it fills two chains, for IPv4 and (optionally) IPv6:
//!
//! - `WEFT_INBOUND`, jumped to from `PREROUTING`: skipped ports (always the proxy's admin
//!   port) return, every other TCP connection is redirected to the proxy's inbound port;
//! - `WEFT_OUTPUT`, jumped to from `OUTPUT`: the proxy's own UID, loopback, skipped ports and
//!   skipped CIDRs return, every other TCP connection is redirected to the outbound port.
//!
//! The flow is: [`Config`] → [`plan()`] (pure, testable without root) → [`Executor`] running
//! commands through a [`Runner`], with the binaries picked by [`detect`]. [`run`] does all of
//! it the way the `weft-init` binary does.

#![forbid(unsafe_code)]

mod backend;
mod config;
mod error;
mod exec;
#[cfg(test)]
mod fake;
mod parse;
mod plan;
mod runner;

use std::io::Write;

pub use crate::{
    backend::{Backend, Detection, IptablesMode, Tools, detect, has_nat_rules},
    config::{
        Action, Config, DEFAULT_ADMIN_PORT, DEFAULT_INBOUND_PORT, DEFAULT_OUTBOUND_PORT,
        DEFAULT_PROXY_UID,
    },
    error::Error,
    exec::{Executor, JumpState, script},
    parse::{Cidr, CidrList, ParseError, Port, PortList, PortSpec},
    plan::{
        CHAINS, Family, FamilyPlan, INBOUND_CHAIN, JUMPS, Jump, MULTIPORT_MAX_PORTS, OUTPUT_CHAIN,
        Plan, Rule, multiport_chunks, plan,
    },
    runner::{Command, Output, Runner, SystemRunner},
};

/// Does what `config` asks in the current network namespace, and reports it on `out`: with
/// `dry_run`, only prints the commands (after the read-only mode detection).
pub fn run(config: &Config, runner: &mut dyn Runner, out: &mut dyn Write) -> Result<(), Error> {
    let Detection { backend, reason } = detect(runner, config.mode);
    let plan = plan(config);
    let families = plan
        .families
        .iter()
        .map(|f| f.family.to_string())
        .collect::<Vec<_>>()
        .join(" + ");

    if config.dry_run {
        let action = match config.action {
            Action::Apply => "apply",
            Action::Cleanup => "cleanup",
        };
        writeln!(
            out,
            "# weft-init dry run: {action} for {families} with {backend} ({reason}); nothing was run"
        )
        .map_err(Error::Write)?;
        return out
            .write_all(script(backend, &plan, config.action).as_bytes())
            .map_err(Error::Write);
    }

    let mut exec = Executor::new(runner, backend);
    match config.action {
        Action::Apply => {
            let jumps = exec.apply(&plan)?;
            writeln!(
                out,
                "weft-init: TCP redirect installed for {families} with {backend} ({reason}): \
                 inbound -> {}, outbound -> {}, proxy UID {} exempt",
                config.inbound_port, config.outbound_port, config.proxy_uid
            )
            .map_err(Error::Write)?;
            for j in jumps {
                let state = if j.added { "added" } else { "already present" };
                writeln!(
                    out,
                    "weft-init: {} jump {} -> {}: {state}",
                    j.family, j.jump.from, j.jump.to
                )
                .map_err(Error::Write)?;
            }
        }
        Action::Cleanup => {
            exec.cleanup(&plan)?;
            writeln!(
                out,
                "weft-init: removed {} and their jumps for {families} with {backend}",
                CHAINS.join(" and ")
            )
            .map_err(Error::Write)?;
        }
    }

    if config.log_rules {
        for fam in &plan.families {
            let rules = exec.save(fam.family)?;
            write!(out, "# {} nat table:\n{rules}", fam.family).map_err(Error::Write)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
