//! The pods of `weft-bench-sidecars`: a direct client/server pair and a meshed one on one
//! bridge, and for the `controller` and `mtls` modes the controller, its manifests and the local
//! CA, set up as `weft demo` sets up its shop.

use super::{
    LoadRun, MeshMode,
    report::{self, InboundTls, Measured},
};
use crate::control::Error;
use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::{Duration, Instant},
};
use weft_cli_local::{
    Controller, LocalIdentity, Network, Pod, Sidecar, bin_path,
    controller::IdentityArgs,
    manifests, metric_sum,
    otlp::{self, Receiver},
    shop,
};

/// The namespace of the meshed pods in the controller's manifests.
pub const NAMESPACE: &str = "bench";
/// The server's HTTP port, where the proxies detect HTTP and pool upstream connections.
pub const HTTP_PORT: u16 = 8080;
/// The server's second port, declared opaque to both proxies: each client connection is one
/// upstream connection, with one mTLS handshake between the proxies in `mtls` mode.
pub const OPAQUE_PORT: u16 = 4444;
/// The ClusterIP of Service `server` (port [`HTTP_PORT`]). Nothing routes it: the client's
/// proxy catches the connection and picks an endpoint, as in a cluster.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 50);
/// The ClusterIP of Service `server-opaque` (port [`OPAQUE_PORT`]).
pub const SERVER_OPAQUE_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 51);
/// How long the meshed pods' certificates live; longer than any run, so none is renewed in one.
const LEAF_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a server app may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines of each process shown when a run fails.
const LOG_TAIL: usize = 30;

/// A client pod and the URL its load goes to.
#[derive(Debug)]
pub struct Pair {
    /// Where `weft-load` runs.
    pub client: Pod,
    /// The server's HTTP port: the pod IP, or the Service's ClusterIP with a controller.
    pub url: String,
}

/// Everything one benchmark run stands on; dropping it removes it all (the network's drop
/// kills the processes and deletes the namespaces).
#[derive(Debug)]
pub struct Setup {
    /// Client and server without sidecars.
    pub direct: Pair,
    /// Client and server with sidecars.
    pub meshed: Pair,
    /// The meshed server on [`OPAQUE_PORT`], as the meshed client reaches it.
    pub opaque_url: String,
    /// The client's and the server's sidecars, in that order.
    pub sidecars: [Sidecar; 2],
    /// The controller, in the `controller` and `mtls` modes.
    pub controller: Option<Controller>,
    /// The local CA and token registry, in the `mtls` mode.
    pub identity: Option<LocalIdentity>,
    /// The OTLP receiver the proxies export to, with tracing on.
    pub otlp: Option<Receiver>,
    /// The pods' network; declared last so it is dropped last.
    pub net: Network,
}

/// What the proxies have done so far, from their counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// CPU seconds of both proxies.
    pub cpu_s: f64,
    /// Connections the client's proxy has accepted from its app.
    pub connections: f64,
}

// === impl Usage ===

impl Usage {
    /// What was done between `earlier` and this.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            cpu_s: self.cpu_s - earlier.cpu_s,
            connections: self.connections - earlier.connections,
        }
    }

    /// `run` with this usage.
    pub fn of(self, run: LoadRun) -> Measured {
        Measured::new(run, self.cpu_s, self.connections)
    }
}

// === impl Setup ===

impl Setup {
    /// Builds both pairs, the meshed one in `mode`; `proxy_env` goes to both proxies after the
    /// benchmark's own settings, so it overrides them. With a controller, `annotations` go on
    /// the server's HTTP Service (e.g. `weft.dev/retry-http`).
    pub fn start(
        mode: MeshMode,
        proxy_env: &[(String, String)],
        annotations: &[(String, String)],
        tracing: Option<f64>,
    ) -> Result<Self, Error> {
        let net = Network::new().map_err(Error::setup("create the benchmark network"))?;
        let pod = |name: &str| {
            net.pod(name)
                .map_err(Error::setup(format!("create pod {name}")))
        };
        let (direct_client, direct_server) = (pod("direct-client")?, pod("direct-server")?);
        start_server(&direct_server, HTTP_PORT)?;
        let (client, server) = (pod("mesh-client")?, pod("mesh-server")?);

        let (controller, identity) = start_controller(&net, mode, &client, &server, annotations)?;
        let (otlp, mut env) = match tracing {
            Some(sampling) => {
                let receiver = Receiver::start_in(&pod("otel")?, otlp::PORT)
                    .map_err(Error::setup("start the OTLP receiver"))?;
                let env = receiver.proxy_env(sampling);
                (Some(receiver), Vec::from(env))
            }
            None => (None, Vec::new()),
        };
        // Before the user's settings, which may override them.
        env.extend(proxy_env.iter().cloned());
        let proxy_env = &env[..];
        let inject = |pod: &Pod, sa: &str| {
            let env = proxy_env_of(pod, sa, controller.as_ref(), identity.as_ref(), proxy_env)?;
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
            let what = format!("start the sidecar of pod {}", pod.name);
            Sidecar::inject(pod, &[], &env).map_err(Error::setup(what))
        };
        // Both sidecars before the server app, as the injector orders containers.
        let sidecars = [inject(&client, "client")?, inject(&server, "server")?];
        start_server(&server, HTTP_PORT)?;
        start_server(&server, OPAQUE_PORT)?;

        let (http_ip, opaque_ip) = match controller {
            None => (server.ip, server.ip),
            Some(_) => (SERVER_IP, SERVER_OPAQUE_IP),
        };
        Ok(Self {
            direct: Pair {
                url: url(direct_server.ip, HTTP_PORT),
                client: direct_client,
            },
            meshed: Pair {
                url: url(http_ip, HTTP_PORT),
                client,
            },
            opaque_url: url(opaque_ip, OPAQUE_PORT),
            sidecars,
            controller,
            identity,
            otlp,
            net,
        })
    }

    /// The proxies' counters now, to subtract from later ones.
    pub fn usage(&self) -> Usage {
        let metrics = self.sidecars.each_ref().map(Sidecar::metrics);
        Usage {
            cpu_s: metrics
                .iter()
                .map(|m| metric_sum(m, "process_cpu_seconds", &[]))
                .sum(),
            connections: metric_sum(&metrics[0], "tcp_open_total", &["direction=\"outbound\""]),
        }
    }

    /// Resident memory of the client's and the server's proxy, in MB.
    pub fn proxy_rss_mb(&self) -> [f64; 2] {
        self.sidecars
            .each_ref()
            .map(|s| metric_sum(&s.metrics(), "process_resident_memory_bytes", &[]) / 1e6)
    }

    /// Spans both proxies exported and dropped so far.
    pub fn spans(&self) -> report::Spans {
        let sum = |name: &str| {
            self.sidecars
                .iter()
                .map(|s| metric_sum(&s.metrics(), name, &[]))
                .sum()
        };
        report::Spans {
            exported: sum("trace_spans_exported_total"),
            dropped: sum("trace_spans_dropped_total"),
        }
    }

    /// What the server's proxy authorized inbound, by whether the client came over mTLS.
    pub fn inbound_tls(&self) -> InboundTls {
        let metrics = self.sidecars[1].metrics();
        let count = |tls: &str| {
            [
                "inbound_http_authz_allow_total",
                "inbound_tcp_authz_allow_total",
            ]
            .iter()
            .map(|name| metric_sum(&metrics, name, &[tls]))
            .sum()
        };
        InboundTls {
            mtls: count("tls=\"true\""),
            plaintext: count("tls=\"false\""),
        }
    }

    /// `error` with the end of the proxies' and the controller's logs, which may say why.
    pub fn with_logs(&self, error: Error) -> Error {
        let Error::Failed { what, mut log } = error else {
            return error;
        };
        for process in self.sidecars.iter().map(|s| &s.process) {
            log.push_str(&format!(
                "--- {} (last {LOG_TAIL} lines) ---\n",
                process.name()
            ));
            log.push_str(&tail(&process.log(), LOG_TAIL));
        }
        if let Some(controller) = &self.controller {
            log.push_str(&format!(
                "--- weft-controller (last {LOG_TAIL} lines) ---\n"
            ));
            log.push_str(&tail(&controller.log(), LOG_TAIL));
        }
        Error::Failed { what, log }
    }
}

/// With a controller (`controller` and `mtls` modes): its manifests, the local CA in `mtls`
/// mode, and the controller itself.
fn start_controller(
    net: &Network,
    mode: MeshMode,
    client: &Pod,
    server: &Pod,
    annotations: &[(String, String)],
) -> Result<(Option<Controller>, Option<LocalIdentity>), Error> {
    if mode == MeshMode::Plain {
        return Ok((None, None));
    }
    let dir = net.log_dir().join("manifests");
    write_manifests(&dir, client, server, annotations)?;
    let identity = match mode {
        MeshMode::Mtls => Some(
            LocalIdentity::create(&net.log_dir().join("identity"))
                .map_err(Error::setup("create the local CA"))?,
        ),
        MeshMode::Plain | MeshMode::Controller => None,
    };
    let args = identity
        .as_ref()
        .map(|id| IdentityArgs::new(id, LEAF_LIFETIME));
    let controller =
        Controller::start(net, &dir, args).map_err(Error::setup("start weft-controller"))?;
    Ok((Some(controller), identity))
}

/// The environment of the proxy in `pod`, running as ServiceAccount `sa`: the benchmark's
/// settings, the controller's and identity's if there are any, then the user's `extra`.
fn proxy_env_of(
    pod: &Pod,
    sa: &str,
    controller: Option<&Controller>,
    identity: Option<&LocalIdentity>,
    extra: &[(String, String)],
) -> Result<Vec<(String, String)>, Error> {
    let mut env = vec![
        ("WEFT_PROXY_LOG".to_string(), "warn".to_string()),
        (
            "WEFT_PROXY_OPAQUE_PORTS".to_string(),
            OPAQUE_PORT.to_string(),
        ),
    ];
    if let Some(controller) = controller {
        env.push((
            "WEFT_PROXY_CONTROLLER_ADDR".into(),
            controller.addr().to_string(),
        ));
        env.push((
            "WEFT_PROXY_WORKLOAD".into(),
            format!("{NAMESPACE}/{}", pod.name),
        ));
        if let Some(id) = identity {
            let id_env = shop::identity_env(id, controller, NAMESPACE, sa, &pod.name)
                .map_err(Error::setup(format!("issue a token to pod {}", pod.name)))?;
            env.extend(id_env);
        }
    }
    env.extend(extra.iter().cloned());
    Ok(env)
}

/// Starts `weft-bench-server` in `pod` on `port` and waits until it listens.
fn start_server(pod: &Pod, port: u16) -> Result<(), Error> {
    let bin = bin_path("weft-bench-server").map_err(Error::setup("find weft-bench-server"))?;
    let mut cmd = pod.command(&bin.to_string_lossy());
    cmd.args(["--addr", &format!("0.0.0.0:{port}"), "--threads", "1"]);
    let what = format!("start weft-bench-server on port {port} in pod {}", pod.name);
    pod.start(&format!("server-{port}"), cmd)
        .map_err(Error::setup(what.clone()))?;
    let started = Instant::now();
    pod.wait_listening(&[port], LISTEN_TIMEOUT)
        .map_err(|e| Error::Timeout {
            what: format!("{what}: {e}"),
            after: started.elapsed(),
            log: String::new(),
        })
}

/// The controller's view of the meshed pair: both pods meshed, and a Service per server port
/// whose only endpoint is the server pod; the HTTP one carries `annotations`.
fn write_manifests(
    dir: &Path,
    client: &Pod,
    server: &Pod,
    annotations: &[(String, String)],
) -> Result<(), Error> {
    fn spec<'a>(p: &'a Pod, app: &'a str) -> manifests::PodSpec<'a> {
        manifests::PodSpec {
            namespace: NAMESPACE,
            name: &p.name,
            ip: p.ip.into(),
            service_account: app,
            app,
            version: "v1",
        }
    }
    let endpoint = [(server.name.as_str(), IpAddr::V4(server.ip))];
    let docs = [
        manifests::namespace(NAMESPACE),
        manifests::pod(&spec(client, "client")),
        manifests::pod(&spec(server, "server")),
        manifests::service_with_annotations(
            NAMESPACE,
            "server",
            SERVER_IP.into(),
            HTTP_PORT,
            &endpoint,
            &annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        ),
        manifests::service(
            NAMESPACE,
            "server-opaque",
            SERVER_OPAQUE_IP.into(),
            OPAQUE_PORT,
            &endpoint,
        ),
    ];
    std::fs::create_dir_all(dir)
        .and_then(|()| manifests::write(dir, "bench.yaml", &docs.join("---\n")))
        .map_err(Error::setup(format!(
            "write the manifests to {}",
            dir.display()
        )))
}

fn url(ip: Ipv4Addr, port: u16) -> String {
    format!("http://{ip}:{port}/")
}

/// The last `lines` lines of `text`, each ending in a newline.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}
