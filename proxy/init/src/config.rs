//! What weft-init was asked to do.

use crate::{Cidr, IptablesMode, Port, PortSpec};

/// The proxy's inbound listener, where `WEFT_INBOUND` redirects to.
pub const DEFAULT_INBOUND_PORT: Port = Port(4143);
/// The proxy's outbound listener, where `WEFT_OUTPUT` redirects to.
pub const DEFAULT_OUTBOUND_PORT: Port = Port(4140);
/// The proxy's admin port (metrics, probes); never redirected, so probes reach it directly.
pub const DEFAULT_ADMIN_PORT: Port = Port(4191);
/// The UID the proxy runs as; its own connections must not be redirected back to it.
pub const DEFAULT_PROXY_UID: u32 = 2102;

/// Whether to install the redirect or take it away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    /// Install (or refresh) the chains and the jumps to them.
    #[default]
    Apply,
    /// Remove the jumps and the chains; nothing to remove is not an error.
    Cleanup,
}

/// Everything weft-init needs; the binary fills it from flags and `WEFT_INIT_*` env vars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The UID whose connections are never redirected (the proxy's).
    pub proxy_uid: u32,
    /// Where inbound TCP is redirected.
    pub inbound_port: Port,
    /// Where outbound TCP is redirected.
    pub outbound_port: Port,
    /// Never redirected inbound, in addition to `skip_inbound_ports`.
    pub admin_port: Port,
    /// Inbound destination ports that reach the application directly.
    pub skip_inbound_ports: Vec<PortSpec>,
    /// Outbound destination ports that bypass the proxy.
    pub skip_outbound_ports: Vec<PortSpec>,
    /// Outbound destination networks that bypass the proxy; IPv4 ones go to iptables, IPv6
    /// ones to ip6tables (and are ignored when `ipv6` is off).
    pub skip_outbound_cidrs: Vec<Cidr>,
    /// Also program ip6tables.
    pub ipv6: bool,
    /// Which iptables binaries to use.
    pub mode: IptablesMode,
    /// Install or remove.
    pub action: Action,
    /// Print what would run instead of running it.
    pub dry_run: bool,
    /// After applying, print the resulting nat table of each family.
    pub log_rules: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            proxy_uid: DEFAULT_PROXY_UID,
            inbound_port: DEFAULT_INBOUND_PORT,
            outbound_port: DEFAULT_OUTBOUND_PORT,
            admin_port: DEFAULT_ADMIN_PORT,
            skip_inbound_ports: Vec::new(),
            skip_outbound_ports: Vec::new(),
            skip_outbound_cidrs: Vec::new(),
            ipv6: true,
            mode: IptablesMode::Auto,
            action: Action::Apply,
            dry_run: false,
            log_rules: false,
        }
    }
}
