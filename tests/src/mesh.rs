//! Two meshed pods, `client` and `server`, each behind real `weft-init` rules and a real
//! `weft-proxy` running as UID 2102.

use weft_cli_local::{Network, Pod, Sidecar, metric_sum};

/// A network with two meshed pods. Dropping it removes everything.
pub struct Mesh {
    /// The client pod's sidecar.
    pub client: Sidecar,
    /// The server pod's sidecar.
    pub server: Sidecar,
    /// Declared last so the pods' handles go before the network cleans up.
    pub net: Network,
}

/// Ports the tests' apps use.
pub mod ports {
    /// HTTP/1.1 + HTTP/2 echo server.
    pub const HTTP: u16 = 8080;
    /// gRPC server.
    pub const GRPC: u16 = 8090;
    /// WebSocket echo server.
    pub const WS: u16 = 8081;
    /// Opaque TCP echo-after-EOF server.
    pub const TCP: u16 = 9000;
    /// A server-speaks-first protocol on a default opaque port (MySQL's).
    pub const BANNER: u16 = 3306;
    /// Skipped by both pods' redirect rules.
    pub const SKIPPED: u16 = 9100;
    /// Every app port.
    pub const ALL: [u16; 6] = [HTTP, GRPC, WS, TCP, BANNER, SKIPPED];
}

impl Mesh {
    /// Builds the pods and their sidecars; `env` is added to both proxies' environment.
    pub fn new(env: &[(&str, &str)]) -> Self {
        let net = Network::new().expect("network");
        let client = net.pod("client").expect("client pod");
        let server = net.pod("server").expect("server pod");
        let skip = ports::SKIPPED.to_string();
        let init = [
            "--skip-outbound-ports",
            skip.as_str(),
            "--skip-inbound-ports",
            skip.as_str(),
        ];
        let client = Sidecar::inject(&client, &init, env).unwrap_or_else(|e| panic!("{e}"));
        let server = Sidecar::inject(&server, &init, env).unwrap_or_else(|e| panic!("{e}"));
        Mesh {
            client,
            server,
            net,
        }
    }

    /// Starts every sample app in the server pod and waits until they listen.
    pub fn start_apps(&self) -> weft_cli_local::Background {
        let apps = self.server_pod().spawn(crate::apps::serve_all);
        self.server_pod()
            .wait_listening(&ports::ALL, std::time::Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("sample apps: {e}"));
        apps
    }

    /// The client pod.
    pub fn client_pod(&self) -> &Pod {
        &self.client.pod
    }

    /// The server pod.
    pub fn server_pod(&self) -> &Pod {
        &self.server.pod
    }

    /// `metric` on the client proxy's outbound side toward `server:port`.
    pub fn outbound(&self, metric: &str, port: u16, extra: &[&str]) -> f64 {
        let target = format!("target_addr=\"{}:{port}\"", self.server.pod.ip);
        let mut labels = vec!["direction=\"outbound\"", target.as_str()];
        labels.extend_from_slice(extra);
        metric_sum(&self.client.metrics(), metric, &labels)
    }

    /// `metric` on the server proxy's inbound side toward the app's `port`.
    pub fn inbound(&self, metric: &str, port: u16, extra: &[&str]) -> f64 {
        let target = format!("target_addr=\"127.0.0.1:{port}\"");
        let mut labels = vec!["direction=\"inbound\"", target.as_str()];
        labels.extend_from_slice(extra);
        metric_sum(&self.server.metrics(), metric, &labels)
    }
}
