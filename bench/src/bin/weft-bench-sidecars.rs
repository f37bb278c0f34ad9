//! `weft-bench-sidecars`: what a pair of Weft sidecars costs. Two client/server pod pairs on
//! one bridge, one plain and one meshed (weft-init rules + weft-proxy on both sides); the same
//! open-loop load runs against each, alternating, in the same run, so the difference is the
//! mesh and not the machine's mood. Needs root.

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use std::time::Duration;
use weft_cli_local::{Network, Pod, Sidecar, bin_path, metric_sum};

#[derive(Parser)]
#[command(about = "Added latency, throughput and memory of a pair of Weft sidecars")]
struct Args {
    /// Open-loop request rate for the latency runs.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Length of each measured run.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Warm-up before each run (not measured).
    #[arg(long, default_value = "2s")]
    warmup: String,
    /// Keep-alive connections the client uses.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Alternating direct/meshed rounds at the fixed rate.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Length of the closed-loop (max throughput) runs; `0s` skips them.
    #[arg(long, default_value = "5s")]
    max_duration: String,
    /// Extra proxy settings, `WEFT_PROXY_NAME=value` (repeatable).
    #[arg(long = "proxy-env", value_parser = parse_env)]
    proxy_env: Vec<(String, String)>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if k.starts_with("WEFT_PROXY_") => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?}: expected WEFT_PROXY_NAME=value")),
    }
}

struct Pair {
    client: Pod,
    url: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server_bin = bin_path("weft-bench-server")?;
    let load_bin = bin_path("weft-load")?;
    let net = Network::new().context("cannot create the benchmark network")?;
    let (direct, _) = pair(&net, "direct", None, &server_bin)?;
    let mut env: Vec<(&str, &str)> = vec![("WEFT_PROXY_LOG", "warn")];
    env.extend(args.proxy_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (mesh, sidecars) = pair(&net, "mesh", Some(&env), &server_bin)?;

    let load = |pair: &Pair, rate: &str, duration: &str, warmup: &str| -> anyhow::Result<Value> {
        let out = pair
            .client
            .command(&load_bin.to_string_lossy())
            .args([
                "--url",
                &pair.url,
                "--rate",
                rate,
                "--duration",
                duration,
                "--warmup",
                warmup,
            ])
            .args(["--connections", &args.connections.to_string(), "--json"])
            .output()
            .context("cannot run weft-load")?;
        if !out.status.success() {
            bail!("weft-load failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("weft-load printed no JSON")?;
        if v["errors"].as_u64() != Some(0) || v["non_2xx"].as_u64() != Some(0) {
            bail!("failed requests in a benchmark run: {v}");
        }
        Ok(v)
    };

    let rate = args.rate.to_string();
    let mut rounds = Vec::new();
    for _ in 0..args.rounds {
        let d = load(&direct, &rate, &args.duration, &args.warmup)?;
        let cpu_before = cpu(&sidecars);
        let m = load(&mesh, &rate, &args.duration, &args.warmup)?;
        let cpu_used = cpu(&sidecars) - cpu_before;
        rounds.push((d, m, cpu_used));
    }
    let rss: Vec<f64> = sidecars
        .iter()
        .map(|s| metric_sum(&s.metrics(), "process_resident_memory_bytes", &[]) / 1e6)
        .collect();
    let (max_direct, max_mesh) = if args.max_duration != "0s" {
        (
            Some(load(&direct, "max", &args.max_duration, "1s")?),
            Some(load(&mesh, "max", &args.max_duration, "1s")?),
        )
    } else {
        (None, None)
    };
    let rss_after_max: Vec<f64> = sidecars
        .iter()
        .map(|s| metric_sum(&s.metrics(), "process_resident_memory_bytes", &[]) / 1e6)
        .collect();

    let pct = |v: &Value, p: &str| v["latency_ms"][p].as_f64().unwrap_or(f64::NAN);
    let avg = |f: &dyn Fn(&(Value, Value, f64)) -> f64| {
        rounds.iter().map(f).sum::<f64>() / rounds.len() as f64
    };
    let mut summary = serde_json::Map::new();
    for p in ["p50", "p90", "p99", "p99_9"] {
        summary.insert(format!("direct_{p}_ms"), json!(avg(&|r| pct(&r.0, p))));
        summary.insert(format!("mesh_{p}_ms"), json!(avg(&|r| pct(&r.1, p))));
        summary.insert(
            format!("added_{p}_ms"),
            json!(avg(&|r| pct(&r.1, p) - pct(&r.0, p))),
        );
    }
    let secs = rounds
        .iter()
        .map(|r| r.1["elapsed_s"].as_f64().unwrap_or(0.0))
        .sum::<f64>();
    summary.insert(
        "proxy_cpu_pct_per_proxy".into(),
        json!(100.0 * rounds.iter().map(|r| r.2).sum::<f64>() / secs.max(1e-9) / 2.0),
    );
    summary.insert("proxy_rss_mb_after_fixed_rate".into(), json!(rss));
    summary.insert("proxy_rss_mb_after_max".into(), json!(rss_after_max));
    if let (Some(d), Some(m)) = (&max_direct, &max_mesh) {
        summary.insert("max_rps_direct".into(), d["achieved_rate"].clone());
        summary.insert("max_rps_mesh".into(), m["achieved_rate"].clone());
    }
    let summary = Value::Object(summary);
    if args.json {
        println!(
            "{}",
            json!({"summary": summary, "rounds": rounds.iter().map(|r| json!({"direct": r.0, "mesh": r.1})).collect::<Vec<_>>(), "max": {"direct": max_direct, "mesh": max_mesh}})
        );
        return Ok(());
    }
    println!(
        "sidecar pair vs direct, {} req/s open loop, {} connections, {} rounds of {}",
        args.rate, args.connections, args.rounds, args.duration
    );
    println!(
        "{:>8} {:>10} {:>10} {:>10}",
        "", "direct", "meshed", "added"
    );
    for (p, label) in [
        ("p50", "p50"),
        ("p90", "p90"),
        ("p99", "p99"),
        ("p99_9", "p99.9"),
    ] {
        let s = |k: &str| summary[format!("{k}_{p}_ms")].as_f64().unwrap_or(f64::NAN);
        println!(
            "{label:>8} {:>9.3}ms {:>9.3}ms {:>+9.3}ms",
            s("direct"),
            s("mesh"),
            s("added")
        );
    }
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "  round {}: direct p50 {:.3} p99 {:.3} | meshed p50 {:.3} p99 {:.3}",
            i + 1,
            pct(&r.0, "p50"),
            pct(&r.0, "p99"),
            pct(&r.1, "p50"),
            pct(&r.1, "p99")
        );
    }
    println!(
        "proxy CPU at {} req/s: {:.1}% of a core per proxy",
        args.rate,
        summary["proxy_cpu_pct_per_proxy"]
            .as_f64()
            .unwrap_or(f64::NAN)
    );
    println!(
        "proxy RSS (client, server): {:.1} MB, {:.1} MB after the fixed-rate runs; {:.1} MB, {:.1} MB after max throughput",
        rss[0], rss[1], rss_after_max[0], rss_after_max[1]
    );
    if let (Some(d), Some(m)) = (&max_direct, &max_mesh) {
        let (d, m) = (
            d["achieved_rate"].as_f64().unwrap_or(0.0),
            m["achieved_rate"].as_f64().unwrap_or(0.0),
        );
        println!(
            "max throughput (closed loop, {} connections): direct {d:.0} req/s, meshed {m:.0} req/s ({:.2}x of direct)",
            args.connections,
            m / d.max(1.0)
        );
    }
    Ok(())
}

/// A client and a server pod; with `meshed` (the proxies' settings), both get sidecars before the server starts, as
/// the injector orders them.
fn pair(
    net: &Network,
    name: &str,
    meshed: Option<&[(&str, &str)]>,
    server_bin: &std::path::Path,
) -> anyhow::Result<(Pair, Vec<Sidecar>)> {
    let client = net.pod(&format!("{name}-client"))?;
    let server = net.pod(&format!("{name}-server"))?;
    let mut sidecars = Vec::new();
    if let Some(env) = meshed {
        for pod in [&client, &server] {
            sidecars.push(Sidecar::inject(pod, &[], env)?);
        }
    }
    let mut cmd = server.command(&server_bin.to_string_lossy());
    cmd.args(["--addr", "0.0.0.0:8080", "--threads", "1"]);
    server.start("server", cmd)?;
    server.wait_listening(&[8080], Duration::from_secs(10))?;
    Ok((
        Pair {
            url: format!("http://{}:8080/", server.ip),
            client,
        },
        sidecars,
    ))
}

fn cpu(sidecars: &[Sidecar]) -> f64 {
    sidecars
        .iter()
        .map(|s| metric_sum(&s.metrics(), "process_cpu_seconds", &[]))
        .sum()
}
