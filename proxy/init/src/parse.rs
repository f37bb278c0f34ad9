//! Values of the flags that are not plain numbers: ports, port ranges, CIDRs and lists of them.
//!
//! Every type here implements [`FromStr`], so clap parses flags and env vars with them and
//! reports a bad value together with the flag that carried it.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

/// A value that could not be parsed; the message names the offending item and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a decimal number.
    #[error("`{0}` is not a port number; ports are 1-65535")]
    NotAPort(String),
    /// A number outside 1–65535.
    #[error("port {0} is out of range; ports are 1-65535")]
    PortOutOfRange(String),
    /// A range whose bounds are missing or reversed.
    #[error("`{0}` is not a port range; write `low:high` or `low-high` with low <= high")]
    BadRange(String),
    /// Not an IP address with an optional prefix length.
    #[error(
        "`{0}` is not a CIDR; expected an address with an optional /prefix, like 10.96.0.0/12 or fd00::/8"
    )]
    BadCidr(String),
    /// A prefix longer than the address.
    #[error(
        "`{value}` is not a CIDR: prefix /{prefix} is longer than the {max} bits of an {family} address"
    )]
    PrefixTooLong {
        /// The CIDR as given.
        value: String,
        /// The prefix length as given.
        prefix: u32,
        /// The address length in bits.
        max: u8,
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
}

// === impl Port ===

/// A TCP port, 1–65535 (port 0 can be neither matched nor redirected to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(pub(crate) u16);

impl Port {
    /// Returns `None` for port 0.
    pub const fn new(port: u16) -> Option<Self> {
        if port == 0 { None } else { Some(Self(port)) }
    }

    /// The port number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl FromStr for Port {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        // Only digits: `u16::from_str` would also take `+80`, which iptables would not.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::NotAPort(s.to_string()));
        }
        s.parse::<u16>()
            .ok()
            .and_then(Port::new)
            .ok_or_else(|| ParseError::PortOutOfRange(s.to_string()))
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// === impl PortSpec ===

/// One port or an inclusive range of ports, as written in a skip list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// A single port.
    Port(Port),
    /// `low..=high`, with `low < high`.
    Range(Port, Port),
}

impl PortSpec {
    /// How many of the 15 slots of one `-m multiport` rule this takes: iptables counts a
    /// range as two ports.
    pub fn multiport_weight(&self) -> usize {
        match self {
            PortSpec::Port(_) => 1,
            PortSpec::Range(..) => 2,
        }
    }
}

impl FromStr for PortSpec {
    type Err = ParseError;

    /// Accepts `80`, `8000:8080` (iptables' syntax) and `8000-8080` (Kubernetes annotations').
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let Some((low, high)) = s.split_once([':', '-']) else {
            return s.parse().map(PortSpec::Port);
        };
        if low.trim().is_empty() || high.trim().is_empty() {
            return Err(ParseError::BadRange(s.to_string()));
        }
        let (low, high): (Port, Port) = (low.parse()?, high.parse()?);
        match low.cmp(&high) {
            std::cmp::Ordering::Less => Ok(PortSpec::Range(low, high)),
            std::cmp::Ordering::Equal => Ok(PortSpec::Port(low)),
            std::cmp::Ordering::Greater => Err(ParseError::BadRange(s.to_string())),
        }
    }
}

impl fmt::Display for PortSpec {
    /// In iptables' `low:high` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Port(p) => write!(f, "{p}"),
            PortSpec::Range(low, high) => write!(f, "{low}:{high}"),
        }
    }
}

// === impl Cidr ===

/// An IPv4 or IPv6 network. The address is stored with its host bits cleared, as iptables
/// would store (and `iptables-save` print) it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl FromStr for Cidr {
    type Err = ParseError;

    /// Accepts `addr/prefix`, or a bare address meaning that one host.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let bad = || ParseError::BadCidr(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let (max, family) = match addr {
            IpAddr::V4(_) => (32, "IPv4"),
            IpAddr::V6(_) => (128, "IPv6"),
        };
        let prefix = match prefix {
            None => u32::from(max),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u32>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        let prefix = u8::try_from(prefix)
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| ParseError::PrefixTooLong {
                value: s.to_string(),
                prefix,
                max,
                family,
            })?;
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & bits))
        }
        IpAddr::V6(a) => {
            let bits = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & bits))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

// === lists ===

/// A comma-separated list of [`PortSpec`]s; blanks between commas are ignored so an empty
/// env var means "none".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortList(pub Vec<PortSpec>);

impl FromStr for PortList {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        items(s)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(PortList)
    }
}

/// A comma-separated list of [`Cidr`]s; blanks between commas are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<Cidr>);

impl FromStr for CidrList {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        items(s)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(CidrList)
    }
}

fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests;
