//! `weft demo`: the whole data path on one host. Pods are network namespaces on a private
//! bridge; each meshed pod gets real `weft-init` redirect rules and a real `weft-proxy` running
//! as UID 2102; the sample app and the load generator are ordinary processes in their pods that
//! know nothing of the mesh and call each other by service name.

pub mod app;

use anyhow::{Context, bail};
use std::time::Duration;
use std::{net::IpAddr, path::Path, time::Instant};
use weft_cli_local::{
    Controller, Network, Pod, Sidecar, bin_path, check_prerequisites, manifests, metric_sum,
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

/// The canary steps: web-v1's and web-v2's weights in the TrafficSplit.
const STEPS: [(u32, u32); 4] = [(100, 0), (90, 10), (50, 50), (0, 100)];

/// The virtual ClusterIPs of the demo's services. Nothing routes them: the client's sidecar
/// catches the connection and picks a pod, as it would in a cluster.
const WEB_IP: [u8; 4] = [10, 43, 0, 10];

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

    let manifests = net.log_dir().join("manifests");
    std::fs::create_dir_all(&manifests)?;
    let client = net.pod("client")?;
    let v1 = net.pod("web-v1")?;
    let v2 = net.pod("web-v2")?;
    write_cluster(&manifests, &client, &v1, &v2)?;
    set_split(&manifests, STEPS[0])?;
    let controller = Controller::start(&net, &manifests).context("cannot start weft-controller")?;
    println!(
        "  pod weft/weft-controller {:<10}  weft-controller --source files --dir {}",
        controller.pod.ip,
        manifests.display()
    );

    let service = format!("web.{NAMESPACE}.svc.cluster.local");
    net.set_hosts(&client, &[(IpAddr::from(WEB_IP), service.clone())])?;
    let controller_addr = controller.addr().to_string();
    let client_proxy = inject(&client, &controller_addr)?;
    let v1_proxy = inject(&v1, &controller_addr)?;
    let v2_proxy = inject(&v2, &controller_addr)?;
    for (pod, name) in [(&v1, "web-v1"), (&v2, "web-v2")] {
        let mut app = pod.command(&weft.to_string_lossy());
        app.args(["demo-app", "--name", name, "--port", &APP_PORT.to_string()]);
        pod.start("app", app)?;
        pod.wait_listening(&[APP_PORT], Duration::from_secs(10))?;
    }
    println!(
        "  service {service}:{APP_PORT} (ClusterIP {}) -> web-v1 {} | web-v2 {}\n",
        IpAddr::from(WEB_IP),
        v1.ip,
        v2.ip
    );

    let url = format!("http://{service}:{APP_PORT}/");
    // In-process clients do not read /etc/netns hosts, so they dial the ClusterIP and name the
    // service in Host, exactly what a resolved name gives.
    let request = traffic::Request::get(
        format!("http://{}:{APP_PORT}/", IpAddr::from(WEB_IP)),
        app::SERVED_BY,
    )
    .header("host", &format!("{service}:{APP_PORT}"));
    // The first request makes the client's sidecar look the service up.
    let first = traffic::tally(&client, &request, 1, 1);
    if first.failures > 0 {
        bail!(
            "the first request failed: {:?}\n--- client sidecar log ---\n{}\n--- controller log ---\n{}",
            first.errors,
            client_proxy.process.log(),
            controller.log()
        );
    }

    println!(
        "Canary: shifting {service} from web-v1 to web-v2 with a TrafficSplit in the files source"
    );
    println!(
        "  (the client's sidecar follows the controller; {} requests per step)",
        args.requests_per_step
    );
    for (w1, w2) in STEPS {
        let before = updates(&client_proxy);
        let started = Instant::now();
        set_split(&manifests, (w1, w2))?;
        let applied = wait_for_update(&client_proxy, before, Duration::from_secs(5));
        let tally = traffic::tally(&client, &request, args.requests_per_step, 4);
        println!(
            "  split {w1:>3}/{w2:<3} -> observed web-v1 {:>5.1}%  web-v2 {:>5.1}%  ({} ok, {} failed; applied by the sidecar {})",
            tally.percent("web-v1"),
            tally.percent("web-v2"),
            tally.ok(),
            tally.failures,
            match applied {
                Some(()) => format!(
                    "{:.0} ms after the file changed",
                    started.elapsed().as_secs_f64() * 1e3 - 0.0
                ),
                None => "— no update seen, the split was unchanged".to_string(),
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
    measure(&client, &load, &url, &args)?;

    let client_metrics = client_proxy.metrics();
    let outbound = metric_sum(
        &client_metrics,
        "request_total",
        &["direction=\"outbound\""],
    );
    let web_metrics = [v1_proxy.metrics(), v2_proxy.metrics()];
    let inbound: f64 = web_metrics
        .iter()
        .map(|m| metric_sum(m, "request_total", &["direction=\"inbound\""]))
        .sum();
    println!("What the sidecars saw (their /metrics on :4191):");
    show("client", "outbound", &client_metrics);
    show("web-v1", "inbound", &web_metrics[0]);
    show("web-v2", "inbound", &web_metrics[1]);
    if outbound > inbound + 0.5 || inbound > outbound + 0.5 {
        bail!(
            "the client's sidecar routed {outbound} requests but the web sidecars received {inbound}: traffic bypassed the mesh"
        );
    }
    println!("\nEvery request crossed both sidecars. Cleaning up the pods, rules and processes.");
    drop(controller);
    drop(net);
    Ok(())
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

/// The cluster the demo pretends to have: namespace `shop`, meshed pods, the `web` service over
/// both versions and one service per version, as a canary setup has.
fn write_cluster(dir: &Path, client: &Pod, v1: &Pod, v2: &Pod) -> anyhow::Result<()> {
    fn pod<'a>(p: &'a Pod, app: &'a str, version: &'a str) -> manifests::PodSpec<'a> {
        manifests::PodSpec {
            namespace: NAMESPACE,
            name: &p.name,
            ip: p.ip.into(),
            service_account: app,
            app,
            version,
        }
    }
    let text = [
        manifests::namespace(NAMESPACE),
        manifests::pod(&pod(client, "client", "v1")),
        manifests::pod(&pod(v1, "web", "v1")),
        manifests::pod(&pod(v2, "web", "v2")),
        manifests::service(
            NAMESPACE,
            "web",
            WEB_IP.into(),
            APP_PORT,
            &[(&v1.name, v1.ip.into()), (&v2.name, v2.ip.into())],
        ),
        manifests::service(
            NAMESPACE,
            "web-v1",
            [10, 43, 0, 11].into(),
            APP_PORT,
            &[(&v1.name, v1.ip.into())],
        ),
        manifests::service(
            NAMESPACE,
            "web-v2",
            [10, 43, 0, 12].into(),
            APP_PORT,
            &[(&v2.name, v2.ip.into())],
        ),
    ]
    .join("---\n");
    manifests::write(dir, "cluster.yaml", &text)?;
    Ok(())
}

fn set_split(dir: &Path, (v1, v2): (u32, u32)) -> anyhow::Result<()> {
    let split = manifests::traffic_split(
        NAMESPACE,
        "web-canary",
        "web",
        &[("web-v1", v1), ("web-v2", v2)],
    );
    manifests::write(dir, "canary.yaml", &split)?;
    Ok(())
}

fn updates(sidecar: &Sidecar) -> f64 {
    metric_sum(
        &sidecar.metrics(),
        "control_plane_updates_total",
        &["kind=\"outbound_policy\""],
    )
}

fn wait_for_update(sidecar: &Sidecar, before: f64, timeout: Duration) -> Option<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if updates(sidecar) > before {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn inject(pod: &Pod, controller: &str) -> anyhow::Result<Sidecar> {
    let workload = format!("{NAMESPACE}/{}", pod.name);
    let sidecar = Sidecar::inject(
        pod,
        &[],
        &[
            ("WEFT_PROXY_CONTROLLER_ADDR", controller),
            ("WEFT_PROXY_WORKLOAD", &workload),
        ],
    )?;
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
