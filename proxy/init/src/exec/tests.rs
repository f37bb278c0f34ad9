use super::*;
use crate::{Config, JUMPS, fake::FakeIptables, plan};

fn v4_only() -> Plan {
    plan(&Config {
        ipv6: false,
        ..Config::default()
    })
}

#[test]
fn apply_adds_jumps_only_when_check_fails() {
    let mut fake = FakeIptables::default();
    let plan = plan(&Config::default());

    let jumps = Executor::new(&mut fake, Backend::Nft)
        .apply(&plan)
        .expect("first apply");
    assert!(jumps.iter().all(|j| j.added), "{jumps:?}");
    assert_eq!(
        fake.lines(),
        [
            "iptables-nft-restore -w 10 --noflush",
            "iptables-nft -w 10 -t nat -C PREROUTING -p tcp -j WEFT_INBOUND",
            "iptables-nft -w 10 -t nat -A PREROUTING -p tcp -j WEFT_INBOUND",
            "iptables-nft -w 10 -t nat -C OUTPUT -p tcp -j WEFT_OUTPUT",
            "iptables-nft -w 10 -t nat -A OUTPUT -p tcp -j WEFT_OUTPUT",
            "ip6tables-nft-restore -w 10 --noflush",
            "ip6tables-nft -w 10 -t nat -C PREROUTING -p tcp -j WEFT_INBOUND",
            "ip6tables-nft -w 10 -t nat -A PREROUTING -p tcp -j WEFT_INBOUND",
            "ip6tables-nft -w 10 -t nat -C OUTPUT -p tcp -j WEFT_OUTPUT",
            "ip6tables-nft -w 10 -t nat -A OUTPUT -p tcp -j WEFT_OUTPUT",
        ]
    );
    assert_eq!(
        fake.log[0].stdin.as_deref(),
        Some(plan.families[0].restore_input().as_str())
    );
    assert_eq!(
        fake.log[5].stdin.as_deref(),
        Some(plan.families[1].restore_input().as_str())
    );

    // Second run: the chains are replaced again, the jumps found and left alone.
    fake.log.clear();
    let jumps = Executor::new(&mut fake, Backend::Nft)
        .apply(&plan)
        .expect("second apply");
    assert!(jumps.iter().all(|j| !j.added), "{jumps:?}");
    assert!(
        !fake.lines().iter().any(|l| l.contains(" -A ")),
        "{:?}",
        fake.lines()
    );
    assert_eq!(fake.log.len(), 6, "two restores and four checks");
    assert_eq!(fake.rules["iptables-nft"].len(), 2, "no duplicate jumps");
}

#[test]
fn apply_keeps_a_jump_that_is_already_there() {
    let mut fake = FakeIptables::default();
    fake.seed("iptables-legacy", JUMPS[1].args("-A"));
    let jumps = Executor::new(&mut fake, Backend::Legacy)
        .apply(&v4_only())
        .expect("apply");
    assert_eq!(
        jumps
            .iter()
            .map(|j| (j.jump.from, j.added))
            .collect::<Vec<_>>(),
        [("PREROUTING", true), ("OUTPUT", false)]
    );
    assert_eq!(fake.rules["iptables-legacy"].len(), 2);
}

#[test]
fn cleanup_removes_every_copy_and_then_the_chains() {
    let mut fake = FakeIptables::default();
    fake.seed("iptables", JUMPS[1].args("-A"));
    fake.seed("iptables", JUMPS[1].args("-A"));
    Executor::new(&mut fake, Backend::Plain)
        .cleanup(&v4_only())
        .expect("cleanup");
    assert_eq!(
        fake.lines(),
        [
            "iptables-restore -w 10 --noflush",
            "iptables -w 10 -t nat -C PREROUTING -p tcp -j WEFT_INBOUND",
            "iptables -w 10 -t nat -C OUTPUT -p tcp -j WEFT_OUTPUT",
            "iptables -w 10 -t nat -D OUTPUT -p tcp -j WEFT_OUTPUT",
            "iptables -w 10 -t nat -C OUTPUT -p tcp -j WEFT_OUTPUT",
            "iptables -w 10 -t nat -D OUTPUT -p tcp -j WEFT_OUTPUT",
            "iptables -w 10 -t nat -C OUTPUT -p tcp -j WEFT_OUTPUT",
            "iptables-restore -w 10 --noflush",
        ]
    );
    assert_eq!(
        fake.log[0].stdin.as_deref(),
        Some(flush_chains_input().as_str())
    );
    assert_eq!(
        fake.log[7].stdin.as_deref(),
        Some(delete_chains_input().as_str())
    );
    assert!(fake.rules["iptables"].is_empty());

    // Nothing left: cleanup again succeeds and deletes nothing.
    fake.log.clear();
    Executor::new(&mut fake, Backend::Plain)
        .cleanup(&v4_only())
        .expect("second cleanup");
    assert!(!fake.lines().iter().any(|l| l.contains(" -D ")));
}

#[test]
fn cleanup_gives_up_on_a_jump_that_keeps_coming_back() {
    let mut fake = FakeIptables::default()
        .answer(" -C OUTPUT", 0, "", "")
        .answer(" -D OUTPUT", 0, "", "");
    let err = Executor::new(&mut fake, Backend::Nft)
        .cleanup(&v4_only())
        .expect_err("endless jump");
    assert!(
        matches!(err, Error::JumpNotRemoved { attempts: 16, .. }),
        "{err}"
    );
}

#[test]
fn missing_binary_fails_before_anything_runs() {
    let mut fake = FakeIptables {
        missing: vec!["ip6tables-nft-restore"],
        ..FakeIptables::default()
    };
    let err = Executor::new(&mut fake, Backend::Nft)
        .apply(&plan(&Config::default()))
        .expect_err("ip6tables-nft-restore is missing");
    assert_eq!(
        err.to_string(),
        "`ip6tables-nft-restore` not found in PATH; install the iptables package or pass --iptables-mode"
    );
    assert!(fake.log.is_empty(), "ran {:?}", fake.lines());
}

#[test]
fn permission_denied_is_reported_as_such() {
    let stderr = "iptables-nft-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: \
                  Permission denied (you must be root)\n";
    let mut fake = FakeIptables::default().answer("iptables-nft-restore", 4, "", stderr);
    let err = Executor::new(&mut fake, Backend::Nft)
        .apply(&v4_only())
        .expect_err("not root");
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("needs root or CAP_NET_ADMIN"));
    assert_eq!(fake.log.len(), 1, "stops at the first failure");
}

#[test]
fn check_errors_other_than_missing_are_not_taken_as_missing() {
    let mut fake = FakeIptables::default().answer(
        " -C PREROUTING",
        2,
        "",
        "iptables v1.8.9 (nf_tables): Chain 'WEFT_INBOUND' does not exist\n",
    );
    let err = Executor::new(&mut fake, Backend::Nft)
        .apply(&v4_only())
        .expect_err("-C exit 2");
    assert_eq!(
        err.to_string(),
        "`iptables-nft -w 10 -t nat -C PREROUTING -p tcp -j WEFT_INBOUND` failed with exit \
         status 2: iptables v1.8.9 (nf_tables): Chain 'WEFT_INBOUND' does not exist"
    );
    assert!(!fake.lines().iter().any(|l| l.contains(" -A ")));
}

#[test]
fn failed_restore_names_the_command_and_its_input() {
    let mut fake =
        FakeIptables::default().answer("restore", 1, "", "iptables-restore: line 4 failed\n");
    let err = Executor::new(&mut fake, Backend::Legacy)
        .apply(&v4_only())
        .expect_err("restore fails");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "`iptables-legacy-restore -w 10 --noflush` failed with exit status 1: \
             iptables-restore: line 4 failed\ninput was:\n   1 *nat\n"
        ),
        "{msg}"
    );
    assert!(msg.contains("\n   4 -A WEFT_INBOUND -p tcp -m multiport --dports 4191 -j RETURN"));
}

#[test]
fn dry_run_script() {
    assert_eq!(
        script(Backend::Nft, &v4_only(), Action::Apply),
        "iptables-nft-restore -w 10 --noflush <<'EOF'\n\
         *nat\n\
         :WEFT_INBOUND - [0:0]\n\
         :WEFT_OUTPUT - [0:0]\n\
         -A WEFT_INBOUND -p tcp -m multiport --dports 4191 -j RETURN\n\
         -A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143\n\
         -A WEFT_OUTPUT -m owner --uid-owner 2102 -j RETURN\n\
         -A WEFT_OUTPUT -o lo -j RETURN\n\
         -A WEFT_OUTPUT -d 127.0.0.0/8 -j RETURN\n\
         -A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 4140\n\
         COMMIT\n\
         EOF\n\
         iptables-nft -w 10 -t nat -C PREROUTING -p tcp -j WEFT_INBOUND || \
         iptables-nft -w 10 -t nat -A PREROUTING -p tcp -j WEFT_INBOUND\n\
         iptables-nft -w 10 -t nat -C OUTPUT -p tcp -j WEFT_OUTPUT || \
         iptables-nft -w 10 -t nat -A OUTPUT -p tcp -j WEFT_OUTPUT\n"
    );
    let cleanup = script(Backend::Legacy, &v4_only(), Action::Cleanup);
    assert!(
        cleanup.contains(
            "while iptables-legacy -w 10 -t nat -C OUTPUT -p tcp -j WEFT_OUTPUT; \
             do iptables-legacy -w 10 -t nat -D OUTPUT -p tcp -j WEFT_OUTPUT; done\n"
        ),
        "{cleanup}"
    );
    assert!(cleanup.ends_with("-X WEFT_INBOUND\n-X WEFT_OUTPUT\nCOMMIT\nEOF\n"));
}
