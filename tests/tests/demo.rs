//! `weft demo` — the README's main command — runs to the end and shows traffic through both
//! sidecars.

use weft_e2e::prerequisites_met;

#[test]
fn the_demo_runs_and_shows_traffic_through_the_sidecars() {
    if !prerequisites_met("the_demo_runs_and_shows_traffic_through_the_sidecars") {
        return;
    }
    let weft = weft_cli_local::bin_path("weft").unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(weft)
        .args([
            "demo",
            "--rate",
            "100",
            "--duration",
            "2s",
            "--requests-per-step",
            "500",
        ])
        .output()
        .expect("run weft demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "weft demo failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("sent 200, ok 200 (100.00% success)"),
        "{stdout}"
    );
    for step in [
        "split 100/0   -> observed web-v1 100.0%  web-v2   0.0%  (500 ok, 0 failed",
        "split   0/100 -> observed web-v1   0.0%  web-v2 100.0%  (500 ok, 0 failed",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    for step in ["split  90/10  -> observed", "split  50/50  -> observed"] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    // 1 first request + 4 steps × 500 + the load phase's 200.
    assert!(
        stdout.contains("client outbound: 2201 requests, 2201 ok, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Every request crossed both sidecars"),
        "{stdout}"
    );
    for line in [
        "  client   client.shop.serviceaccount.identity.cluster.local  (certificate valid for another",
        "  web-v1   web.shop.serviceaccount.identity.cluster.local  (certificate valid for another",
        "the web sidecars saw every request come from [\"client.shop.serviceaccount.identity.cluster.local\"]",
        "  client   (client.shop.serviceaccount.identity.cluster.local) GET / -> 20 of 20 allowed",
        "  intruder (intruder.shop.serviceaccount.identity.cluster.local) GET / -> status 403 Forbidden: unauthorized:",
        "the web sidecars counted 1 denied request(s)",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // Resilience: retries make /flaky reliable, the route timeout cuts /slow.
    let retried = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("HTTPRoute retry:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no retry line in:\n{stdout}"));
    assert!(
        retried >= 990,
        "{retried} of 1000 ok with retries:\n{stdout}"
    );
    assert!(
        stdout.contains("-> status 504 Gateway Timeout: request timed out after 500ms"),
        "{stdout}"
    );
    // Nothing is left behind.
    let id = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix('(')?.strip_suffix("-*)"))
        .unwrap_or_else(|| panic!("the demo names its namespaces: {stdout}"));
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    let ours: Vec<&String> = left.iter().filter(|n| n.starts_with(id)).collect();
    assert!(ours.is_empty(), "namespaces left behind: {ours:?}");
    assert!(
        !std::path::Path::new("/etc/netns")
            .join(format!("{id}-client"))
            .exists()
    );
}
