//! What the injector adds, as the operator configured it: images, addresses, the trust domain
//! and anchors, and the proxy's default resources. The webhook and `weft inject` fill it from
//! their flags.

/// The proxy's UID (and GID): `weft-init` exempts its connections from the redirect.
pub const PROXY_UID: i64 = 2102;
/// The proxy's inbound listener port.
pub const INBOUND_PORT: i32 = 4143;
/// The proxy's outbound listener port.
pub const OUTBOUND_PORT: i32 = 4140;
/// The proxy's admin port (`/ready`, `/live`, `/metrics`).
pub const ADMIN_PORT: i32 = 4191;
/// The audience of the projected ServiceAccount token the proxy sends with `Certify`.
pub const TOKEN_AUDIENCE: &str = "identity.weft.dev";
/// How long a projected token lives; the kubelet renews it at 80% of that.
pub const TOKEN_EXPIRATION_SECONDS: i64 = 86_400;
/// The namespace the control plane runs in.
pub const CONTROL_PLANE_NAMESPACE: &str = "weft-system";

/// The proxy container's name (an init container in native sidecar mode).
pub const PROXY_CONTAINER: &str = "weft-proxy";
/// The redirect init container's name.
pub const INIT_CONTAINER: &str = "weft-init";
/// The projected token volume.
pub const TOKEN_VOLUME: &str = "weft-identity-token";
/// Where the token volume is mounted in the proxy.
pub const TOKEN_DIR: &str = "/var/run/secrets/weft.dev/identity";
/// The writable `/run` of `weft-init` (iptables' lock file), its root being read-only.
pub const XTABLES_VOLUME: &str = "weft-init-xtables";

/// The image pull policy of the injected containers, unless configured.
pub const DEFAULT_IMAGE_PULL_POLICY: &str = "IfNotPresent";
/// Whether the proxy runs as a native sidecar, unless configured.
pub const DEFAULT_NATIVE_SIDECARS: bool = true;
/// The controller's destination and policy gRPC address: its Service in
/// [`CONTROL_PLANE_NAMESPACE`].
pub const DEFAULT_CONTROLLER_ADDR: &str = "weft-controller.weft-system.svc.cluster.local:8086";
/// The controller's identity gRPC address: its Service in [`CONTROL_PLANE_NAMESPACE`].
pub const DEFAULT_IDENTITY_ADDR: &str = "weft-controller.weft-system.svc.cluster.local:8080";
/// The proxy's log filter, unless configured or set by the pod.
pub const DEFAULT_PROXY_LOG_LEVEL: &str = "warn,weft_proxy=info";
/// The proxy's CPU request, unless configured or set by the pod.
pub const DEFAULT_PROXY_CPU_REQUEST: &str = "100m";
/// The proxy's memory request, unless configured or set by the pod.
pub const DEFAULT_PROXY_MEMORY_REQUEST: &str = "20Mi";
/// The proxy's memory limit, unless configured or set by the pod.
pub const DEFAULT_PROXY_MEMORY_LIMIT: &str = "250Mi";

/// Everything the injection depends on besides the pod and its namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The proxy image, `registry/weft-proxy:tag`.
    pub proxy_image: String,
    /// The `weft-init` image.
    pub init_image: String,
    /// The image pull policy of both (`IfNotPresent`, `Always`, `Never`).
    pub image_pull_policy: String,
    /// The version written to `weft.dev/proxy-version`.
    pub proxy_version: String,
    /// CNI mode: the CNI plugin programs the redirect, so no `weft-init` container.
    pub cni: bool,
    /// The proxy as a native sidecar (init container with `restartPolicy: Always`, Kubernetes
    /// 1.29+); off, a regular first container whose `postStart` waits for it to be ready.
    pub native_sidecars: bool,
    /// The controller's destination and policy gRPC address (`host:port`).
    pub controller_addr: String,
    /// The controller's identity gRPC address (`host:port`).
    pub identity_addr: String,
    /// The mesh's trust domain.
    pub trust_domain: String,
    /// The trust anchors (PEM) given to every proxy; `None` injects a proxy without identity
    /// (a plaintext mesh).
    pub trust_anchors: Option<String>,
    /// Where proxies send spans (`host:port`), if anywhere.
    pub otlp_addr: Option<String>,
    /// The proxy's log filter when the pod does not set `weft.dev/proxy-log-level`.
    pub proxy_log_level: String,
    /// The proxy's resources when the pod does not override them.
    pub proxy_resources: Resources,
    /// The path of the readiness wait in the proxy image, run as `postStart` without native
    /// sidecars.
    pub await_command: String,
}

/// CPU and memory requests and limits, as Kubernetes quantities; `None` sets none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// `requests.cpu`.
    pub cpu_request: Option<String>,
    /// `limits.cpu`.
    pub cpu_limit: Option<String>,
    /// `requests.memory`.
    pub memory_request: Option<String>,
    /// `limits.memory`.
    pub memory_limit: Option<String>,
}

impl Config {
    /// The defaults for `registry` and `version`: images `<registry>/weft-proxy:<version>`
    /// and `<registry>/weft-init:<version>`, the controller at its Service in
    /// `weft-system`, native sidecars, `weft-init`, and no trust anchors yet.
    pub fn new(registry: &str, version: &str) -> Self {
        let registry = registry.trim_end_matches('/');
        Self {
            proxy_image: format!("{registry}/weft-proxy:{version}"),
            init_image: format!("{registry}/weft-init:{version}"),
            image_pull_policy: DEFAULT_IMAGE_PULL_POLICY.to_string(),
            proxy_version: version.to_string(),
            cni: false,
            native_sidecars: DEFAULT_NATIVE_SIDECARS,
            controller_addr: DEFAULT_CONTROLLER_ADDR.to_string(),
            identity_addr: DEFAULT_IDENTITY_ADDR.to_string(),
            trust_domain: weft_certs::DEFAULT_TRUST_DOMAIN.to_string(),
            trust_anchors: None,
            otlp_addr: None,
            proxy_log_level: DEFAULT_PROXY_LOG_LEVEL.to_string(),
            proxy_resources: Resources::proxy_default(),
            await_command: "/usr/local/bin/weft-await".to_string(),
        }
    }
}

impl Resources {
    /// The proxy's default: it asks for a tenth of a core and 20Mi, may grow to 250Mi, and
    /// has no CPU limit (a CPU limit throttles every request of the pod when it is reached).
    pub fn proxy_default() -> Self {
        Self {
            cpu_request: Some(DEFAULT_PROXY_CPU_REQUEST.to_string()),
            cpu_limit: None,
            memory_request: Some(DEFAULT_PROXY_MEMORY_REQUEST.to_string()),
            memory_limit: Some(DEFAULT_PROXY_MEMORY_LIMIT.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_addresses_are_the_controllers_service_in_the_control_plane_namespace() {
        let service = format!("weft-controller.{CONTROL_PLANE_NAMESPACE}.svc.cluster.local");
        assert_eq!(DEFAULT_CONTROLLER_ADDR, format!("{service}:8086"));
        assert_eq!(DEFAULT_IDENTITY_ADDR, format!("{service}:8080"));
    }
}
