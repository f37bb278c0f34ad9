//! `weft-controller`: serves destination and policy to Weft proxies from a Kubernetes cluster
//! (`--source kube`) or a directory of YAML (`--source files --dir DIR`, local mode), and with
//! `--trust-anchors`, `--issuer-cert` and `--issuer-key` issues their certificates.

#![forbid(unsafe_code)]

use clap::{Parser, ValueEnum};
use std::{net::SocketAddr, path::PathBuf, time::Duration};
use weft_controller_core::DefaultPolicy;
use weft_controller_runtime::{Config, IdentityFlags, Source};

#[derive(Debug, Parser)]
#[command(name = "weft-controller", version, about)]
struct Args {
    /// Where objects come from.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_SOURCE",
        value_enum,
        default_value = "kube"
    )]
    source: SourceKind,
    /// The directory the files source reads (required with --source files).
    #[arg(long, env = "WEFT_CONTROLLER_DIR", required_if_eq("source", "files"))]
    dir: Option<PathBuf>,
    /// Destination and policy gRPC address.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_GRPC_ADDR",
        default_value = "0.0.0.0:8086"
    )]
    grpc_addr: SocketAddr,
    /// Admin address (/live, /ready, /index).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_ADMIN_ADDR",
        default_value = "0.0.0.0:9990"
    )]
    admin_addr: SocketAddr,
    /// The cluster's service DNS domain.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    cluster_domain: String,
    /// The mesh identity trust domain.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_TRUST_DOMAIN",
        default_value = "cluster.local"
    )]
    trust_domain: String,
    /// Inbound policy when neither pod nor namespace sets weft.dev/default-inbound-policy:
    /// all-unauthenticated, all-authenticated, cluster-authenticated or deny.
    #[arg(long, env = "WEFT_CONTROLLER_DEFAULT_POLICY", default_value = "all-unauthenticated", value_parser = parse_policy)]
    default_policy: DefaultPolicy,
    /// Networks that cluster-authenticated admits, comma-separated CIDRs.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_CLUSTER_NETWORKS",
        value_delimiter = ',',
        default_value = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"
    )]
    cluster_networks: Vec<ipnet::IpNet>,
    /// Trust anchors (PEM). With --issuer-cert and --issuer-key, enables identity: Certify
    /// over TLS and discovery over mTLS. All three files are re-read when they change.
    #[arg(long, env = "WEFT_CONTROLLER_TRUST_ANCHORS")]
    trust_anchors: Option<PathBuf>,
    /// The issuer's certificate (PEM), signed by a trust anchor.
    #[arg(long, env = "WEFT_CONTROLLER_ISSUER_CERT")]
    issuer_cert: Option<PathBuf>,
    /// The issuer's private key (PEM, PKCS#8).
    #[arg(long, env = "WEFT_CONTROLLER_ISSUER_KEY")]
    issuer_key: Option<PathBuf>,
    /// Identity gRPC address (TLS).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    identity_addr: SocketAddr,
    /// The token registry, YAML (`tokens: [{token, namespace, serviceAccount}]`); required with
    /// identity and --source files.
    #[arg(long, env = "WEFT_CONTROLLER_TOKEN_REGISTRY")]
    token_registry: Option<PathBuf>,
    /// How long issued certificates are valid: 60s, 90m, 24h, ...
    #[arg(long, env = "WEFT_CONTROLLER_LEAF_LIFETIME", default_value = "24h", value_parser = parse_duration)]
    leaf_lifetime: Duration,
    /// The controller's own identity, the TLS server name proxies expect
    /// [default: weft-controller.weft-system.serviceaccount.identity.<trust-domain>].
    #[arg(long, env = "WEFT_CONTROLLER_IDENTITY")]
    controller_identity: Option<String>,
    /// A tracing filter, e.g. `info,weft_controller_index=debug`.
    #[arg(long, env = "WEFT_CONTROLLER_LOG", default_value = "info")]
    log: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SourceKind {
    Kube,
    Files,
}

fn parse_policy(s: &str) -> Result<DefaultPolicy, String> {
    s.parse()
        .map_err(|e: weft_controller_core::inbound::UnknownDefaultPolicy| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    weft_controller_runtime::parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .init();
    let source = match (args.source, args.dir) {
        (SourceKind::Kube, _) => Source::Kube,
        (SourceKind::Files, Some(dir)) => Source::Files(dir),
        (SourceKind::Files, None) => anyhow::bail!("--source files needs --dir DIR"),
    };
    let identity = IdentityFlags {
        trust_anchors: args.trust_anchors,
        issuer_cert: args.issuer_cert,
        issuer_key: args.issuer_key,
        token_registry: args.token_registry,
        addr: args.identity_addr,
        leaf_lifetime: args.leaf_lifetime,
        controller_identity: args.controller_identity,
    }
    .resolve(&source, &args.trust_domain)?;
    let config = Config {
        source,
        grpc_addr: args.grpc_addr,
        admin_addr: args.admin_addr,
        cluster_domain: args.cluster_domain,
        trust_domain: args.trust_domain,
        default_policy: args.default_policy,
        cluster_networks: args.cluster_networks,
        identity,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(weft_controller_runtime::run(config, shutdown()))
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the controller with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
}
