//! [`run`] end to end against the fake iptables.

use super::*;
use crate::fake::FakeIptables;

fn run_to_string(config: &Config, fake: &mut FakeIptables) -> Result<String, Error> {
    let mut out = Vec::new();
    run(config, fake, &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn dry_run_prints_and_runs_nothing() {
    let mut fake = FakeIptables::default();
    let config = Config {
        dry_run: true,
        mode: IptablesMode::Nft,
        ..Config::default()
    };
    let out = run_to_string(&config, &mut fake).expect("dry run");
    assert!(fake.log.is_empty(), "ran {:?}", fake.lines());
    assert!(
        out.starts_with("# weft-init dry run: apply for IPv4 + IPv6 with nft"),
        "{out}"
    );
    assert!(out.ends_with(&script(Backend::Nft, &plan(&config), Action::Apply)));
}

#[test]
fn dry_run_in_auto_mode_only_detects() {
    let mut fake = FakeIptables::default();
    let config = Config {
        dry_run: true,
        action: Action::Cleanup,
        ..Config::default()
    };
    let out = run_to_string(&config, &mut fake).expect("dry run");
    assert_eq!(fake.lines(), ["iptables-legacy-save"]);
    assert!(
        out.starts_with("# weft-init dry run: cleanup for IPv4 + IPv6 with nft"),
        "{out}"
    );
    assert!(
        out.contains("while ip6tables-nft -w 10 -t nat -C OUTPUT"),
        "{out}"
    );
}

#[test]
fn apply_reports_and_logs_rules() {
    let mut fake = FakeIptables::default().answer(
        "-save -t nat",
        0,
        "*nat\n-A OUTPUT -p tcp -j WEFT_OUTPUT\nCOMMIT\n",
        "",
    );
    let config = Config {
        mode: IptablesMode::Legacy,
        ipv6: false,
        log_rules: true,
        ..Config::default()
    };
    let out = run_to_string(&config, &mut fake).expect("apply");
    assert_eq!(
        out,
        "weft-init: TCP redirect installed for IPv4 with legacy (--iptables-mode legacy): \
         inbound -> 4143, outbound -> 4140, proxy UID 2102 exempt\n\
         weft-init: IPv4 jump PREROUTING -> WEFT_INBOUND: added\n\
         weft-init: IPv4 jump OUTPUT -> WEFT_OUTPUT: added\n\
         # IPv4 nat table:\n*nat\n-A OUTPUT -p tcp -j WEFT_OUTPUT\nCOMMIT\n"
    );
    assert_eq!(
        fake.lines().last().map(String::as_str),
        Some("iptables-legacy-save -t nat")
    );
}

#[test]
fn errors_propagate() {
    let mut fake = FakeIptables {
        missing: vec!["iptables-nft", "iptables-legacy-save"],
        ..FakeIptables::default()
    };
    let config = Config {
        mode: IptablesMode::Nft,
        ..Config::default()
    };
    let err = run_to_string(&config, &mut fake).expect_err("no iptables-nft");
    assert_eq!(
        err.to_string(),
        "`iptables-nft` not found in PATH; install the iptables package or pass --iptables-mode"
    );
}
