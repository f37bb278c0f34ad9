//! `weft demo` — the README's main command — runs to the end and shows traffic through both
//! sidecars, and a trace across them that it also relays to a collector given with `--otlp`.

use weft_cli_local::otlp::{Receiver, SpanKind};
use weft_e2e::prerequisites_met;

#[test]
fn the_demo_runs_and_shows_traffic_through_the_sidecars() {
    if !prerequisites_met("the_demo_runs_and_shows_traffic_through_the_sidecars") {
        return;
    }
    let weft = weft_cli_local::bin_path("weft").unwrap_or_else(|e| panic!("{e}"));
    // Stands in for Jaeger on the host: the demo relays its spans here from the host's network
    // namespace.
    let collector =
        Receiver::start(([127, 0, 0, 1], 0).into()).expect("a collector on the host's loopback");
    let out = std::process::Command::new(weft)
        .args([
            "demo",
            "--rate",
            "100",
            "--duration",
            "2s",
            "--requests-per-step",
            "500",
            "--otlp",
            &collector.addr().to_string(),
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
    check_trace(&stdout, &collector);
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

/// The tracing step printed one request as four spans, each a child of the line before
/// (client → web → backend), and the relay delivered every span the demo collected,
/// that trace's among them, to `collector`.
fn check_trace(stdout: &str, collector: &Receiver) {
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("  trace ") && l.contains(" (4 spans, "))
        .unwrap_or_else(|| panic!("no trace of 4 spans in:\n{stdout}"));
    let trace_id = lines[at]
        .get("  trace ".len().."  trace ".len() + 32)
        .unwrap_or_else(|| panic!("no trace id in {:?}", lines[at]));
    let (tree, after) = match lines.get(at + 1..at + 6) {
        Some([tree @ .., after]) => (tree, after),
        _ => panic!("the trace is cut short in:\n{stdout}"),
    };
    let web = if tree[1].contains("web-v1.shop") {
        "web-v1.shop"
    } else {
        "web-v2.shop"
    };
    let backend = if web == "web-v1.shop" {
        "web-v2.shop"
    } else {
        "web-v1.shop"
    };
    let expected = [
        "  └─ client.shop  CLIENT  GET /checkout -> 200   ".to_string(),
        format!("     └─ {web}  SERVER  GET /checkout -> 200   "),
        format!("        └─ {web}  CLIENT  GET / -> 200   "),
        format!("           └─ {backend}  SERVER  GET / -> 200   "),
    ];
    for (line, start) in tree.iter().zip(&expected) {
        assert!(
            line.starts_with(start.as_str()) && line.ends_with(" ms"),
            "{line:?} is not {start:?}... ms in:\n{stdout}"
        );
    }
    let who = format!(
        "  The client's sidecar made the CLIENT span, {}'s the SERVER span and the CLIENT span",
        web.trim_end_matches(".shop")
    );
    assert!(after.starts_with(&who), "missing {who:?} in:\n{stdout}");

    let relayed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Relayed "))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no relay line in:\n{stdout}"));
    assert!(
        stdout.contains(&format!(
            "exports to the OTLP/gRPC collector at {}",
            collector.endpoint()
        )),
        "{stdout}"
    );
    let spans = collector.spans();
    assert_eq!(spans.len(), relayed, "the collector got what the demo says");
    // Every request of the canary and the load crossed two sidecars.
    assert!(relayed > 2 * 2201, "{relayed} spans relayed");
    let mut hops: Vec<String> = spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .map(|s| format!("{} {}", s.service_name().unwrap_or("-"), s.kind))
        .collect();
    hops.sort();
    let mut expected = [
        format!("client.shop {}", SpanKind::Client),
        format!("{web} {}", SpanKind::Server),
        format!("{web} {}", SpanKind::Client),
        format!("{backend} {}", SpanKind::Server),
    ];
    expected.sort();
    assert_eq!(hops, expected, "trace {trace_id} at the collector");
}
