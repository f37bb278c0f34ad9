//! A generated cluster for the controller's memory benchmark: namespaces of meshed Services,
//! their Pods and EndpointSlices, and TrafficSplits, as the files source reads them.
//!
//! The documents come from [`weft_cli_local::manifests`], the same builders the demo uses, so
//! the benchmark loads exactly what local mode writes, only more of it.

use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use weft_cli_local::manifests;

/// Where Service ClusterIPs come from: 10.96.0.0/12, kubeadm's default service range.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 12);

/// Where Pod IPs come from: 10.128.0.0/9, inside 10.0.0.0/8 and apart from [`SERVICE_CIDR`].
pub const POD_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 128, 0, 0), 9);

/// The port of every generated Service (named `http`) and of its endpoints.
pub const PORT: u16 = 80;

/// The weights (root service, neighbour) every generated TrafficSplit starts with.
pub const SPLIT_WEIGHTS: (u32, u32) = (90, 10);

/// The shape of a generated cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Services in all.
    pub services: usize,
    /// Ready endpoints (meshed Pods) per Service.
    pub endpoints: usize,
    /// Services per namespace; the last namespace holds the rest.
    pub services_per_namespace: usize,
}

/// How many objects of each kind a [`Scale`] makes: what the controller's `/index` should count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Namespaces.
    pub namespaces: usize,
    /// Services.
    pub services: usize,
    /// EndpointSlices, one per Service.
    pub endpointslices: usize,
    /// Pods, `endpoints` per Service.
    pub pods: usize,
    /// TrafficSplits, one per ten Services.
    pub trafficsplits: usize,
}

/// One file of the generated cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// The file name, e.g. `bench-0000.yaml`.
    pub name: String,
    /// Its documents, separated by `---`.
    pub text: String,
}

/// A [`Scale`] that cannot be generated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// A count is zero.
    #[error("{what} must be at least 1")]
    Zero {
        /// Which count.
        what: &'static str,
    },
    /// More addresses are needed than the range holds.
    #[error("{needed} {what} IPs do not fit in {cidr} (at most {max}); use fewer")]
    TooMany {
        /// Service or Pod.
        what: &'static str,
        /// How many were asked for.
        needed: usize,
        /// The range.
        cidr: String,
        /// How many it holds, without its first and last address.
        max: usize,
    },
}

// === impl Scale ===

impl Scale {
    /// Checks that every count is at least 1 and that the IPs fit their ranges.
    pub fn validate(&self) -> Result<Counts, ScaleError> {
        for (what, n) in [
            ("--services", self.services),
            ("--endpoints", self.endpoints),
            ("--services-per-namespace", self.services_per_namespace),
        ] {
            if n == 0 {
                return Err(ScaleError::Zero { what });
            }
        }
        let pods = self.services.saturating_mul(self.endpoints);
        for (what, needed, (net, bits)) in [
            ("Service", self.services, SERVICE_CIDR),
            ("Pod", pods, POD_CIDR),
        ] {
            let max = (1usize << (32 - bits)) - 2;
            if needed > max {
                let cidr = format!("{net}/{bits}");
                return Err(ScaleError::TooMany {
                    what,
                    needed,
                    cidr,
                    max,
                });
            }
        }
        Ok(Counts {
            namespaces: self.services.div_ceil(self.services_per_namespace),
            services: self.services,
            endpointslices: self.services,
            pods,
            trafficsplits: self.services / 10,
        })
    }

    /// Every file, one per namespace, with every split at [`SPLIT_WEIGHTS`].
    pub fn files(&self) -> Result<Vec<ManifestFile>, ScaleError> {
        let counts = self.validate()?;
        Ok((0..counts.namespaces)
            .map(|ns| self.file(ns, |_| SPLIT_WEIGHTS))
            .collect())
    }

    /// The file of namespace number `ns`, with the split rooted at Service `i` (if there is
    /// one) weighted `weights(i)`. Call [`Scale::validate`] first.
    pub fn file(&self, ns: usize, weights: impl Fn(usize) -> (u32, u32)) -> ManifestFile {
        let namespace = namespace(ns);
        let first = ns * self.services_per_namespace;
        let last = (first + self.services_per_namespace).min(self.services);
        let mut docs = vec![manifests::namespace(&namespace)];
        for i in first..last {
            let service = service(i);
            let pods: Vec<(String, IpAddr)> = (0..self.endpoints)
                .map(|e| (format!("{service}-{e}"), IpAddr::V4(self.pod_ip(i, e))))
                .collect();
            for (pod, ip) in &pods {
                docs.push(manifests::pod(&manifests::PodSpec {
                    namespace: &namespace,
                    name: pod,
                    ip: *ip,
                    service_account: &service,
                    app: &service,
                    version: "v1",
                }));
            }
            let endpoints: Vec<(&str, IpAddr)> =
                pods.iter().map(|(p, ip)| (p.as_str(), *ip)).collect();
            let ip = IpAddr::V4(cluster_ip(i));
            docs.push(manifests::service(
                &namespace, &service, ip, PORT, &endpoints,
            ));
            if let Some(neighbour) = self.split_neighbour(i) {
                let (root, other) = weights(i);
                let mut backends = vec![(service.as_str(), root)];
                if let Some(neighbour) = &neighbour {
                    backends.push((neighbour.as_str(), other));
                }
                let name = format!("{service}-split");
                docs.push(manifests::traffic_split(
                    &namespace, &name, &service, &backends,
                ));
            }
        }
        ManifestFile {
            name: format!("{namespace}.yaml"),
            text: docs.join("---\n"),
        }
    }

    /// Service `i`'s namespace number.
    pub fn namespace_of(&self, i: usize) -> usize {
        i / self.services_per_namespace
    }

    /// Services with a split: every tenth (9, 19, 29, …), so there are `services / 10`.
    pub fn split_roots(&self) -> impl Iterator<Item = usize> {
        (9..self.services).step_by(10)
    }

    /// For a Service `i` that roots a split, `Some` of its second backend: the Service before
    /// it in the same namespace, or else the namespace's last one, so a split never crosses
    /// namespaces; `Some(None)` when the namespace holds `i` alone. `None` when `i` roots no
    /// split.
    fn split_neighbour(&self, i: usize) -> Option<Option<String>> {
        if i % 10 != 9 {
            return None;
        }
        let first = self.namespace_of(i) * self.services_per_namespace;
        let last = (first + self.services_per_namespace).min(self.services) - 1;
        let other = if i > first { i - 1 } else { last };
        Some((other != i).then(|| service(other)))
    }

    /// Endpoint `e` of Service `i`: a unique address in [`POD_CIDR`].
    pub fn pod_ip(&self, i: usize, e: usize) -> Ipv4Addr {
        offset(POD_CIDR.0, 1 + i * self.endpoints + e)
    }
}

/// The name of namespace number `ns`.
pub fn namespace(ns: usize) -> String {
    format!("bench-{ns:04}")
}

/// The name of Service `i` (also its app label and service account).
pub fn service(i: usize) -> String {
    format!("svc-{i:05}")
}

/// Service `i`'s ClusterIP: a unique address in [`SERVICE_CIDR`].
pub fn cluster_ip(i: usize) -> Ipv4Addr {
    offset(SERVICE_CIDR.0, 1 + i)
}

fn offset(base: Ipv4Addr, n: usize) -> Ipv4Addr {
    // `Scale::validate` keeps `n` inside a /9 or smaller, far below u32::MAX.
    Ipv4Addr::from(u32::from(base).wrapping_add(n as u32))
}

#[cfg(test)]
mod tests;
