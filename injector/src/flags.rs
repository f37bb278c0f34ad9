//! The injection's settings as command-line flags (each also an environment variable), shared
//! by `weft-injector` and `weft inject` so both mesh a pod the same way.

use std::path::{Path, PathBuf};
use weft_injector_patch::{
    Config, Resources,
    config::{
        DEFAULT_CONTROLLER_ADDR, DEFAULT_IDENTITY_ADDR, DEFAULT_IMAGE_PULL_POLICY,
        DEFAULT_NATIVE_SIDECARS, DEFAULT_PROXY_CPU_REQUEST, DEFAULT_PROXY_LOG_LEVEL,
        DEFAULT_PROXY_MEMORY_LIMIT, DEFAULT_PROXY_MEMORY_REQUEST,
    },
    quantity,
};

/// The registry Weft's images are published to, unless `--image-registry` says otherwise.
pub const DEFAULT_REGISTRY: &str = "ghcr.io/weft-mesh";

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// The trust anchors file cannot be read.
    #[error("--trust-anchors {path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The trust anchors are not usable.
    #[error("--trust-anchors {path}: {source}")]
    Anchors {
        /// The file.
        path: PathBuf,
        /// What is wrong with them.
        source: weft_certs::CertError,
    },
    /// A bad value.
    #[error("--{flag} {value:?}: {why}")]
    Value {
        /// The flag, without dashes.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        why: String,
    },
}

/// How pods are meshed.
#[derive(Clone, Debug, clap::Args)]
pub struct InjectFlags {
    /// The registry of the weft-proxy and weft-init images.
    #[arg(long, env = "WEFT_INJECTOR_IMAGE_REGISTRY", default_value = DEFAULT_REGISTRY)]
    pub image_registry: String,
    /// The proxy version: the images' tag and the weft.dev/proxy-version annotation.
    #[arg(long, env = "WEFT_INJECTOR_PROXY_VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    pub proxy_version: String,
    /// The proxy image [default: <image-registry>/weft-proxy:<proxy-version>].
    #[arg(long, env = "WEFT_INJECTOR_PROXY_IMAGE")]
    pub proxy_image: Option<String>,
    /// The weft-init image [default: <image-registry>/weft-init:<proxy-version>].
    #[arg(long, env = "WEFT_INJECTOR_INIT_IMAGE")]
    pub init_image: Option<String>,
    /// The image pull policy of the injected containers.
    #[arg(long, env = "WEFT_INJECTOR_IMAGE_PULL_POLICY", default_value = DEFAULT_IMAGE_PULL_POLICY,
          value_parser = ["IfNotPresent", "Always", "Never"])]
    pub image_pull_policy: String,
    /// CNI mode: the Weft CNI plugin redirects traffic, so no weft-init container is added.
    #[arg(long, env = "WEFT_INJECTOR_CNI")]
    pub cni: bool,
    /// Add the proxy as a native sidecar (Kubernetes 1.29+); false: as a regular first
    /// container whose postStart hook waits until it is ready.
    #[arg(long, env = "WEFT_INJECTOR_NATIVE_SIDECARS", default_value_t = DEFAULT_NATIVE_SIDECARS,
          action = clap::ArgAction::Set, value_name = "BOOL")]
    pub native_sidecars: bool,
    /// The controller's destination and policy gRPC address.
    #[arg(long, env = "WEFT_INJECTOR_CONTROLLER_ADDR", default_value = DEFAULT_CONTROLLER_ADDR)]
    pub controller_addr: String,
    /// The controller's identity gRPC address.
    #[arg(long, env = "WEFT_INJECTOR_IDENTITY_ADDR", default_value = DEFAULT_IDENTITY_ADDR)]
    pub identity_addr: String,
    /// The mesh's trust domain.
    #[arg(long, env = "WEFT_INJECTOR_TRUST_DOMAIN", default_value = weft_certs::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// The trust anchors (PEM) given to every proxy. Without them proxies get no identity and
    /// no mTLS.
    #[arg(long, env = "WEFT_INJECTOR_TRUST_ANCHORS", value_name = "FILE")]
    pub trust_anchors: Option<PathBuf>,
    /// Where proxies send spans (OTLP/gRPC host:port), e.g.
    /// jaeger.weft-system.svc.cluster.local:4317.
    #[arg(long, env = "WEFT_INJECTOR_OTLP_ADDR")]
    pub otlp_addr: Option<String>,
    /// The proxies' log filter, unless a pod sets weft.dev/proxy-log-level.
    #[arg(long, env = "WEFT_INJECTOR_PROXY_LOG_LEVEL", default_value = DEFAULT_PROXY_LOG_LEVEL)]
    pub proxy_log_level: String,
    /// The proxy's CPU request (empty: none).
    #[arg(long, env = "WEFT_INJECTOR_PROXY_CPU_REQUEST", default_value = DEFAULT_PROXY_CPU_REQUEST)]
    pub proxy_cpu_request: String,
    /// The proxy's CPU limit (empty: none).
    #[arg(long, env = "WEFT_INJECTOR_PROXY_CPU_LIMIT", default_value = "")]
    pub proxy_cpu_limit: String,
    /// The proxy's memory request (empty: none).
    #[arg(
        long,
        env = "WEFT_INJECTOR_PROXY_MEMORY_REQUEST",
        default_value = DEFAULT_PROXY_MEMORY_REQUEST
    )]
    pub proxy_memory_request: String,
    /// The proxy's memory limit (empty: none).
    #[arg(
        long,
        env = "WEFT_INJECTOR_PROXY_MEMORY_LIMIT",
        default_value = DEFAULT_PROXY_MEMORY_LIMIT
    )]
    pub proxy_memory_limit: String,
}

impl InjectFlags {
    /// The injection these flags describe, with the trust anchors read and checked.
    pub fn config(&self) -> Result<Config, FlagError> {
        let mut config = Config::new(&self.image_registry, &self.proxy_version);
        if let Some(image) = &self.proxy_image {
            config.proxy_image.clone_from(image);
        }
        if let Some(image) = &self.init_image {
            config.init_image.clone_from(image);
        }
        config.image_pull_policy.clone_from(&self.image_pull_policy);
        config.cni = self.cni;
        config.native_sidecars = self.native_sidecars;
        config.controller_addr = host_port("controller-addr", &self.controller_addr)?;
        config.identity_addr = host_port("identity-addr", &self.identity_addr)?;
        weft_certs::check_trust_domain(&self.trust_domain).map_err(|e| FlagError::Value {
            flag: "trust-domain",
            value: self.trust_domain.clone(),
            why: e.to_string(),
        })?;
        config.trust_domain.clone_from(&self.trust_domain);
        config.trust_anchors = self
            .trust_anchors
            .as_deref()
            .map(read_anchors)
            .transpose()?;
        config.otlp_addr = self
            .otlp_addr
            .as_deref()
            .map(|a| host_port("otlp-addr", a))
            .transpose()?;
        config.proxy_log_level.clone_from(&self.proxy_log_level);
        config.proxy_resources = Resources {
            cpu_request: resource("proxy-cpu-request", &self.proxy_cpu_request)?,
            cpu_limit: resource("proxy-cpu-limit", &self.proxy_cpu_limit)?,
            memory_request: resource("proxy-memory-request", &self.proxy_memory_request)?,
            memory_limit: resource("proxy-memory-limit", &self.proxy_memory_limit)?,
        };
        Ok(config)
    }
}

/// Reads and checks trust anchors; returns them as the PEM text given.
fn read_anchors(path: &Path) -> Result<String, FlagError> {
    let text = std::fs::read_to_string(path).map_err(|source| FlagError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    weft_certs::TrustAnchors::from_pem(&text).map_err(|source| FlagError::Anchors {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text)
}

fn host_port(flag: &'static str, value: &str) -> Result<String, FlagError> {
    let valid = value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if valid {
        Ok(value.to_string())
    } else {
        Err(FlagError::Value {
            flag,
            value: value.to_string(),
            why: "expected HOST:PORT, such as weft-controller.weft-system.svc.cluster.local:8086"
                .to_string(),
        })
    }
}

fn resource(flag: &'static str, value: &str) -> Result<Option<String>, FlagError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    quantity::check(value)
        .map(Some)
        .map_err(|why| FlagError::Value {
            flag,
            value: value.to_string(),
            why,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        inject: InjectFlags,
    }

    #[test]
    fn the_default_flags_are_the_default_config() {
        let flags = Flags::try_parse_from(["weft-injector"]).expect("no flag is required");
        let config = flags.inject.config().expect("the defaults are valid");
        assert_eq!(
            config,
            Config::new(DEFAULT_REGISTRY, env!("CARGO_PKG_VERSION"))
        );
    }
}
