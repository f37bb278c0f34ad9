//! `weft-injector`: the mutating admission webhook that meshes new pods.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use weft_injector::{CertFiles, InjectFlags, Limits, NamespaceCache, Reloader, Webhook};
use weft_injector_patch::Injector;

/// Serves admission.k8s.io/v1 AdmissionReviews for Pods on POST /inject over HTTPS, adding
/// weft-init and the weft-proxy sidecar to pods whose namespace or own annotations say
/// weft.dev/inject: enabled.
#[derive(Debug, Parser)]
#[command(name = "weft-injector", version)]
struct Args {
    /// The HTTPS address.
    #[arg(long, env = "WEFT_INJECTOR_ADDR", default_value = "0.0.0.0:8443")]
    addr: SocketAddr,
    /// The serving certificate (PEM chain); re-read when it changes.
    #[arg(long, env = "WEFT_INJECTOR_TLS_CERT", value_name = "FILE")]
    tls_cert: PathBuf,
    /// The serving certificate's private key (PKCS#8 PEM); re-read when it changes.
    #[arg(long, env = "WEFT_INJECTOR_TLS_KEY", value_name = "FILE")]
    tls_key: PathBuf,
    /// How often the certificate and trust anchor files are checked for changes, in seconds.
    #[arg(long, env = "WEFT_INJECTOR_RELOAD_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    reload_seconds: u64,
    /// A tracing filter, e.g. `info,weft_injector=debug`.
    #[arg(long, env = "WEFT_INJECTOR_LOG", default_value = "info")]
    log: String,
    #[command(flatten)]
    inject: InjectFlags,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .init();
    let config = args.inject.config()?;
    if config.trust_anchors.is_none() {
        tracing::warn!("no --trust-anchors: injected proxies get no identity and no mTLS");
    }
    let certs = Arc::new(CertFiles::load(&args.tls_cert, &args.tls_key)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = kube::Client::try_default()
            .await
            .context("cannot reach the Kubernetes API")?;
        let (namespaces, watch) = NamespaceCache::start(client);
        tokio::spawn(watch);
        let webhook = Webhook::new(
            Injector::new(config),
            Arc::new(namespaces),
            Limits::default(),
        );
        let reloader = Reloader {
            certs: certs.clone(),
            flags: args.inject.clone(),
            webhook: webhook.clone(),
        };
        tokio::spawn(reloader.run(Duration::from_secs(args.reload_seconds)));
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        weft_injector::serve(listener, certs.server_config(), webhook, shutdown()).await;
        Ok(())
    })
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the injector with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
}
