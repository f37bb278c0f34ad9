//! `weft install`: everything a cluster needs to run Weft, as one YAML stream for
//! `kubectl apply -f -`: the namespace, the CRDs, RBAC, the trust anchors (ConfigMap), the
//! controller's issuer and the injector's serving certificate (Secrets: the only place their
//! keys are written), the controller and injector, and the webhook. `--crds` renders the CRDs
//! alone.

mod certs;
mod manifests;
pub mod render;

pub use certs::{Certs, WEBHOOK_NAMES};

use crate::duration::parse_duration;
use std::{
    io::{IsTerminal, Write},
    os::unix::fs::OpenOptionsExt,
    path::PathBuf,
    time::Duration,
};

/// Why nothing was rendered.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A flag or a file the user gave is not usable.
    #[error("{0}")]
    Input(String),
    /// Making a certificate failed.
    #[error("cannot make a certificate: {0}")]
    Cert(#[from] weft_certs::CertError),
    /// A file of deploy/ does not read as expected (a bug in this build).
    #[error("{0}")]
    Manifest(String),
    /// The output could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// `weft install` options.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Render only the CustomResourceDefinitions (no keys, nothing namespaced).
    #[arg(long, env = "WEFT_INSTALL_CRDS")]
    pub crds: bool,
    /// The mesh's trust domain.
    #[arg(long, env = "WEFT_TRUST_DOMAIN", default_value = weft_certs::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// The registry Weft's images are pulled from (`<registry>/weft-controller:<version>`,
    /// weft-injector, weft-proxy, weft-init).
    #[arg(long, env = "WEFT_INSTALL_IMAGE_REGISTRY", default_value = weft_injector::flags::DEFAULT_REGISTRY)]
    pub image_registry: String,
    /// The images' tag, and the proxy version injected pods are annotated with.
    #[arg(long, env = "WEFT_INSTALL_VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    pub version: String,
    /// Your trust anchors (PEM). With --identity-issuer-cert and --identity-issuer-key; without
    /// the three, a root and an issuer are made (the root's key is not kept).
    #[arg(long, env = "WEFT_INSTALL_IDENTITY_TRUST_ANCHORS", value_name = "FILE")]
    pub identity_trust_anchors: Option<PathBuf>,
    /// Your issuer's certificate (PEM), signed by a trust anchor.
    #[arg(long, env = "WEFT_INSTALL_IDENTITY_ISSUER_CERT", value_name = "FILE")]
    pub identity_issuer_cert: Option<PathBuf>,
    /// Your issuer's private key (PKCS#8 PEM).
    #[arg(long, env = "WEFT_INSTALL_IDENTITY_ISSUER_KEY", value_name = "FILE")]
    pub identity_issuer_key: Option<PathBuf>,
    /// How long a made trust anchor is valid: 87600h, 3650d, ...
    #[arg(long, env = "WEFT_INSTALL_ROOT_LIFETIME", default_value = "87600h", value_parser = parse_duration)]
    pub root_lifetime: Duration,
    /// How long a made issuer is valid.
    #[arg(long, env = "WEFT_INSTALL_ISSUER_LIFETIME", default_value = "8760h", value_parser = parse_duration)]
    pub issuer_lifetime: Duration,
    /// Your serving certificate for the injector (PEM), for weft-injector.weft-system.svc.
    /// With --webhook-key and --webhook-ca; without the three, a CA and a certificate are made.
    #[arg(long, env = "WEFT_INSTALL_WEBHOOK_CERT", value_name = "FILE")]
    pub webhook_cert: Option<PathBuf>,
    /// Its private key (PKCS#8 PEM).
    #[arg(long, env = "WEFT_INSTALL_WEBHOOK_KEY", value_name = "FILE")]
    pub webhook_key: Option<PathBuf>,
    /// The CA (PEM) that signed it: the webhook's caBundle.
    #[arg(long, env = "WEFT_INSTALL_WEBHOOK_CA", value_name = "FILE")]
    pub webhook_ca: Option<PathBuf>,
    /// How long a made webhook certificate (and its CA) is valid.
    #[arg(long, env = "WEFT_INSTALL_WEBHOOK_LIFETIME", default_value = "8760h", value_parser = parse_duration)]
    pub webhook_lifetime: Duration,
    /// What the API server does when the injector cannot be reached: Ignore (create the pod
    /// without the proxy) or Fail (refuse the pod). See deploy/README.md.
    #[arg(long, env = "WEFT_INSTALL_WEBHOOK_FAILURE_POLICY", default_value = "Ignore",
          value_parser = ["Ignore", "Fail"])]
    pub webhook_failure_policy: String,
    /// Replicas of the controller and of the injector.
    #[arg(long, env = "WEFT_INSTALL_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub replicas: u16,
    /// Inject the proxy as a native sidecar (Kubernetes 1.29+); false: as a regular container.
    #[arg(long, env = "WEFT_INSTALL_NATIVE_SIDECARS", default_value_t = true,
          action = clap::ArgAction::Set, value_name = "BOOL")]
    pub native_sidecars: bool,
    /// CNI mode: the Weft CNI plugin redirects traffic; no weft-init container.
    #[arg(long, env = "WEFT_INSTALL_CNI")]
    pub cni: bool,
    /// Tracing: add Jaeger all-in-one (OTLP on 4317, UI on 16686) in weft-system and have the
    /// injector point every proxy at it.
    #[arg(
        long,
        alias = "jaeger",
        env = "WEFT_INSTALL_TRACING",
        conflicts_with = "otlp_addr"
    )]
    pub tracing: bool,
    /// Send the proxies' spans to this OTLP/gRPC collector (host:port).
    #[arg(long, env = "WEFT_INSTALL_OTLP_ADDR")]
    pub otlp_addr: Option<String>,
    /// Write to FILE (mode 0600) instead of standard output.
    #[arg(long, short, env = "WEFT_INSTALL_OUTPUT", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl Options {
    /// Where proxies send spans, if anywhere.
    pub fn otlp(&self) -> Option<String> {
        match (&self.otlp_addr, self.tracing) {
            (Some(addr), _) => Some(addr.clone()),
            (None, true) => Some("jaeger.weft-system.svc.cluster.local:4317".to_string()),
            (None, false) => None,
        }
    }
}

/// Renders what `options` ask for.
pub fn render(options: &Options) -> Result<String, InstallError> {
    weft_certs::check_trust_domain(&options.trust_domain)
        .map_err(|e| InstallError::Input(format!("--trust-domain: {e}")))?;
    let header = format!(
        "# Weft {}, rendered by `weft install`.\n",
        env!("CARGO_PKG_VERSION")
    );
    if options.crds {
        return Ok(header + &render::to_yaml(&render::crds()?)?);
    }
    let certs = Certs::get(options)?;
    let docs = render::everything(options, &certs)?;
    Ok(header
        + "# It holds private keys (Secrets weft-identity-issuer and weft-injector-tls): apply it,\n"
        + "# do not keep it. `kubectl apply -f -` it twice and the second run replaces every key.\n"
        + &render::to_yaml(&docs)?)
}

/// Runs `weft install`.
pub fn run(options: Options) -> anyhow::Result<()> {
    let with_keys = !options.crds;
    if with_keys && options.output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the output holds private keys and standard output is a terminal; pipe it (`weft install | kubectl apply -f -`) or write it with --output FILE"
        );
    }
    let text = render(&options)?;
    match &options.output {
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|source| InstallError::Write {
                path: "standard output".to_string(),
                source,
            })?,
        Some(path) => {
            let write = || -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(path)?;
                file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
                file.write_all(text.as_bytes())?;
                file.sync_all()
            };
            write().map_err(|source| InstallError::Write {
                path: path.display().to_string(),
                source,
            })?;
            eprintln!(
                "wrote {} (mode 0600: it holds private keys)",
                path.display()
            );
        }
    }
    Ok(())
}
