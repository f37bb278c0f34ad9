//! `weft-init`: the init container that redirects a pod's TCP to the Weft proxy.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{ArgAction, Parser, builder::BoolishValueParser};
use weft_init::{Action, CidrList, Config, IptablesMode, Port, PortList, SystemRunner};

/// Programs this network namespace's iptables nat rules to redirect TCP to the Weft proxy.
#[derive(Debug, Parser)]
#[command(name = "weft-init", version)]
struct Args {
    /// UID the proxy runs as; its connections are never redirected.
    #[arg(long, env = "WEFT_INIT_PROXY_UID", default_value_t = weft_init::DEFAULT_PROXY_UID)]
    proxy_uid: u32,

    /// Port of the proxy's inbound listener.
    #[arg(long, env = "WEFT_INIT_INBOUND_PORT", default_value_t = weft_init::DEFAULT_INBOUND_PORT)]
    inbound_port: Port,

    /// Port of the proxy's outbound listener.
    #[arg(long, env = "WEFT_INIT_OUTBOUND_PORT", default_value_t = weft_init::DEFAULT_OUTBOUND_PORT)]
    outbound_port: Port,

    /// Port of the proxy's admin server; never redirected inbound.
    #[arg(long, env = "WEFT_INIT_ADMIN_PORT", default_value_t = weft_init::DEFAULT_ADMIN_PORT)]
    admin_port: Port,

    /// Inbound ports not redirected, comma-separated; ranges as `a:b` or `a-b`.
    #[arg(
        long,
        env = "WEFT_INIT_SKIP_INBOUND_PORTS",
        value_name = "PORTS",
        default_value = ""
    )]
    skip_inbound_ports: PortList,

    /// Outbound destination ports not redirected, comma-separated; ranges as `a:b` or `a-b`.
    #[arg(
        long,
        env = "WEFT_INIT_SKIP_OUTBOUND_PORTS",
        value_name = "PORTS",
        default_value = ""
    )]
    skip_outbound_ports: PortList,

    /// Outbound destination networks not redirected, comma-separated (IPv4 and IPv6).
    #[arg(
        long,
        env = "WEFT_INIT_SKIP_OUTBOUND_CIDRS",
        value_name = "CIDRS",
        default_value = ""
    )]
    skip_outbound_cidrs: CidrList,

    /// Also program ip6tables.
    #[arg(
        long,
        env = "WEFT_INIT_IPV6",
        value_name = "BOOL",
        default_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new(),
    )]
    ipv6: bool,

    /// Which iptables binaries to use: auto, nft or legacy.
    #[arg(long, env = "WEFT_INIT_IPTABLES_MODE", value_name = "MODE", default_value_t = IptablesMode::Auto)]
    iptables_mode: IptablesMode,

    /// Print the commands that would run, and run none of them.
    #[arg(long, env = "WEFT_INIT_DRY_RUN", value_parser = BoolishValueParser::new())]
    dry_run: bool,

    /// Remove Weft's chains and jumps instead of installing them.
    #[arg(long, env = "WEFT_INIT_CLEANUP", value_parser = BoolishValueParser::new())]
    cleanup: bool,

    /// Print the resulting nat table of each family afterwards.
    #[arg(long, env = "WEFT_INIT_LOG_RULES", value_parser = BoolishValueParser::new())]
    log_rules: bool,
}

impl From<Args> for Config {
    fn from(args: Args) -> Self {
        Config {
            proxy_uid: args.proxy_uid,
            inbound_port: args.inbound_port,
            outbound_port: args.outbound_port,
            admin_port: args.admin_port,
            skip_inbound_ports: args.skip_inbound_ports.0,
            skip_outbound_ports: args.skip_outbound_ports.0,
            skip_outbound_cidrs: args.skip_outbound_cidrs.0,
            ipv6: args.ipv6,
            mode: args.iptables_mode,
            action: if args.cleanup {
                Action::Cleanup
            } else {
                Action::Apply
            },
            dry_run: args.dry_run,
            log_rules: args.log_rules,
        }
    }
}

fn main() -> ExitCode {
    let config = Config::from(Args::parse());
    match weft_init::run(&config, &mut SystemRunner, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft-init: error: {error}");
            ExitCode::FAILURE
        }
    }
}
