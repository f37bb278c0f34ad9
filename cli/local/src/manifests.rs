//! Kubernetes manifests for local mode's files source: the same YAML a cluster would hold,
//! written atomically so the controller never reads half a file.

use std::{fmt::Write as _, net::IpAddr, path::Path};

/// A pod as the controller sees it: meshed (it carries `weft.dev/proxy-version`), with a
/// service account and labels.
#[derive(Clone, Debug)]
pub struct PodSpec<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// Pod IP.
    pub ip: IpAddr,
    /// Service account.
    pub service_account: &'a str,
    /// `app` label.
    pub app: &'a str,
    /// `version` label.
    pub version: &'a str,
}

/// A `v1` Namespace.
pub fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

/// A `v1` Namespace with `annotations` (e.g. `weft.dev/default-inbound-policy`); none gives
/// exactly [`namespace`].
pub fn namespace_with_annotations(name: &str, annotations: &[(&str, &str)]) -> String {
    let mut out = namespace(name);
    if !annotations.is_empty() {
        let _ = writeln!(out, "  annotations: {{{}}}", flow_entries(annotations));
    }
    out
}

/// A meshed `v1` Pod.
pub fn pod(p: &PodSpec<'_>) -> String {
    pod_with_annotations(p, &[])
}

/// A meshed `v1` Pod with `annotations` besides `weft.dev/proxy-version` (e.g.
/// `weft.dev/default-inbound-policy`); none gives exactly [`pod`].
pub fn pod_with_annotations(p: &PodSpec<'_>, annotations: &[(&str, &str)]) -> String {
    let extra = match annotations {
        [] => String::new(),
        some => format!(", {}", flow_entries(some)),
    };
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {app}, version: {version}}}
  annotations: {{weft.dev/proxy-version: {proxy_version}{extra}}}
spec:
  serviceAccountName: {sa}
  containers: [{{name: app, image: weft-demo}}]
status:
  podIP: {ip}
",
        name = p.name,
        ns = p.namespace,
        app = p.app,
        version = p.version,
        proxy_version = env!("CARGO_PKG_VERSION"),
        sa = p.service_account,
        ip = p.ip,
    )
}

/// `key: "value", ...` for a YAML flow mapping, values double-quoted so any text stays a
/// string.
fn flow_entries(entries: &[(&str, &str)]) -> String {
    entries
        .iter()
        .map(|(k, v)| format!("{k}: \"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A ClusterIP `v1` Service with one named port `http`, and its EndpointSlice listing `pods`
/// (all ready) — what the EndpointSlice controller would write.
pub fn service(
    namespace: &str,
    name: &str,
    cluster_ip: IpAddr,
    port: u16,
    pods: &[(&str, IpAddr)],
) -> String {
    service_with_annotations(namespace, name, cluster_ip, port, pods, &[])
}

/// [`service`] with `annotations` on the Service (e.g. `weft.dev/retry-budget`); none gives
/// exactly [`service`].
pub fn service_with_annotations(
    namespace: &str,
    name: &str,
    cluster_ip: IpAddr,
    port: u16,
    pods: &[(&str, IpAddr)],
    annotations: &[(&str, &str)],
) -> String {
    let annotations = match annotations {
        [] => String::new(),
        some => format!("\n  annotations: {{{}}}", flow_entries(some)),
    };
    let mut out = format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {namespace}{annotations}
spec:
  clusterIP: {cluster_ip}
  ports: [{{name: http, port: {port}, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-local
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: {family}
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints:
",
        family = if cluster_ip.is_ipv4() { "IPv4" } else { "IPv6" },
    );
    if pods.is_empty() {
        out = out.replace("endpoints:\n", "endpoints: []\n");
    }
    for (pod, ip) in pods {
        let _ = writeln!(
            out,
            "- addresses: [\"{ip}\"]\n  conditions: {{ready: true, serving: true, terminating: false}}\n  targetRef: {{kind: Pod, namespace: {namespace}, name: {pod}}}"
        );
    }
    out
}

/// An SMI `TrafficSplit` of `service` over `backends` (service, weight).
pub fn traffic_split(
    namespace: &str,
    name: &str,
    service: &str,
    backends: &[(&str, u32)],
) -> String {
    let mut out = format!(
        "apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: {name}
  namespace: {namespace}
spec:
  service: {service}
  backends:
"
    );
    for (backend, weight) in backends {
        let _ = writeln!(out, "  - service: {backend}\n    weight: {weight}");
    }
    out
}

/// Writes `text` to `dir/name` through a temporary file and a rename, so a reader sees the old
/// file or the new one, never a partial one.
pub fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))
}
