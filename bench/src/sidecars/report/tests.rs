use super::*;
use crate::sidecars::MeshMode;

/// A run with latencies `p50`..`max` as given, at `rate` per second over 10s after 2s warm-up.
fn run(rate: f64, [p50, p90, p99, p99_9, max]: [f64; 5]) -> LoadRun {
    LoadRun {
        sent: 100,
        ok: 100,
        non_2xx: 0,
        errors: 0,
        warmup_s: 2.0,
        elapsed_s: 10.0,
        achieved_rate: rate,
        latency_ms: LatencyMs {
            p50,
            p90,
            p99,
            p99_9,
            max,
        },
        rest: serde_json::Map::new(),
    }
}

fn report() -> Report {
    let rounds = vec![
        Round::new(
            run(1000.0, [0.1, 0.2, 0.3, 0.4, 0.5]),
            run(1000.0, [0.3, 0.5, 0.9, 1.4, 2.0]),
            0.6,
        ),
        Round::new(
            run(1000.0, [0.2, 0.2, 0.5, 0.6, 0.7]),
            run(1000.0, [0.6, 0.7, 1.1, 1.6, 2.2]),
            1.8,
        ),
    ];
    let max = Versus {
        direct: run(20_000.0, [0.5; 5]),
        mesh: run(5_000.0, [2.0; 5]),
    };
    let new_connections = NewConnections {
        direct: run(8_000.0, [1.0; 5]),
        mesh_http: Measured::new(run(2_000.0, [4.0; 5]), 2.4, 8_000.0),
        mesh_opaque: Measured::new(run(1_000.0, [9.0; 5]), 2.0, 4_001.0),
    };
    let rss = Rss {
        after_fixed_rate: [11.0, 12.0],
        after_max: Some([13.0, 14.0]),
        after_new_connections: Some([15.3, 16.5]),
    };
    Report {
        mesh: MeshMode::Mtls,
        rate: 1000,
        connections: 16,
        duration_s: 10.0,
        connect_concurrency: 16,
        summary: Summary::new(&rounds, Some(&max), Some(&new_connections), &rss),
        rounds,
        max: Some(max),
        new_connections: Some(new_connections),
        inbound_tls: InboundTls {
            mtls: 12_345.0,
            plaintext: 0.0,
        },
        spans: None,
    }
}

fn near(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
}

#[test]
fn summary_averages_rounds() {
    let s = report().summary;
    near(s.direct_ms.p50, 0.15);
    near(s.mesh_ms.p99, 1.0);
    // Mean of (meshed - direct) per round: (0.2 + 0.4) / 2 and (0.6 + 0.6) / 2.
    near(s.added_ms.p50, 0.3);
    near(s.added_ms.p99, 0.6);
    near(s.added_ms.max, 1.5);
    // 2.4 CPU seconds of two proxies over 2 × (10s + 2s warm-up): 5% of a core each.
    near(s.proxy_cpu_pct_per_proxy, 5.0);
    assert_eq!(s.max_rps, Some([20_000.0, 5_000.0]));
    assert_eq!(s.new_connections_per_s, Some([8_000.0, 2_000.0, 1_000.0]));
    // 2.4s / 8000 connections, 2.0s / 4001 (rounded to the ns).
    assert_eq!(s.proxy_cpu_us_per_new_connection, Some([300.0, 499.875]));
    assert_eq!(s.proxy_rss_mb.after_new_connections, Some([15.3, 16.5]));
}

#[test]
fn skipped_parts_are_absent() {
    let r = report();
    let s = Summary::new(&r.rounds, None, None, &Rss::default());
    assert_eq!((s.max_rps, s.new_connections_per_s), (None, None));
    assert_eq!(s.proxy_cpu_us_per_new_connection, None);
    let text = Report {
        summary: s,
        max: None,
        new_connections: None,
        ..r
    }
    .to_string();
    assert!(!text.contains("max throughput"), "{text}");
    assert!(!text.contains("new connections"), "{text}");
}

#[test]
fn text_report() {
    let text = report().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "sidecar pair vs direct, mesh mtls: controller, load to a Service ClusterIP, mTLS between the proxies",
            "latency at 1000 req/s open loop, 16 connections, 2 rounds of 10s:",
            "              direct      meshed       added",
            "     p50     0.150ms     0.450ms    +0.300ms",
            "     p90     0.200ms     0.600ms    +0.400ms",
            "     p99     0.400ms     1.000ms    +0.600ms",
            "   p99.9     0.500ms     1.500ms    +1.000ms",
            "  round 1: direct p50 0.100 p99 0.300 | meshed p50 0.300 p99 0.900",
            "  round 2: direct p50 0.200 p99 0.500 | meshed p50 0.600 p99 1.100",
            "proxy CPU at 1000 req/s: 5.0% of a core per proxy",
            "proxy RSS (client, server): 11.0 MB, 12.0 MB after the fixed-rate runs; 13.0 MB, 14.0 MB after max throughput; 15.3 MB, 16.5 MB after the new-connection runs",
            "max throughput (closed loop, 16 connections): direct 20000 req/s, meshed 5000 req/s (0.25x of direct)",
            "new connections (closed loop, 16 at a time, one request each):",
            "  direct            8000/s",
            "  meshed HTTP       2000/s (0.25x of direct; upstream connections pooled)",
            "  meshed opaque     1000/s (0.12x of direct; an mTLS handshake between the proxies each)",
            "  proxy CPU per connection (both proxies): HTTP 300µs, opaque 500µs",
            "  connect + request p50/p99 ms: direct 1.000/1.000, meshed HTTP 4.000/4.000, meshed opaque 9.000/9.000",
            "server proxy inbound authorizations: 12345 over mTLS, 0 plaintext",
        ]
    );
}

#[test]
fn json_report() {
    let json = serde_json::to_value(report()).expect("serializes");
    assert_eq!(json["mesh"], "mtls");
    assert_eq!(
        json["summary"]["added_ms"]["p50"]
            .as_f64()
            .map(|v| (v * 1e3).round()),
        Some(300.0)
    );
    assert_eq!(json["summary"]["new_connections_per_s"][2], 1000.0);
    assert_eq!(json["summary"]["proxy_rss_mb"]["after_max"][1], 14.0);
    assert_eq!(json["rounds"][1]["proxy_cpu_s"], 1.8);
    assert_eq!(json["rounds"][0]["mesh"]["latency_ms"]["p99"], 0.9);
    assert_eq!(json["max"]["direct"]["achieved_rate"], 20_000.0);
    assert_eq!(
        json["new_connections"]["mesh_opaque"]["proxy_connections"],
        4001.0
    );
    assert_eq!(json["inbound_tls"]["plaintext"], 0.0);
}
