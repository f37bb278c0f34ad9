//! The redirect rules as data: a pure function of a [`Config`], for both address families.
//!
//! Nothing here runs a command, so every rule is checked by plain unit tests; the executor
//! only decides how to get these rules into the kernel.

use std::{fmt, net::IpAddr};

use crate::{Config, PortSpec};

/// The nat chain, jumped to from `PREROUTING`, that redirects inbound TCP to the proxy.
pub const INBOUND_CHAIN: &str = "WEFT_INBOUND";
/// The nat chain, jumped to from `OUTPUT`, that redirects outbound TCP to the proxy.
pub const OUTPUT_CHAIN: &str = "WEFT_OUTPUT";
/// Weft's chains, in the order they are declared.
pub const CHAINS: [&str; 2] = [INBOUND_CHAIN, OUTPUT_CHAIN];
/// The jumps from the built-in chains into Weft's.
pub const JUMPS: [Jump; 2] = [
    Jump {
        from: "PREROUTING",
        to: INBOUND_CHAIN,
    },
    Jump {
        from: "OUTPUT",
        to: OUTPUT_CHAIN,
    },
];
/// The most ports one `-m multiport` match takes; a range counts as two.
pub const MULTIPORT_MAX_PORTS: usize = 15;

/// An address family, each programmed with its own binaries (iptables / ip6tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// iptables.
    Ipv4,
    /// ip6tables.
    Ipv6,
}

impl Family {
    /// The loopback network, which is never redirected.
    pub fn loopback(self) -> &'static str {
        match self {
            Family::Ipv4 => "127.0.0.0/8",
            Family::Ipv6 => "::1/128",
        }
    }

    fn contains(self, addr: IpAddr) -> bool {
        matches!(
            (self, addr),
            (Family::Ipv4, IpAddr::V4(_)) | (Family::Ipv6, IpAddr::V6(_))
        )
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// One rule appended to one of Weft's chains in the nat table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The chain it is appended to.
    pub chain: &'static str,
    /// The match and target, as iptables arguments after `-A <chain>`.
    pub args: Vec<String>,
}

impl Rule {
    fn new(chain: &'static str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            chain,
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

impl fmt::Display for Rule {
    /// As a line of `iptables-restore` input, which is also how `iptables-save` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-A {} {}", self.chain, self.args.join(" "))
    }
}

/// A jump for TCP from a built-in nat chain into one of Weft's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jump {
    /// The built-in chain (`PREROUTING`, `OUTPUT`).
    pub from: &'static str,
    /// Weft's chain.
    pub to: &'static str,
}

impl Jump {
    /// The iptables arguments that check (`-C`), append (`-A`) or delete (`-D`) this jump.
    pub fn args(&self, op: &str) -> Vec<String> {
        ["-t", "nat", op, self.from, "-p", "tcp", "-j", self.to]
            .map(String::from)
            .to_vec()
    }
}

/// The rules of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyPlan {
    /// Which family (and so which binaries) these rules are for.
    pub family: Family,
    /// The contents of Weft's chains, in order.
    pub rules: Vec<Rule>,
    /// The jumps into Weft's chains.
    pub jumps: Vec<Jump>,
}

impl FamilyPlan {
    /// `iptables-restore --noflush` input that replaces the contents of Weft's chains in one
    /// transaction: declaring a user chain in a `--noflush` restore creates it if missing and
    /// flushes it if present, so running it twice never duplicates a rule.
    pub fn restore_input(&self) -> String {
        let mut input = declare_chains();
        for rule in &self.rules {
            input.push_str(&format!("{rule}\n"));
        }
        input.push_str("COMMIT\n");
        input
    }
}

/// `iptables-restore --noflush` input that leaves Weft's chains present and empty, so that
/// checking for a jump to them afterwards means "is the jump there", not "is the chain there".
pub fn flush_chains_input() -> String {
    declare_chains() + "COMMIT\n"
}

/// `iptables-restore --noflush` input that deletes Weft's chains. They are declared first, so
/// a chain that is already gone is not an error; the jumps to them must be removed before.
pub fn delete_chains_input() -> String {
    let mut input = declare_chains();
    for chain in CHAINS {
        input.push_str(&format!("-X {chain}\n"));
    }
    input.push_str("COMMIT\n");
    input
}

fn declare_chains() -> String {
    let mut input = String::from("*nat\n");
    for chain in CHAINS {
        input.push_str(&format!(":{chain} - [0:0]\n"));
    }
    input
}

/// The rules of both families (IPv6 only when `config.ipv6`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// One entry per family, IPv4 first.
    pub families: Vec<FamilyPlan>,
}

/// Builds the rules for `config`.
pub fn plan(config: &Config) -> Plan {
    let mut families = vec![Family::Ipv4];
    if config.ipv6 {
        families.push(Family::Ipv6);
    }
    Plan {
        families: families
            .into_iter()
            .map(|family| plan_family(config, family))
            .collect(),
    }
}

fn plan_family(config: &Config, family: Family) -> FamilyPlan {
    let mut rules = Vec::new();

    // The admin port is always skipped so that kubelet probes and scrapes reach the proxy's
    // admin server even when the proxy's inbound side is not up yet.
    let inbound_skips = dedup(
        std::iter::once(PortSpec::Port(config.admin_port))
            .chain(config.skip_inbound_ports.iter().copied()),
    );
    for ports in multiport_chunks(&inbound_skips) {
        rules.push(skip_ports(INBOUND_CHAIN, ports));
    }
    rules.push(redirect(INBOUND_CHAIN, config.inbound_port.get()));

    let uid = config.proxy_uid.to_string();
    rules.push(Rule::new(
        OUTPUT_CHAIN,
        ["-m", "owner", "--uid-owner", &uid, "-j", "RETURN"],
    ));
    rules.push(Rule::new(OUTPUT_CHAIN, ["-o", "lo", "-j", "RETURN"]));
    rules.push(Rule::new(
        OUTPUT_CHAIN,
        ["-d", family.loopback(), "-j", "RETURN"],
    ));
    for ports in multiport_chunks(&dedup(config.skip_outbound_ports.iter().copied())) {
        rules.push(skip_ports(OUTPUT_CHAIN, ports));
    }
    let cidrs = config
        .skip_outbound_cidrs
        .iter()
        .filter(|cidr| family.contains(cidr.addr()));
    for cidr in dedup(cidrs.copied()) {
        rules.push(Rule::new(
            OUTPUT_CHAIN,
            ["-d", &cidr.to_string(), "-j", "RETURN"],
        ));
    }
    rules.push(redirect(OUTPUT_CHAIN, config.outbound_port.get()));

    FamilyPlan {
        family,
        rules,
        jumps: JUMPS.to_vec(),
    }
}

fn skip_ports(chain: &'static str, ports: String) -> Rule {
    Rule::new(
        chain,
        [
            "-p",
            "tcp",
            "-m",
            "multiport",
            "--dports",
            &ports,
            "-j",
            "RETURN",
        ],
    )
}

fn redirect(chain: &'static str, port: u16) -> Rule {
    Rule::new(
        chain,
        [
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-ports",
            &port.to_string(),
        ],
    )
}

/// Splits `ports` into `--dports` values that each fit one multiport match
/// ([`MULTIPORT_MAX_PORTS`], a range counting as two), keeping their order.
pub fn multiport_chunks(ports: &[PortSpec]) -> Vec<String> {
    let mut chunks: Vec<String> = Vec::new();
    let mut weight = 0;
    for port in ports {
        let w = port.multiport_weight();
        match chunks.last_mut() {
            Some(chunk) if weight + w <= MULTIPORT_MAX_PORTS => {
                chunk.push_str(&format!(",{port}"));
                weight += w;
            }
            _ => {
                chunks.push(port.to_string());
                weight = w;
            }
        }
    }
    chunks
}

/// Drops exact repeats, keeping the first occurrence, so a port given twice (or the admin
/// port given again) does not cost a multiport slot or a rule.
fn dedup<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests;
