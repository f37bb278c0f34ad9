//! The annotations that drive injection: `weft.dev/inject` on the namespace or the pod, and
//! the pod's (or its namespace's) overrides of the proxy's settings. A bad override is never
//! fatal: the default is used and a warning says which annotation was ignored and why.

use crate::{Resources, quantity};
use std::collections::BTreeMap;
use weft_init::PortList;

/// `enabled` on a namespace or pod injects it; `disabled` on a pod keeps it out.
pub const INJECT: &str = "weft.dev/inject";
/// Put on every injected pod; the controller treats pods with it as meshed.
pub const PROXY_VERSION: &str = "weft.dev/proxy-version";
/// Inbound ports `weft-init` does not redirect (the controller reads it too).
pub const SKIP_INBOUND_PORTS: &str = "weft.dev/skip-inbound-ports";
/// Outbound destination ports `weft-init` does not redirect.
pub const SKIP_OUTBOUND_PORTS: &str = "weft.dev/skip-outbound-ports";
/// Ports the proxy forwards as TCP without protocol detection (replaces its default list).
pub const OPAQUE_PORTS: &str = "weft.dev/opaque-ports";
/// The proxy's log filter.
pub const PROXY_LOG_LEVEL: &str = "weft.dev/proxy-log-level";
/// The proxy's CPU request.
pub const PROXY_CPU_REQUEST: &str = "weft.dev/proxy-cpu-request";
/// The proxy's CPU limit.
pub const PROXY_CPU_LIMIT: &str = "weft.dev/proxy-cpu-limit";
/// The proxy's memory request.
pub const PROXY_MEMORY_REQUEST: &str = "weft.dev/proxy-memory-request";
/// The proxy's memory limit.
pub const PROXY_MEMORY_LIMIT: &str = "weft.dev/proxy-memory-limit";
/// The inbound policy the proxy applies until the controller answers (the controller reads
/// the same annotation).
pub const DEFAULT_INBOUND_POLICY: &str = "weft.dev/default-inbound-policy";
/// The share of requests without a trace context whose trace the proxy starts (0 to 1).
pub const TRACE_SAMPLING: &str = "weft.dev/trace-sampling";
/// The proxy's access log on stdout: `json`, `apache` or `off`.
pub const ACCESS_LOG: &str = "weft.dev/access-log";
/// The container `kubectl logs` and `exec` pick; set to the app when the proxy goes first.
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// The values `weft.dev/default-inbound-policy` accepts.
pub const INBOUND_POLICIES: [&str; 4] = [
    "all-unauthenticated",
    "all-authenticated",
    "cluster-authenticated",
    "deny",
];

/// Annotations by key.
pub type Annotations = BTreeMap<String, String>;

/// The proxy settings a pod (or its namespace) overrides, each checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `weft-init --skip-inbound-ports`.
    pub skip_inbound_ports: Option<String>,
    /// `weft-init --skip-outbound-ports`.
    pub skip_outbound_ports: Option<String>,
    /// `WEFT_PROXY_OPAQUE_PORTS`.
    pub opaque_ports: Option<String>,
    /// `WEFT_PROXY_LOG`.
    pub log_level: Option<String>,
    /// `WEFT_PROXY_INBOUND_DEFAULT_POLICY`.
    pub default_inbound_policy: Option<String>,
    /// `WEFT_PROXY_TRACE_SAMPLING`.
    pub trace_sampling: Option<String>,
    /// `WEFT_PROXY_ACCESS_LOG`.
    pub access_log: Option<String>,
    /// The proxy's resources, the defaults with the overrides applied.
    pub resources: Resources,
}

/// Where an annotation was found: the pod's own wins over its namespace's.
struct Lookup<'a> {
    pod: &'a Annotations,
    namespace: &'a Annotations,
    warnings: &'a mut Vec<String>,
}

impl Lookup<'_> {
    fn get(&self, key: &str) -> Option<(&str, &'static str)> {
        match (self.pod.get(key), self.namespace.get(key)) {
            (Some(v), _) => Some((v.as_str(), "pod")),
            (None, Some(v)) => Some((v.as_str(), "namespace")),
            (None, None) => None,
        }
    }

    /// The value of `key` if `check` accepts it (returning the value to use); else a warning.
    fn checked(
        &mut self,
        key: &str,
        check: impl Fn(&str) -> Result<String, String>,
    ) -> Option<String> {
        let (value, on) = self.get(key)?;
        match check(value.trim()) {
            Ok(value) => Some(value),
            Err(why) => {
                self.warnings.push(format!(
                    "weft-injector: ignored {key}={value:?} on the {on}: {why}"
                ));
                None
            }
        }
    }
}

impl Overrides {
    /// Reads every override from `pod`, then `namespace`, over the `defaults`; each bad one
    /// adds a warning to `warnings` and keeps the default.
    pub fn read(
        pod: &Annotations,
        namespace: &Annotations,
        defaults: &Resources,
        warnings: &mut Vec<String>,
    ) -> Self {
        let mut look = Lookup {
            pod,
            namespace,
            warnings,
        };
        let mut resources = defaults.clone();
        let set = |target: &mut Option<String>, key: &str, look: &mut Lookup<'_>| {
            if let Some(q) = look.checked(key, quantity::check) {
                *target = Some(q);
            }
        };
        set(&mut resources.cpu_request, PROXY_CPU_REQUEST, &mut look);
        set(&mut resources.cpu_limit, PROXY_CPU_LIMIT, &mut look);
        set(
            &mut resources.memory_request,
            PROXY_MEMORY_REQUEST,
            &mut look,
        );
        set(&mut resources.memory_limit, PROXY_MEMORY_LIMIT, &mut look);
        Self {
            skip_inbound_ports: look.checked(SKIP_INBOUND_PORTS, ports),
            skip_outbound_ports: look.checked(SKIP_OUTBOUND_PORTS, ports),
            opaque_ports: look.checked(OPAQUE_PORTS, ports),
            log_level: look.checked(PROXY_LOG_LEVEL, log_level),
            default_inbound_policy: look.checked(DEFAULT_INBOUND_POLICY, inbound_policy),
            trace_sampling: look.checked(TRACE_SAMPLING, ratio),
            access_log: look.checked(ACCESS_LOG, access_log),
            resources: fit_limits(resources, &mut *look.warnings),
        }
    }
}

/// A request above its limit makes the API server refuse the pod; the limit is raised to the
/// request instead, with a warning.
fn fit_limits(mut r: Resources, warnings: &mut Vec<String>) -> Resources {
    for (what, request, limit) in [
        ("cpu", &r.cpu_request, &mut r.cpu_limit),
        ("memory", &r.memory_request, &mut r.memory_limit),
    ] {
        if let (Some(req), Some(lim)) = (request, limit.as_ref())
            && quantity::value(req) > quantity::value(lim)
        {
            warnings.push(format!(
                "weft-injector: the proxy's {what} request {req} is above its limit {lim}; the limit is raised to {req}"
            ));
            *limit = Some(req.clone());
        }
    }
    r
}

/// A ratio from 0 to 1, as the proxy reads it.
fn ratio(text: &str) -> Result<String, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(text.to_string()),
        _ => Err("expected a ratio from 0 to 1, such as 0.1".to_string()),
    }
}

/// `json`, `apache` or `off`.
fn access_log(text: &str) -> Result<String, String> {
    match text {
        "json" | "apache" | "off" => Ok(text.to_string()),
        _ => Err("expected json, apache or off".to_string()),
    }
}

/// A port list weft-init and the proxy both read, normalized to `80,8000-8010`.
fn ports(text: &str) -> Result<String, String> {
    let list: PortList = text.parse().map_err(|e| {
        format!("{e}; expected ports and ranges like 25,8000-8010, comma-separated")
    })?;
    if list.0.is_empty() {
        return Err("no port given; expected ports and ranges like 25,8000-8010".to_string());
    }
    Ok(list
        .0
        .iter()
        .map(|spec| spec.to_string().replace(':', "-"))
        .collect::<Vec<_>>()
        .join(","))
}

/// A tracing filter: the proxy checks it fully at start; here only what would break the
/// environment variable or is plainly not a filter.
fn log_level(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-=,:.[]{}*\"".contains(c);
    if text.is_empty() || !text.chars().all(allowed) {
        return Err(
            "not a log filter; expected e.g. `info` or `warn,weft_proxy=debug`".to_string(),
        );
    }
    Ok(text.to_string())
}

fn inbound_policy(text: &str) -> Result<String, String> {
    if INBOUND_POLICIES.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!("expected one of {}", INBOUND_POLICIES.join(", ")))
    }
}
