//! The canary setup the demo, the end-to-end tests and the benchmarks share: namespace `shop`
//! with a `client` pod and a `web` service over `web-v1` and `web-v2` pods, all meshed, a
//! controller reading the manifests from a directory, and a TrafficSplit to move.

use crate::{
    Controller, LocalIdentity, Network, Pod, Process, Sidecar, bin_path,
    controller::IdentityArgs,
    manifests, metric_sum,
    otlp::{self, Receiver},
    traffic::Request,
};
use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::{Duration, Instant},
};

/// The namespace.
pub const NAMESPACE: &str = "shop";
/// The app port of every web pod and service.
pub const PORT: u16 = 8080;
/// The `web` service's ClusterIP. Nothing routes it: the client's sidecar catches the
/// connection and picks a pod, as in a cluster.
pub const WEB_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);
/// `web-v1`'s ClusterIP.
pub const WEB_V1_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 11);
/// `web-v2`'s ClusterIP.
pub const WEB_V2_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 12);
/// The header the demo app names itself in.
pub const SERVED_BY: &str = "x-weft-demo-served-by";
/// The header the demo app repeats the caller's mesh identity in (`-` if it has none).
pub const CLIENT_ID: &str = "x-weft-demo-client-id";
/// The service's DNS name.
pub const WEB_HOST: &str = "web.shop.svc.cluster.local";

/// A running shop. Dropping it removes everything (the network's drop does).
#[derive(Debug)]
pub struct Shop {
    /// Pods, processes and rules.
    pub net: Network,
    /// The manifests directory the controller reads.
    pub dir: PathBuf,
    /// The controller.
    pub controller: Controller,
    /// The client pod and its sidecar.
    pub client: Sidecar,
    /// `web-v1` and its sidecar.
    pub v1: Sidecar,
    /// `web-v2` and its sidecar.
    pub v2: Sidecar,
    /// The `web-v1` and `web-v2` app processes.
    pub apps: [Process; 2],
    /// The local CA and token registry (`None` with mTLS off).
    pub identity: Option<LocalIdentity>,
    /// The OTLP receiver the sidecars export spans to (`None` without tracing).
    pub otlp: Option<Receiver>,
}

/// How to set the shop up.
#[derive(Clone, Debug)]
pub struct Options {
    /// The split, web-v1 and web-v2.
    pub weights: (u32, u32),
    /// Added to every sidecar's environment.
    pub proxy_env: Vec<(String, String)>,
    /// Mesh identity and mTLS (on by default, as in a real install).
    pub mtls: bool,
    /// How long the controller's certificates live.
    pub leaf_lifetime: Duration,
    /// Tracing: an `otel` pod with an OTLP receiver that every sidecar exports spans to,
    /// starting traces for this share of requests that carry no trace context.
    pub trace_sampling: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            weights: (100, 0),
            proxy_env: Vec::new(),
            mtls: true,
            leaf_lifetime: Duration::from_secs(24 * 3600),
            trace_sampling: None,
        }
    }
}

/// Why the shop could not be set up.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl Shop {
    /// Sets everything up with the split at `weights` (web-v1, web-v2), mTLS on and the apps
    /// running. `proxy_env` is added to every sidecar's environment.
    pub fn start(weights: (u32, u32), proxy_env: &[(&str, &str)]) -> Result<Self, Error> {
        Self::start_with(Options {
            weights,
            proxy_env: proxy_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Options::default()
        })
    }

    /// Sets everything up as `options` say.
    pub fn start_with(options: Options) -> Result<Self, Error> {
        let net = Network::new()?;
        let dir = net.log_dir().join("manifests");
        std::fs::create_dir_all(&dir)?;
        let client = net.pod("client")?;
        let v1 = net.pod("web-v1")?;
        let v2 = net.pod("web-v2")?;
        write_cluster(&dir, &client, &v1, &v2, true, &[])?;
        write_split(&dir, options.weights)?;
        let identity = match options.mtls {
            true => Some(LocalIdentity::create(&net.log_dir().join("identity"))?),
            false => None,
        };
        let args = identity
            .as_ref()
            .map(|id| IdentityArgs::new(id, options.leaf_lifetime));
        let controller = Controller::start(&net, &dir, args)?;
        let (otlp, otlp_env) = match options.trace_sampling {
            Some(sampling) => {
                let receiver = Receiver::start_in(&net.pod("otel")?, otlp::PORT)?;
                let env = receiver.proxy_env(sampling);
                (Some(receiver), Vec::from(env))
            }
            None => (None, Vec::new()),
        };
        // Every pod calls the services by name, as in a cluster.
        let hosts = [
            (IpAddr::V4(WEB_IP), WEB_HOST.to_string()),
            (
                IpAddr::V4(WEB_V1_IP),
                format!("web-v1.{NAMESPACE}.svc.cluster.local"),
            ),
            (
                IpAddr::V4(WEB_V2_IP),
                format!("web-v2.{NAMESPACE}.svc.cluster.local"),
            ),
        ];
        for pod in [&client, &v1, &v2] {
            net.set_hosts(pod, &hosts)?;
        }
        let inject = |pod: &Pod, sa: &str| -> Result<Sidecar, Error> {
            let mut env = vec![
                (
                    "WEFT_PROXY_CONTROLLER_ADDR".to_string(),
                    controller.addr().to_string(),
                ),
                (
                    "WEFT_PROXY_WORKLOAD".to_string(),
                    format!("{NAMESPACE}/{}", pod.name),
                ),
            ];
            if let Some(id) = &identity {
                env.extend(identity_env(id, &controller, NAMESPACE, sa, &pod.name)?);
            }
            env.extend(otlp_env.iter().cloned());
            env.extend(options.proxy_env.iter().cloned());
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
            Ok(Sidecar::inject(pod, &[], &env)?)
        };
        let (client, v1, v2) = (
            inject(&client, "client")?,
            inject(&v1, "web")?,
            inject(&v2, "web")?,
        );
        let weft = bin_path("weft")?;
        // Each web app's `/checkout` calls the other version's Service by name.
        let app = |pod: &Pod, name: &str, backend: &str| -> Result<Process, Error> {
            let mut app = pod.command("setpriv");
            app.arg("--pdeathsig=KILL").arg(&weft).args([
                "demo-app",
                "--name",
                name,
                "--port",
                &PORT.to_string(),
                "--backend",
                &format!("http://{backend}.{NAMESPACE}.svc.cluster.local:{PORT}/"),
            ]);
            let process = pod.start("app", app)?;
            pod.wait_listening(&[PORT], Duration::from_secs(10))?;
            Ok(process)
        };
        let apps = [
            app(&v1.pod, "web-v1", "web-v2")?,
            app(&v2.pod, "web-v2", "web-v1")?,
        ];
        Ok(Self {
            net,
            dir,
            controller,
            client,
            v1,
            v2,
            apps,
            identity,
            otlp,
        })
    }

    /// A GET of the web service from the client, tallied by which pod served it. In-process
    /// clients do not read `/etc/netns` hosts, so it dials the ClusterIP and names the service
    /// in `Host`, as a resolved name would.
    pub fn web_request(path: &str) -> Request {
        Request::get(format!("http://{WEB_IP}:{PORT}{path}"), SERVED_BY)
            .header("host", &format!("{WEB_HOST}:{PORT}"))
    }

    /// Rewrites the split.
    pub fn set_split(&self, weights: (u32, u32)) -> std::io::Result<()> {
        write_split(&self.dir, weights)
    }

    /// Removes the TrafficSplit: `web` balances over its own endpoints again.
    pub fn remove_split(&self) -> std::io::Result<()> {
        std::fs::remove_file(self.dir.join("canary.yaml"))
    }

    /// Writes another manifest file into the controller's directory.
    pub fn write_manifest(&self, name: &str, text: &str) -> std::io::Result<()> {
        manifests::write(&self.dir, name, text)
    }

    /// Rewrites the cluster manifests with the `web` Service as given: `with_v2: false` removes
    /// web-v2 from its endpoints (as when its pod goes away), and `annotations` go on it (e.g.
    /// `weft.dev/retry-budget`). Both are set each time, so a call undoes what an earlier one
    /// set and this one does not repeat.
    pub fn set_web(&self, with_v2: bool, annotations: &[(&str, &str)]) -> std::io::Result<()> {
        write_cluster(
            &self.dir,
            &self.client.pod,
            &self.v1.pod,
            &self.v2.pod,
            with_v2,
            annotations,
        )
    }

    /// The client sidecar's count of outbound policy updates received.
    pub fn policy_updates(&self) -> f64 {
        self.updates("outbound_policy")
    }

    /// The client sidecar's count of updates on `kind` streams (`outbound_policy`,
    /// `destination`).
    pub fn updates(&self, kind: &str) -> f64 {
        metric_sum(
            &self.client.metrics(),
            "control_plane_updates_total",
            &[&format!("kind=\"{kind}\"")],
        )
    }

    /// Waits until the client sidecar has received more than `before` policy updates.
    pub fn wait_policy_update(&self, before: f64, timeout: Duration) -> Option<Duration> {
        self.wait_update("outbound_policy", before, timeout)
    }

    /// Waits until the client sidecar has received more than `before` updates on `kind`
    /// streams; how long that took.
    pub fn wait_update(&self, kind: &str, before: f64, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.updates(kind) > before {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

/// The `WEFT_PROXY_*` identity settings of a sidecar in `pod` running as ServiceAccount `sa`:
/// a fresh token registered for it, the trust anchors, its name and where to certify.
pub fn identity_env(
    identity: &LocalIdentity,
    controller: &Controller,
    namespace: &str,
    sa: &str,
    pod: &str,
) -> Result<Vec<(String, String)>, Error> {
    let token = identity.token_for(namespace, sa, pod)?;
    Ok(vec![
        (
            "WEFT_PROXY_IDENTITY_ADDR".into(),
            controller.identity_addr().to_string(),
        ),
        (
            "WEFT_PROXY_IDENTITY_NAME".into(),
            LocalIdentity::identity(namespace, sa)?,
        ),
        ("WEFT_PROXY_TOKEN_FILE".into(), token.display().to_string()),
        (
            "WEFT_PROXY_TRUST_ANCHORS_FILE".into(),
            identity.anchors_path().display().to_string(),
        ),
    ])
}

/// `web-v1` and `web-v2` weights as a TrafficSplit of `web`.
pub fn write_split(dir: &std::path::Path, (v1, v2): (u32, u32)) -> std::io::Result<()> {
    let split = manifests::traffic_split(
        NAMESPACE,
        "web-canary",
        "web",
        &[("web-v1", v1), ("web-v2", v2)],
    );
    manifests::write(dir, "canary.yaml", &split)
}

fn write_cluster(
    dir: &std::path::Path,
    client: &Pod,
    v1: &Pod,
    v2: &Pod,
    with_v2: bool,
    web_annotations: &[(&str, &str)],
) -> std::io::Result<()> {
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
    let v1_ep = (v1.name.as_str(), IpAddr::V4(v1.ip));
    let v2_ep = (v2.name.as_str(), IpAddr::V4(v2.ip));
    let web: Vec<(&str, IpAddr)> = if with_v2 {
        vec![v1_ep, v2_ep]
    } else {
        vec![v1_ep]
    };
    let v2_eps: Vec<(&str, IpAddr)> = if with_v2 { vec![v2_ep] } else { vec![] };
    let mut docs = vec![
        manifests::namespace(NAMESPACE),
        manifests::pod(&pod(client, "client", "v1")),
        manifests::pod(&pod(v1, "web", "v1")),
    ];
    if with_v2 {
        docs.push(manifests::pod(&pod(v2, "web", "v2")));
    }
    docs.extend([
        manifests::service_with_annotations(
            NAMESPACE,
            "web",
            IpAddr::V4(WEB_IP),
            PORT,
            &web,
            web_annotations,
        ),
        manifests::service(NAMESPACE, "web-v1", IpAddr::V4(WEB_V1_IP), PORT, &[v1_ep]),
        manifests::service(NAMESPACE, "web-v2", IpAddr::V4(WEB_V2_IP), PORT, &v2_eps),
    ]);
    manifests::write(dir, "cluster.yaml", &docs.join("---\n"))
}
