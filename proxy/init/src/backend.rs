//! Which iptables binaries program the rules: the nf_tables or the legacy (x_tables) ones.
//!
//! Both kernels APIs can hold nat rules in the same network namespace, and packets go through
//! both, but each tool only shows its own. Mixing them makes the redirect invisible to whoever
//! debugs the pod with the other tool, so `auto` follows whatever already has rules here.

use std::{fmt, str::FromStr};

use crate::{Command, Family, Runner};

/// The `--iptables-mode` flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IptablesMode {
    /// Legacy if it already holds nat rules here, else nft if installed, else plain `iptables`.
    #[default]
    Auto,
    /// `iptables-nft` and friends.
    Nft,
    /// `iptables-legacy` and friends.
    Legacy,
}

impl FromStr for IptablesMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(IptablesMode::Auto),
            "nft" => Ok(IptablesMode::Nft),
            "legacy" => Ok(IptablesMode::Legacy),
            other => Err(format!(
                "`{other}` is not an iptables mode; expected auto, nft or legacy"
            )),
        }
    }
}

impl fmt::Display for IptablesMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IptablesMode::Auto => "auto",
            IptablesMode::Nft => "nft",
            IptablesMode::Legacy => "legacy",
        })
    }
}

/// A resolved set of binaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `iptables-nft`, `iptables-nft-restore`, `ip6tables-nft`, ...
    Nft,
    /// `iptables-legacy`, `iptables-legacy-restore`, `ip6tables-legacy`, ...
    Legacy,
    /// `iptables`, `iptables-restore`, ...: whatever the image links them to.
    Plain,
}

/// The binaries for one family of one backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tools {
    /// Checks, appends and deletes single rules.
    pub iptables: &'static str,
    /// Applies a whole table transaction from stdin.
    pub restore: &'static str,
    /// Prints the current rules.
    pub save: &'static str,
}

impl Backend {
    /// The binaries for `family`.
    pub fn tools(self, family: Family) -> Tools {
        use {Backend::*, Family::*};
        let (iptables, restore, save) = match (self, family) {
            (Nft, Ipv4) => ("iptables-nft", "iptables-nft-restore", "iptables-nft-save"),
            (Nft, Ipv6) => (
                "ip6tables-nft",
                "ip6tables-nft-restore",
                "ip6tables-nft-save",
            ),
            (Legacy, Ipv4) => (
                "iptables-legacy",
                "iptables-legacy-restore",
                "iptables-legacy-save",
            ),
            (Legacy, Ipv6) => (
                "ip6tables-legacy",
                "ip6tables-legacy-restore",
                "ip6tables-legacy-save",
            ),
            (Plain, Ipv4) => ("iptables", "iptables-restore", "iptables-save"),
            (Plain, Ipv6) => ("ip6tables", "ip6tables-restore", "ip6tables-save"),
        };
        Tools {
            iptables,
            restore,
            save,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Nft => "nft",
            Backend::Legacy => "legacy",
            Backend::Plain => "plain iptables",
        })
    }
}

/// The outcome of resolving `--iptables-mode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The binaries to use.
    pub backend: Backend,
    /// Why, for the log.
    pub reason: String,
}

/// Resolves `mode` to a backend. For `auto` this runs `iptables-legacy-save` with no table
/// argument, which only reads: naming a table (`-t nat`) would load the legacy nat table into
/// this namespace, which is exactly what choosing nft is meant to avoid.
pub fn detect(runner: &mut dyn Runner, mode: IptablesMode) -> Detection {
    let (backend, reason) = match mode {
        IptablesMode::Nft => (Backend::Nft, "--iptables-mode nft".to_string()),
        IptablesMode::Legacy => (Backend::Legacy, "--iptables-mode legacy".to_string()),
        IptablesMode::Auto => detect_auto(runner),
    };
    Detection { backend, reason }
}

fn detect_auto(runner: &mut dyn Runner) -> (Backend, String) {
    const LEGACY_SAVE: &str = "iptables-legacy-save";
    if runner.exists(LEGACY_SAVE) {
        // A failure here (e.g. no permission to read /proc/net/ip_tables_names) just means
        // legacy shows nothing; the real commands will report permission problems properly.
        let save = Command::new(LEGACY_SAVE, Vec::<String>::new());
        if let Ok(out) = runner.run(&save)
            && out.success()
            && has_nat_rules(&out.stdout)
        {
            return (
                Backend::Legacy,
                "auto: iptables-legacy-save shows nat rules in this network namespace".into(),
            );
        }
    }
    if runner.exists("iptables-nft") {
        return (
            Backend::Nft,
            "auto: no legacy nat rules here, and iptables-nft is installed".into(),
        );
    }
    (
        Backend::Plain,
        "auto: no legacy nat rules here, and no iptables-nft; using plain iptables".into(),
    )
}

/// Whether `iptables-save` output has at least one rule in its nat table.
pub fn has_nat_rules(save: &str) -> bool {
    let mut in_nat = false;
    for line in save.lines() {
        if let Some(table) = line.strip_prefix('*') {
            in_nat = table.trim() == "nat";
        } else if in_nat && line.starts_with("-A ") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests;
