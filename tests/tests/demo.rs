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
        .args(["demo", "--rate", "100", "--duration", "2s"])
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
    assert!(stdout.contains("client outbound: 2"), "{stdout}");
    assert!(
        stdout.contains("Every request crossed both sidecars"),
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
