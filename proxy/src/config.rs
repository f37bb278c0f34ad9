//! Proxy configuration, read from `WEFT_PROXY_*` environment variables in one place.
//!
//! Every variable is parsed, every bad value is collected, and only then does parsing fail, so
//! an operator fixes all mistakes in one round instead of one per restart.

use crate::inbound::DefaultPolicy;
use ipnet::IpNet;
use std::{collections::BTreeMap, fmt, net::SocketAddr, time::Duration};

mod identity;
mod observe;

pub use identity::IdentityConfig;
pub use observe::{AccessLog, TraceConfig, workload_name};

/// Where configuration strings come from: the process environment in production, a map in tests.
pub trait Strings {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Option<String>;
    /// Every key that starts with `prefix`, so unknown (misspelt) variables can be reported.
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Env;

impl Strings for Env {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }

    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with(prefix))
            .collect()
    }
}

impl Strings for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        BTreeMap::get(self, key).cloned()
    }

    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// The prefix of every proxy variable.
pub const PREFIX: &str = "WEFT_PROXY_";

/// Ports whose protocols have the server speak first (SMTP, MySQL, Galera, PostgreSQL, Redis,
/// Elasticsearch transport, memcached): waiting for the client's first bytes would stall them
/// for the whole detect timeout, so they are forwarded as opaque TCP at once.
pub const DEFAULT_OPAQUE_PORTS: &str = "25,587,3306,4444,5432,6379,9300,11211";

const INBOUND_ADDR: &str = "INBOUND_ADDR";
const OUTBOUND_ADDR: &str = "OUTBOUND_ADDR";
const ADMIN_ADDR: &str = "ADMIN_ADDR";
const LOG: &str = "LOG";
const OPAQUE_PORTS: &str = "OPAQUE_PORTS";
const DETECT_TIMEOUT: &str = "DETECT_TIMEOUT";
const SHUTDOWN_GRACE: &str = "SHUTDOWN_GRACE";
const WORKLOAD: &str = "WORKLOAD";
const WORKER_THREADS: &str = "WORKER_THREADS";
const CONTROLLER_ADDR: &str = "CONTROLLER_ADDR";
const DISCOVERY_TIMEOUT: &str = "DISCOVERY_TIMEOUT";
const INBOUND_DEFAULT_POLICY: &str = "INBOUND_DEFAULT_POLICY";
const CLUSTER_NETWORKS: &str = "CLUSTER_NETWORKS";

/// The pod and service networks a cluster may use (RFC 1918, carrier-grade NAT, IPv6 ULA):
/// where `cluster-authenticated` accepts meshed clients from.
pub const DEFAULT_CLUSTER_NETWORKS: &str =
    "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8";

/// Every variable this proxy reads, without the prefix.
pub const KNOWN: &[&str] = &[
    INBOUND_ADDR,
    OUTBOUND_ADDR,
    ADMIN_ADDR,
    LOG,
    OPAQUE_PORTS,
    DETECT_TIMEOUT,
    SHUTDOWN_GRACE,
    WORKLOAD,
    WORKER_THREADS,
    CONTROLLER_ADDR,
    DISCOVERY_TIMEOUT,
    INBOUND_DEFAULT_POLICY,
    CLUSTER_NETWORKS,
    identity::IDENTITY_ADDR,
    identity::IDENTITY_NAME,
    identity::TOKEN_FILE,
    identity::TRUST_ANCHORS,
    identity::TRUST_ANCHORS_FILE,
    identity::CONTROLLER_NAME,
    observe::OTLP_ADDR,
    observe::TRACE_SAMPLING,
    observe::TRACE_SERVICE_NAME,
    observe::TRACE_QUEUE,
    observe::NODE_NAME,
    observe::ACCESS_LOG,
];

/// The proxy's whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where redirected inbound connections arrive (PREROUTING → 4143).
    pub inbound: Listen,
    /// Where redirected outbound connections arrive (OUTPUT → 4140).
    pub outbound: Listen,
    /// The admin server: `/live`, `/ready`, `/metrics`, `/shutdown`.
    pub admin: Listen,
    /// A `tracing` filter directive.
    pub log: String,
    /// Destination ports forwarded as opaque TCP without protocol detection.
    pub opaque_ports: PortSet,
    /// How long to wait for a client's first bytes before treating it as opaque TCP.
    pub detect_timeout: Duration,
    /// How long in-flight work may continue after SIGTERM or `/shutdown`.
    pub shutdown_grace: Duration,
    /// `namespace/pod`, for logs, policy and spans.
    pub workload: Option<String>,
    /// Runtime worker threads.
    pub worker_threads: usize,
    /// The controller's destination and policy gRPC address (`host:port`). Unset: every
    /// connection goes to its original destination.
    pub controller: Option<String>,
    /// How long a new target waits for the controller's first answer before falling back to
    /// its original destination.
    pub discovery_timeout: Duration,
    /// The inbound policy of a port the controller has not answered about in time, or of
    /// every port without a controller.
    pub inbound_default_policy: DefaultPolicy,
    /// The cluster's networks, for the `cluster-authenticated` default.
    pub cluster_networks: Vec<IpNet>,
    /// The mesh identity and its trust anchors. Unset: no mTLS (a plaintext mesh).
    pub identity: Option<IdentityConfig>,
    /// Span export. Unset: no spans (trace headers still pass through untouched).
    pub trace: Option<TraceConfig>,
    /// Access logs on stdout.
    pub access_log: AccessLog,
}

/// Addresses to listen on. Defaults add the IPv6 twin of the IPv4 address; a default twin that
/// cannot be bound (no IPv6 in the pod) is skipped, an explicit one is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// Addresses that must bind.
    pub required: Vec<SocketAddr>,
    /// Addresses bound if the host supports them.
    pub optional: Vec<SocketAddr>,
}

/// A set of TCP ports, as a bitmap so a lookup on every connection is one load.
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet(Box<[u64; 1024]>);

/// Every bad value found, each naming its variable, the value, and what is accepted.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(pub Vec<String>);

// === impl Config ===

impl Config {
    /// Reads and validates every `WEFT_PROXY_*` variable, reporting all problems at once.
    pub fn from_strings(env: &dyn Strings) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        for key in env.keys_with_prefix(PREFIX) {
            let name = &key[PREFIX.len()..];
            if !KNOWN.contains(&name) {
                errors.push(format!(
                    "{key} is not a Weft proxy setting; known settings: {}",
                    KNOWN
                        .iter()
                        .map(|k| format!("{PREFIX}{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let mut read = Reader { env, errors };
        let inbound = read.listen(INBOUND_ADDR, "0.0.0.0:4143", "[::]:4143");
        let outbound = read.listen(OUTBOUND_ADDR, "127.0.0.1:4140", "[::1]:4140");
        let admin = read.listen(ADMIN_ADDR, "0.0.0.0:4191", "[::]:4191");
        let log = read.log();
        let opaque_ports = read.parse(OPAQUE_PORTS, DEFAULT_OPAQUE_PORTS, PortSet::parse);
        let detect_timeout = read.parse(DETECT_TIMEOUT, "1s", parse_duration);
        let shutdown_grace = read.parse(SHUTDOWN_GRACE, "30s", parse_duration);
        let workload = read.workload();
        let worker_threads = read.parse(WORKER_THREADS, "2", parse_threads);
        let controller = read.controller();
        let discovery_timeout = read.parse(DISCOVERY_TIMEOUT, "3s", parse_duration);
        let inbound_default_policy =
            read.parse(INBOUND_DEFAULT_POLICY, "all-unauthenticated", |text| {
                text.parse::<DefaultPolicy>().map_err(|e| e.to_string())
            });
        let cluster_networks =
            read.parse(CLUSTER_NETWORKS, DEFAULT_CLUSTER_NETWORKS, parse_networks);
        let identity = read.identity();
        let trace = read.trace(workload.as_deref());
        let access_log = read.access_log();
        if !read.errors.is_empty() {
            return Err(ConfigError(read.errors));
        }
        // The reader only yields `None` after recording an error, so all are `Some` here.
        match (
            inbound,
            outbound,
            admin,
            opaque_ports,
            detect_timeout,
            shutdown_grace,
            worker_threads,
            discovery_timeout,
            inbound_default_policy,
            cluster_networks,
            access_log,
        ) {
            (
                Some(inbound),
                Some(outbound),
                Some(admin),
                Some(opaque_ports),
                Some(detect_timeout),
                Some(shutdown_grace),
                Some(worker_threads),
                Some(discovery_timeout),
                Some(inbound_default_policy),
                Some(cluster_networks),
                Some(access_log),
            ) => Ok(Config {
                inbound,
                outbound,
                admin,
                log,
                opaque_ports,
                detect_timeout,
                shutdown_grace,
                workload,
                worker_threads,
                controller,
                discovery_timeout,
                inbound_default_policy,
                cluster_networks,
                identity,
                trace,
                access_log,
            }),
            _ => Err(ConfigError(vec![
                "internal: a setting failed without an error".into(),
            ])),
        }
    }
}

struct Reader<'a> {
    env: &'a dyn Strings,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn raw(&self, name: &str) -> Option<String> {
        self.env.get(&format!("{PREFIX}{name}"))
    }

    fn parse<T>(
        &mut self,
        name: &str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.raw(name);
        let text = value.as_deref().unwrap_or(default);
        match parse(text.trim()) {
            Ok(v) => Some(v),
            Err(why) => {
                self.errors.push(format!("{PREFIX}{name}={text:?}: {why}"));
                None
            }
        }
    }

    fn listen(&mut self, name: &str, v4: &str, v6: &str) -> Option<Listen> {
        if self.raw(name).is_none() {
            let parse = |s: &str| s.parse::<SocketAddr>().map_err(|e| e.to_string());
            return match (parse(v4), parse(v6)) {
                (Ok(a), Ok(b)) => Some(Listen {
                    required: vec![a],
                    optional: vec![b],
                }),
                _ => None,
            };
        }
        self.parse(name, v4, |text| {
            let mut required = Vec::new();
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let addr = part.parse::<SocketAddr>().map_err(|_| {
                    format!("{part:?} is not an address; expected IP:PORT such as 0.0.0.0:4143 or [::]:4143, comma-separated")
                })?;
                required.push(addr);
            }
            if required.is_empty() {
                return Err("no address given; expected IP:PORT".into());
            }
            Ok(Listen {
                required,
                optional: Vec::new(),
            })
        })
    }

    fn controller(&mut self) -> Option<String> {
        let value = self.raw(CONTROLLER_ADDR)?;
        let value = value.trim();
        let valid = value.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if valid {
            Some(value.to_string())
        } else {
            self.errors.push(format!(
                "{PREFIX}{CONTROLLER_ADDR}={value:?}: expected HOST:PORT, such as weft-controller.weft-system.svc.cluster.local:8086 or 10.42.0.2:8086"
            ));
            None
        }
    }

    fn log(&mut self) -> String {
        let text = self
            .raw(LOG)
            .unwrap_or_else(|| "warn,weft_proxy=info".to_string());
        if let Err(e) = text.parse::<tracing_subscriber::EnvFilter>() {
            self.errors.push(format!(
                "{PREFIX}{LOG}={text:?}: not a log filter ({e}); expected e.g. `info` or `warn,weft_proxy=debug`"
            ));
        }
        text
    }

    fn workload(&mut self) -> Option<String> {
        let text = self.raw(WORKLOAD)?;
        match text.split_once('/') {
            Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() && !pod.contains('/') => {
                Some(text)
            }
            _ => {
                self.errors.push(format!(
                    "{PREFIX}{WORKLOAD}={text:?}: expected `namespace/pod`"
                ));
                None
            }
        }
    }
}

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err("expected a number of threads from 1 to 64".into()),
    }
}

/// Parses `10.0.0.0/8,fd00::/8`: at least one network, comma-separated.
fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
    let mut nets = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let net = part.parse::<IpNet>().map_err(|_| {
            format!("{part:?} is not a network; expected CIDRs such as 10.0.0.0/8 or fd00::/8, comma-separated")
        })?;
        nets.push(net);
    }
    if nets.is_empty() {
        return Err("no network given; expected CIDRs such as 10.0.0.0/8 or fd00::/8".into());
    }
    Ok(nets)
}

/// Parses `1s`, `500ms`, `2m`, `1h`, or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration; expected a number with a unit: ms, s, m or h (e.g. 500ms, 1s)"
        )
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(bad()),
    };
    ms.map(Duration::from_millis).ok_or_else(bad)
}

// === impl PortSet ===

impl PortSet {
    /// An empty set.
    pub fn empty() -> Self {
        PortSet(Box::new([0; 1024]))
    }

    /// Parses `25,587,8000-8010` (ranges inclusive; `:` also separates a range). Empty is empty.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = Self::empty();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once(['-', ':']) {
                Some((lo, hi)) => (port(lo.trim())?, port(hi.trim())?),
                None => {
                    let p = port(part)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!("range {part:?} runs backwards"));
            }
            for p in lo..=hi {
                set.insert(p);
            }
        }
        Ok(set)
    }

    /// Adds a port.
    pub fn insert(&mut self, port: u16) {
        self.0[usize::from(port / 64)] |= 1 << (port % 64);
    }

    /// Whether the set holds `port`.
    pub fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }
}

fn port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(format!(
            "{text:?} is not a port; expected 1-65535, a range like 8000-8010, comma-separated"
        )),
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries((1..=u16::MAX).filter(|p| self.contains(*p)))
            .finish()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid proxy configuration:")?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
