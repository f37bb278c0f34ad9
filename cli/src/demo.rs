//! `weft demo`: the whole data path on one host. Pods are network namespaces on a private
//! bridge; each meshed pod gets real `weft-init` redirect rules and a real `weft-proxy` running
//! as UID 2102; the sample app and the load generator are ordinary processes in their pods that
//! know nothing of the mesh and call each other by service name. Every sidecar exports its
//! spans to a receiver in an `otel` pod; `--otlp` relays them to a real collector as well.

pub mod app;
mod authz;
mod resilience;
mod trace;

use anyhow::{Context, bail};
use std::{path::Path, time::Duration};
use weft_cli_local::{
    Pod, bin_path, check_prerequisites, metric_sum,
    otlp::CollectorAddr,
    shop::{NAMESPACE, Options, PORT, Shop, WEB_HOST, WEB_IP},
    traffic,
};

/// `weft demo` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per second the client sends (open loop).
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// How long the client sends, e.g. `5s`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Requests the client sends at each step of the canary.
    #[arg(long, default_value_t = 2000)]
    pub requests_per_step: usize,
    /// Also sends every span the sidecars exported to this OTLP/gRPC collector, e.g. Jaeger's
    /// `127.0.0.1:4317` (`HOST:PORT` or `http://HOST:PORT`), relayed from this host at the end.
    #[arg(long, value_name = "ADDR")]
    pub otlp: Option<CollectorAddr>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (n, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 5s or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{text:?} is not a duration like 5s or 500ms")),
    }
}

/// The canary steps: web-v1's and web-v2's weights in the TrafficSplit.
const STEPS: [(u32, u32); 4] = [(100, 0), (90, 10), (50, 50), (0, 100)];

/// Runs the demo and removes everything it made, also when it fails.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_prerequisites().context("the demo cannot run")?;
    let load = bin_path("weft-load")?;
    // Interrupted, the shop is still dropped: the signal only stops the load early.
    let shop = Shop::start_with(Options {
        weights: STEPS[0],
        trace_sampling: Some(1.0),
        ..Options::default()
    })
    .map_err(|e| anyhow::anyhow!("cannot set up the demo: {e}"))?;
    let result = steps(&shop, &load, &args);
    // What was traced is worth seeing also when a step failed.
    if let Some(to) = &args.otlp {
        trace::relay(&shop, to);
    }
    println!("Cleaning up the pods, rules and processes.");
    drop(shop);
    result
}

/// Every step, in order; the first that fails ends the demo.
fn steps(shop: &Shop, load: &Path, args: &Args) -> anyhow::Result<()> {
    println!(
        "Weft local demo — pods are network namespaces ({}-*) on a private bridge (10.42.0.0/24)\n",
        shop.net.id()
    );
    println!(
        "  pod weft/weft-controller {:<10} weft-controller --source files --dir {}",
        shop.controller.pod.ip,
        shop.dir.display()
    );
    if let Some(receiver) = &shop.otlp {
        let addr = receiver.addr();
        println!(
            "  pod weft/otel            {:<10} OTLP/gRPC trace receiver on :{} (a thread of this process)",
            addr.ip(),
            addr.port()
        );
    }
    for sidecar in [&shop.client, &shop.v1, &shop.v2] {
        println!(
            "  pod {NAMESPACE}/{:<18} {:<10} weft-init rules + weft-proxy (uid {}) ready, admin {}",
            sidecar.pod.name,
            sidecar.pod.ip,
            weft_cli_local::PROXY_UID,
            sidecar.admin_addr()
        );
    }
    println!(
        "  service {WEB_HOST}:{PORT} (ClusterIP {WEB_IP}) -> web-v1 {} | web-v2 {}\n",
        shop.v1.pod.ip, shop.v2.pod.ip
    );
    authz::show_identities(shop)?;

    let request = Shop::web_request("/");
    // The first request makes the client's sidecar look the service up.
    let first = traffic::tally(&shop.client.pod, &request, 1, 1);
    if first.failures > 0 {
        bail!(
            "the first request failed: {:?}\n--- client sidecar log ---\n{}\n--- controller log ---\n{}",
            first.errors,
            shop.client.process.log(),
            shop.controller.log()
        );
    }

    println!(
        "Canary: shifting {WEB_HOST} from web-v1 to web-v2 with a TrafficSplit in the files source"
    );
    println!(
        "  (the client's sidecar follows the controller; {} requests per step)",
        args.requests_per_step
    );
    for (w1, w2) in STEPS {
        let before = shop.policy_updates();
        shop.set_split((w1, w2))?;
        let applied = shop.wait_policy_update(before, Duration::from_secs(5));
        let tally = traffic::tally(&shop.client.pod, &request, args.requests_per_step, 4);
        println!(
            "  split {w1:>3}/{w2:<3} -> observed web-v1 {:>5.1}%  web-v2 {:>5.1}%  ({} ok, {} failed; {})",
            tally.percent("web-v1"),
            tally.percent("web-v2"),
            tally.ok(),
            tally.failures,
            match applied {
                Some(after) => format!(
                    "the sidecar had it {} ms after the file changed",
                    after.as_millis()
                ),
                None => "unchanged".to_string(),
            },
        );
        if tally.failures > 0 {
            bail!(
                "{} requests failed during the canary: {:?}",
                tally.failures,
                tally.errors
            );
        }
        let expected = f64::from(w2) / f64::from(w1 + w2) * 100.0;
        if (tally.percent("web-v2") - expected).abs() > 5.0 {
            bail!(
                "the observed split {:.1}% is not the configured {expected:.0}% for web-v2",
                tally.percent("web-v2")
            );
        }
    }
    println!();
    let url = format!("http://{WEB_HOST}:{PORT}/");
    measure(&shop.client.pod, load, &url, args)?;

    let client_metrics = shop.client.metrics();
    let outbound = metric_sum(
        &client_metrics,
        "request_total",
        &["direction=\"outbound\""],
    );
    let web_metrics = [shop.v1.metrics(), shop.v2.metrics()];
    let inbound: f64 = web_metrics
        .iter()
        .map(|m| metric_sum(m, "request_total", &["direction=\"inbound\""]))
        .sum();
    println!("What the sidecars saw (their /metrics on :4191):");
    show("client", "outbound", &client_metrics);
    show("web-v1", "inbound", &web_metrics[0]);
    show("web-v2", "inbound", &web_metrics[1]);
    if (outbound - inbound).abs() > 0.5 {
        bail!(
            "the client's sidecar routed {outbound} requests but the web sidecars received {inbound}: traffic bypassed the mesh"
        );
    }
    println!("\nEvery request crossed both sidecars.\n");
    resilience::run(shop)?;
    // Before the authorization step, whose policy admits only the client to the web pods.
    trace::run(shop)?;
    authz::run(shop)
}

/// Open-loop load at the final split: success rate and latency through both sidecars.
fn measure(client: &Pod, load: &Path, url: &str, args: &Args) -> anyhow::Result<()> {
    println!(
        "Load: client -> {url} at {} req/s for {:?} (open loop, latency from when each request was due)",
        args.rate, args.duration
    );
    let out = client
        .command(&load.to_string_lossy())
        .args(["--url", url, "--rate", &args.rate.to_string()])
        .args(["--duration", &format!("{}ms", args.duration.as_millis())])
        .args(["--connections", "4", "--json"])
        .output()
        .context("cannot run the load generator")?;
    if !out.status.success() {
        bail!(
            "the load generator failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "unreadable load report: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let num = |path: &[&str]| {
        path.iter()
            .try_fold(&report, |v, k| v.get(k))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let (sent, ok) = (num(&["sent"]), num(&["ok"]));
    println!(
        "  sent {sent}, ok {ok} ({:.2}% success), latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms\n",
        100.0 * ok / sent.max(1.0),
        num(&["latency_ms", "p50"]),
        num(&["latency_ms", "p99"]),
        num(&["latency_ms", "max"]),
    );
    if ok < sent {
        bail!("{} of {sent} requests failed", sent - ok);
    }
    Ok(())
}

fn show(pod: &str, direction: &str, metrics: &str) {
    let dir = format!("direction=\"{direction}\"");
    let ok = metric_sum(
        metrics,
        "response_total",
        &[&dir, "classification=\"success\""],
    );
    let failed = metric_sum(
        metrics,
        "response_total",
        &[&dir, "classification=\"failure\""],
    );
    let conns = metric_sum(metrics, "tcp_open_total", &[&dir]);
    let rss = metric_sum(metrics, "process_resident_memory_bytes", &[]);
    println!(
        "  {pod:<6} {direction:<8}: {} requests, {ok} ok, {failed} failed, over {conns} connections; proxy RSS {:.1} MB",
        metric_sum(metrics, "request_total", &[&dir]),
        rss / 1e6
    );
}
