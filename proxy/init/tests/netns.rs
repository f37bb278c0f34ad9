//! The real `weft-init` binary against real iptables, nft and legacy, each run in a throwaway
//! network namespace. Needs root, iproute2 and the iptables package; without them the tests
//! print a notice and pass, except under `CI=true`, where that is a failure.
//!
//! Every iptables command here goes through `ip netns exec <test netns>`, so the host's own
//! rules are never read or changed.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{self, Command, Output},
};

const BIN: &str = env!("CARGO_BIN_EXE_weft-init");

/// Flags that exercise every kind of rule.
const FLAGS: &[&str] = &[
    "--skip-inbound-ports",
    "22,8000-8010",
    "--skip-outbound-ports",
    "25,3306:3307",
    "--skip-outbound-cidrs",
    "10.96.0.0/12,fd00::/8",
];

/// The Weft lines `iptables-save` must show for [`FLAGS`], per family.
fn expected(loopback: &str, cidr: &str) -> Vec<String> {
    [
        ":WEFT_INBOUND - [0:0]",
        ":WEFT_OUTPUT - [0:0]",
        "-A PREROUTING -p tcp -j WEFT_INBOUND",
        "-A OUTPUT -p tcp -j WEFT_OUTPUT",
        "-A WEFT_INBOUND -p tcp -m multiport --dports 4191,22,8000:8010 -j RETURN",
        "-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143",
        "-A WEFT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
        "-A WEFT_OUTPUT -o lo -j RETURN",
        &format!("-A WEFT_OUTPUT -d {loopback} -j RETURN"),
        "-A WEFT_OUTPUT -p tcp -m multiport --dports 25,3306:3307 -j RETURN",
        &format!("-A WEFT_OUTPUT -d {cidr} -j RETURN"),
        "-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn nft() {
    if prerequisites(&[]) {
        exercise("nft", "legacy");
    }
}

#[test]
fn legacy() {
    if prerequisites(&[]) {
        exercise("legacy", "nft");
    }
}

/// Apply, apply again, dry runs and cleanups with `mode`, checking the rules after each, and
/// that `other` mode's tables never see a Weft rule.
fn exercise(mode: &str, other: &str) {
    let ns = Netns::new(mode);
    let flags = |extra: &[&str]| -> Vec<String> {
        ["--iptables-mode", mode]
            .iter()
            .chain(FLAGS)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let before = ns.nat(mode);

    let out = ns.weft_init(&flags(&["--dry-run"]));
    assert!(stdout(&out).contains("-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 4140"));
    assert_eq!(ns.nat(mode), before, "--dry-run changed the rules");

    ns.weft_init(&flags(&[]));
    let applied = ns.nat(mode);
    assert_eq!(
        weft_lines(&applied.0),
        expected("127.0.0.0/8", "10.96.0.0/12")
    );
    assert_eq!(weft_lines(&applied.1), expected("::1/128", "fd00::/8"));
    assert!(!ns.nat_rules(other).contains("WEFT"), "{other} got rules");

    let out = ns.weft_init(&flags(&[]));
    assert!(stdout(&out).contains("already present"), "{}", stdout(&out));
    assert_eq!(ns.nat(mode), applied, "a second run changed the rules");

    ns.weft_init(&flags(&["--cleanup", "--dry-run"]));
    assert_eq!(
        ns.nat(mode),
        applied,
        "--cleanup --dry-run changed the rules"
    );

    ns.weft_init(&flags(&["--cleanup"]));
    assert_eq!(ns.nat(mode), before, "--cleanup left something behind");
    ns.weft_init(&flags(&["--cleanup"]));
    assert_eq!(ns.nat(mode), before, "a second --cleanup changed something");
}

#[test]
fn auto_picks_nft_in_a_fresh_namespace() {
    if !prerequisites(&[]) {
        return;
    }
    let ns = Netns::new("auto-nft");
    let out = ns.weft_init(&["--ipv6=false".into()]);
    assert!(stdout(&out).contains("with nft (auto:"), "{}", stdout(&out));
    assert!(
        ns.nat_rules("nft")
            .contains("-A OUTPUT -p tcp -j WEFT_OUTPUT")
    );
    // Detection only read legacy: it did not even create the legacy nat table.
    assert_eq!(ns.nat_rules("legacy"), "");
}

#[test]
fn auto_follows_existing_legacy_nat_rules() {
    if !prerequisites(&[]) {
        return;
    }
    let ns = Netns::new("auto-legacy");
    let rule = [
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-d",
        "192.0.2.1/32",
        "-j",
        "RETURN",
    ];
    ns.exec("iptables-legacy", &rule);
    let out = ns.weft_init(&["--ipv6=false".into()]);
    assert!(
        stdout(&out).contains("with legacy (auto:"),
        "{}",
        stdout(&out)
    );
    let legacy = ns.nat_rules("legacy");
    assert!(
        legacy.contains("-A OUTPUT -p tcp -j WEFT_OUTPUT"),
        "{legacy}"
    );
    assert!(
        legacy.contains("-A POSTROUTING -d 192.0.2.1/32 -j RETURN"),
        "{legacy}"
    );
    assert!(!ns.nat_rules("nft").contains("WEFT"));
}

#[test]
fn unprivileged_run_says_it_needs_root() {
    if !prerequisites(&["setpriv"]) {
        return;
    }
    let ns = Netns::new("nobody");
    // A copy anyone can execute, in case the target directory is private.
    let dir = TempDir::new();
    let bin = dir.0.join("weft-init");
    fs::copy(BIN, &bin).expect("copy weft-init");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod weft-init");
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    for mode in ["nft", "legacy"] {
        let out = ns.try_exec(
            "setpriv",
            &["--reuid=65534", "--regid=65534", "--clear-groups"]
                .map(String::from)
                .into_iter()
                .chain([
                    bin.display().to_string(),
                    "--iptables-mode".into(),
                    mode.into(),
                ])
                .collect::<Vec<_>>(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        assert!(
            stderr.contains("needs root or CAP_NET_ADMIN"),
            "{mode}: {stderr}"
        );
    }
}

// === helpers ===

/// Whether the tests can run here; a notice if not, or a panic under `CI=true`.
fn prerequisites(extra: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !is_root() {
        missing.push("not root".into());
    }
    let tools = [
        "ip",
        "iptables-nft",
        "iptables-nft-save",
        "ip6tables-nft-save",
    ]
    .iter()
    .chain(&[
        "iptables-legacy",
        "iptables-legacy-save",
        "ip6tables-legacy-save",
    ])
    .chain(extra);
    missing.extend(
        tools
            .filter(|t| !in_path(t))
            .map(|t| format!("`{t}` not in PATH")),
    );
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "weft-init netns tests cannot run: {} (they need root, iproute2 and the iptables package)",
        missing.join(", ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}; CI=true, so a missing prerequisite is a failure");
    }
    // Straight to stderr: libtest captures `eprintln!`, and this notice must be seen.
    let _ = writeln!(
        io::stderr(),
        "NOTICE: {msg}; skipped (with CI=true this fails)"
    );
    false
}

fn is_root() -> bool {
    // The real UID is the first field of `Uid:` in /proc/self/status.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
    })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The nat-table lines of Weft's chains and the jumps to them.
fn weft_lines(save: &str) -> Vec<String> {
    save.lines()
        .filter(|l| l.contains("WEFT"))
        .map(String::from)
        .collect()
}

/// A network namespace deleted on drop, even when the test panics.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("weft-init-test-{}-{tag}", process::id());
        // A leftover of a killed run that had our pid is ours to remove.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns { name }
    }

    /// Runs `program` in the namespace; no assertion on how it exits.
    fn try_exec(&self, program: &str, args: &[impl AsRef<str>]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args.iter().map(AsRef::as_ref))
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {program}: {e}", self.name))
    }

    /// Runs `program` in the namespace and requires it to succeed.
    fn exec(&self, program: &str, args: &[impl AsRef<str>]) -> Output {
        let out = self.try_exec(program, args);
        let line = std::iter::once(program)
            .chain(args.iter().map(AsRef::as_ref))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            out.status.success(),
            "`{line}` in {} failed ({}):\n{}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn weft_init(&self, args: &[String]) -> Output {
        self.exec(BIN, args)
    }

    /// `iptables-save -t nat` of `mode`, for IPv4 and IPv6, without comments (timestamps).
    fn nat(&self, mode: &str) -> (String, String) {
        let save = |family: &str| {
            let out = self.exec(&format!("{family}-{mode}-save"), &["-t", "nat"]);
            stdout(&out)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        };
        (save("iptables"), save("ip6tables"))
    }

    /// All IPv4 rules of `mode`. Without `-t nat`, so looking does not create the table.
    fn nat_rules(&self, mode: &str) -> String {
        stdout(&self.exec(&format!("iptables-{mode}-save"), &[] as &[&str]))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        match Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "could not delete netns {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("could not delete netns {}: {e}", self.name),
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("weft-init-test-{}", process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
