//! The `weft-init` binary's flags and errors. Needs no root: every run here either fails
//! before running anything or is a dry run with an explicit mode, and PATH points at an empty
//! directory, so no iptables binary could run even by mistake.

use std::{
    fs,
    path::PathBuf,
    process::{self, Command, Output},
};

const BIN: &str = env!("CARGO_BIN_EXE_weft-init");

/// Runs weft-init with `args` and `env`, no `WEFT_INIT_*` inherited, and an empty PATH.
fn weft_init(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let empty = std::env::temp_dir().join(format!("weft-init-cli-{}-{name}", process::id()));
    fs::create_dir_all(&empty).expect("create empty PATH dir");
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("PATH", &empty);
    for (key, _) in std::env::vars() {
        if key.starts_with("WEFT_INIT_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .envs(env.iter().copied())
        .output()
        .expect("run weft-init");
    let _ = fs::remove_dir(PathBuf::from(&empty));
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Flags, env vars, and what stderr must contain.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn bad_values_name_the_flag_and_the_value() {
    let cases: &[Case] = &[
        (
            &["--skip-outbound-ports", "22,0"],
            &[],
            "invalid value '22,0' for '--skip-outbound-ports <PORTS>': port 0 is out of range",
        ),
        (
            &["--inbound-port", "65536"],
            &[],
            "invalid value '65536' for '--inbound-port <INBOUND_PORT>': port 65536 is out of range",
        ),
        (
            &["--skip-inbound-ports", "9000-8000"],
            &[],
            "`9000-8000` is not a port range",
        ),
        (
            &[],
            &[("WEFT_INIT_SKIP_OUTBOUND_CIDRS", "10.0.0.0/8,10.0.0.300/8")],
            "for '--skip-outbound-cidrs <CIDRS>': `10.0.0.300/8` is not a CIDR",
        ),
        (
            &["--iptables-mode", "xtables"],
            &[],
            "`xtables` is not an iptables mode; expected auto, nft or legacy",
        ),
    ];
    for (i, (args, env, want)) in cases.iter().enumerate() {
        let out = weft_init(&format!("bad{i}"), args, env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} {env:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(want),
            "{args:?} {env:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn missing_iptables_is_named() {
    let out = weft_init("missing", &["--iptables-mode", "nft"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "weft-init: error: `iptables-nft` not found in PATH; install the iptables package or \
         pass --iptables-mode\n"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn env_vars_configure_a_dry_run() {
    let out = weft_init(
        "env",
        &[],
        &[
            ("WEFT_INIT_DRY_RUN", "1"),
            ("WEFT_INIT_IPTABLES_MODE", "legacy"),
            ("WEFT_INIT_IPV6", "false"),
            ("WEFT_INIT_PROXY_UID", "1337"),
            ("WEFT_INIT_INBOUND_PORT", "15006"),
            ("WEFT_INIT_OUTBOUND_PORT", "15001"),
            ("WEFT_INIT_ADMIN_PORT", "15020"),
            ("WEFT_INIT_SKIP_INBOUND_PORTS", "22"),
            ("WEFT_INIT_SKIP_OUTBOUND_PORTS", "443,8000-8100"),
            ("WEFT_INIT_SKIP_OUTBOUND_CIDRS", "10.96.0.0/12,fd00::/8"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    for line in [
        "iptables-legacy-restore -w 10 --noflush <<'EOF'",
        "-A WEFT_INBOUND -p tcp -m multiport --dports 15020,22 -j RETURN",
        "-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 15006",
        "-A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A WEFT_OUTPUT -p tcp -m multiport --dports 443,8000:8100 -j RETURN",
        "-A WEFT_OUTPUT -d 10.96.0.0/12 -j RETURN",
        "-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 15001",
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "missing {line:?} in:\n{script}"
        );
    }
    assert!(!script.contains("ip6tables"), "IPv6 is off:\n{script}");

    // A flag beats its env var.
    let out = weft_init(
        "env-flag",
        &["--cleanup", "--ipv6", "true"],
        &[
            ("WEFT_INIT_DRY_RUN", "yes"),
            ("WEFT_INIT_IPTABLES_MODE", "nft"),
            ("WEFT_INIT_IPV6", "false"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    assert!(script.starts_with("# weft-init dry run: cleanup for IPv4 + IPv6 with nft"));
    assert!(
        script.contains("while ip6tables-nft -w 10 -t nat -C OUTPUT"),
        "{script}"
    );
}
