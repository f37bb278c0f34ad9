//! `weft-bench-injector`: the admission webhook's latency and throughput over real HTTPS on
//! 127.0.0.1. A realistic AdmissionReview (a Deployment's pod with init containers and
//! volumes, in a namespace with `weft.dev/inject: enabled`) is sent over keep-alive TLS
//! connections, open loop at a fixed rate (latency counted from when each request was due, so
//! a stall is not hidden) or closed loop (`--rate max`); every answer is checked to carry the
//! patch. The webhook runs in this process with its own runtime, as `weft-injector` runs it.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::time::Instant;
use weft_bench::{Latency, Rate, parse_duration};
use weft_injector::{CertFiles, Limits, StaticNamespaces, Webhook};
use weft_injector_patch::{Config, Injector};

/// The pod of the webhook's golden Deployment case.
const POD: &str = include_str!("../../../injector/tests/golden/deployment/pod.yaml");
const NAME: &str = "weft-injector.weft-system.svc";

#[derive(Parser)]
#[command(
    name = "weft-bench-injector",
    version,
    about = "The Weft admission webhook's latency over HTTPS"
)]
struct Args {
    /// Requests per second, or `max` for closed loop.
    #[arg(long, env = "WEFT_BENCH_INJECTOR_RATE", default_value = "500")]
    rate: Rate,
    /// How long to measure.
    #[arg(long, env = "WEFT_BENCH_INJECTOR_DURATION", default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// How long to send before measuring.
    #[arg(long, env = "WEFT_BENCH_INJECTOR_WARMUP", default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Keep-alive HTTPS connections (the API server keeps a few per webhook).
    #[arg(long, env = "WEFT_BENCH_INJECTOR_CONNECTIONS", default_value_t = 4)]
    connections: u32,
    /// The webhook's runtime worker threads.
    #[arg(long, env = "WEFT_BENCH_INJECTOR_SERVER_THREADS", default_value_t = 1)]
    server_threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 {
        bail!("--connections: at least 1");
    }
    let dir = std::env::temp_dir().join(format!("weft-bench-injector-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca = weft_certs::generate_ca("weft-bench-ca", Duration::from_secs(3600))?;
    let signer = weft_certs::Ca::from_pem(&ca.cert_pem, &ca.key_pem)?;
    let server_cert =
        weft_certs::generate_server_cert(&signer, &[NAME], Duration::from_secs(3600))?;
    std::fs::write(dir.join("tls.crt"), &server_cert.cert_pem)?;
    std::fs::write(dir.join("tls.key"), &server_cert.key_pem)?;
    let certs = CertFiles::load(&dir.join("tls.crt"), &dir.join("tls.key"))?;
    std::fs::remove_dir_all(&dir)?;

    let mut config = Config::new("ghcr.io/weft-mesh", env!("CARGO_PKG_VERSION"));
    config.trust_anchors =
        Some(weft_certs::generate_root("cluster.local", Duration::from_secs(3600))?.cert_pem);
    let namespaces = StaticNamespaces(BTreeMap::from([(
        "shop".to_string(),
        BTreeMap::from([("weft.dev/inject".to_string(), "enabled".to_string())]),
    )]));
    let webhook = Webhook::new(
        Injector::new(config),
        Arc::new(namespaces),
        Limits::default(),
    );
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .build()?;
    let listener = server.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    server.spawn(weft_injector::serve(
        listener,
        certs.server_config(),
        webhook,
        std::future::pending(),
    ));

    let pod: Value = serde_yaml_ng::from_str(POD)?;
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "bench", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "namespace": "shop", "object": pod,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"}}
    });
    let body = Bytes::from(serde_json::to_vec(&review)?);
    let review_len = body.len();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = client.block_on(load(&args, addr, &ca.cert_pem, body))?;
    println!(
        "weft-injector over HTTPS (HTTP/1.1 keep-alive) at {} over {} connections for {:?} (warmup {:?}), {} server thread(s)",
        match args.rate {
            Rate::PerSecond(_) => format!("{} open loop", args.rate),
            Rate::Max => "max (closed loop)".to_string(),
        },
        args.connections,
        args.duration,
        args.warmup,
        args.server_threads,
    );
    println!(
        "  review      {review_len} bytes in, a {}-operation patch out",
        report.ops
    );
    println!(
        "  requests    {}  (every answer allowed the pod and carried the patch)",
        report.latency.len()
    );
    println!(
        "  throughput  {:.0} req/s",
        report.latency.len() as f64 / args.duration.as_secs_f64()
    );
    let l = Latency::from_histogram(&report.latency);
    println!(
        "  latency ms  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        l.p50, l.p90, l.p99, l.p99_9, l.max
    );
    Ok(())
}

struct Report {
    latency: Histogram<u64>,
    ops: usize,
}

async fn load(
    args: &Args,
    addr: std::net::SocketAddr,
    ca: &str,
    body: Bytes,
) -> anyhow::Result<Report> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in weft_certs::certs_from_pem("ca", ca)? {
        roots.add(cert)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.connections {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream = connector
            .connect(rustls::pki_types::ServerName::try_from(NAME)?, tcp)
            .await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let body = body.clone();
        // Each connection takes every `connections`-th due time of the schedule.
        let (interval, offset) = match args.rate {
            Rate::PerSecond(r) => {
                let r = r.get() as f64;
                (
                    Some(Duration::from_secs_f64(f64::from(args.connections) / r)),
                    Some(Duration::from_secs_f64(f64::from(c) / r)),
                )
            }
            Rate::Max => (None, None),
        };
        tasks.spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut ops = 0;
            let mut due = start + offset.unwrap_or_default();
            let mut free_at = Instant::now();
            while due < end {
                if due > Instant::now() {
                    tokio::time::sleep_until(due).await;
                }
                // Late because the previous answer came after this one was due: that wait
                // counts. Otherwise count from the send, not from the timer's wake-up.
                let from = if free_at > due { due } else { Instant::now() };
                let request = http::Request::post("/inject")
                    .header("host", NAME)
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))?;
                let response = sender.send_request(request).await?;
                let answer = response.into_body().collect().await?.to_bytes();
                free_at = Instant::now();
                let answer: Value = serde_json::from_slice(&answer)?;
                let patch = answer["response"]["patch"]
                    .as_str()
                    .context("an answer without a patch")?;
                if ops == 0 {
                    let bytes: k8s_openapi::ByteString = serde_json::from_value(json!(patch))?;
                    ops = serde_json::from_slice::<Vec<Value>>(&bytes.0)?.len();
                }
                if from >= measure_from {
                    latency.record(
                        u64::try_from(free_at.duration_since(from).as_micros()).unwrap_or(u64::MAX),
                    )?;
                }
                due = match interval {
                    Some(every) => due + every,
                    None => Instant::now(),
                };
            }
            anyhow::Ok((latency, ops))
        });
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut ops = 0;
    while let Some(done) = tasks.join_next().await {
        let (latency, n) = done??;
        total.add(&latency)?;
        ops = n;
    }
    Ok(Report {
        latency: total,
        ops,
    })
}
