//! `weft demo`: the whole data path on one host. Pods are network namespaces on a private
//! bridge; each meshed pod gets real `weft-init` redirect rules and a real `weft-proxy` running
//! as UID 2102; the sample app and the load generator are ordinary processes in their pods that
//! know nothing of the mesh and call each other by service name.

pub mod app;

use anyhow::{Context, bail};
use std::time::Duration;
use weft_cli_local::{Network, Pod, Sidecar, bin_path, check_prerequisites, metric_sum};

/// `weft demo` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per second the client sends (open loop).
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// How long the client sends, e.g. `5s`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
}

const NAMESPACE: &str = "shop";
const APP_PORT: u16 = 8080;

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

/// Runs the demo and removes everything it made, also when it fails.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_prerequisites().context("the demo cannot run")?;
    let weft = std::env::current_exe().context("cannot find the weft binary")?;
    let load = bin_path("weft-load")?;
    // Interrupted, the network is still dropped: the signal only stops the load early.
    let net = Network::new().context("cannot create the demo network")?;
    println!(
        "Weft local demo — pods are network namespaces ({}-*) on a private bridge (10.42.0.0/24)\n",
        net.id()
    );

    let client = net.pod("client")?;
    let web = net.pod("web")?;
    let service = format!("web.{NAMESPACE}.svc.cluster.local");
    for pod in [&client, &web] {
        net.set_hosts(pod, &[(web.ip.into(), service.clone())])?;
    }
    let client_proxy = inject(&client)?;
    let web_proxy = inject(&web)?;

    let mut app = web.command(&weft.to_string_lossy());
    app.args([
        "demo-app",
        "--name",
        "web-v1",
        "--port",
        &APP_PORT.to_string(),
    ]);
    web.start("app", app)?;
    web.wait_listening(&[APP_PORT], Duration::from_secs(10))?;
    println!(
        "  pod {NAMESPACE}/web     {:<10}  app web-v1 on :{APP_PORT}",
        web.ip
    );
    println!(
        "  service {service}:{APP_PORT} -> {} (via /etc/netns/<pod>/hosts)\n",
        web.ip
    );

    let url = format!("http://{service}:{APP_PORT}/");
    println!(
        "client -> {url} at {} req/s for {:?}, through the client's outbound sidecar and web's inbound sidecar",
        args.rate, args.duration
    );
    let out = client
        .command(&load.to_string_lossy())
        .args(["--url", &url, "--rate", &args.rate.to_string()])
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

    let client_metrics = client_proxy.metrics();
    let web_metrics = web_proxy.metrics();
    let outbound = metric_sum(
        &client_metrics,
        "request_total",
        &["direction=\"outbound\""],
    );
    let inbound = metric_sum(&web_metrics, "request_total", &["direction=\"inbound\""]);
    println!("What the sidecars saw (their /metrics on :4191):");
    show("client", "outbound", &client_metrics);
    show("web", "inbound", &web_metrics);
    // The load generator's warm-up is not in `sent`, so the proxies may have seen a few more.
    if outbound < ok || inbound < ok {
        bail!(
            "the sidecars saw fewer requests ({outbound} outbound, {inbound} inbound) than succeeded ({ok}): traffic bypassed the mesh"
        );
    }
    if ok < sent {
        bail!("{} of {sent} requests failed", sent - ok);
    }
    println!("\nEvery request crossed both sidecars. Cleaning up the pods, rules and processes.");
    drop(net);
    Ok(())
}

fn inject(pod: &Pod) -> anyhow::Result<Sidecar> {
    let sidecar = Sidecar::inject(pod, &[], &[])?;
    println!(
        "  pod {NAMESPACE}/{:<7} {:<10}  weft-init rules + weft-proxy (uid {}) ready, admin {}",
        pod.name,
        pod.ip,
        weft_cli_local::PROXY_UID,
        sidecar.admin_addr()
    );
    Ok(sidecar)
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
