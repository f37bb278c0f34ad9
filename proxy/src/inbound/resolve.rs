//! Which policy a port follows: the controller's latest, or the configured default until (and
//! unless) the controller answers.

use super::{AuthorizeHttp, ConnMeta, DefaultPolicy, Denied, InboundPolicy, Permit, check_tcp};
use crate::{config::Config, discover::Discovery, metrics::Metrics};
use ipnet::IpNet;
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};
use tokio::sync::watch;

/// The inbound policy source of one proxy: the controller's port watches, and the default.
#[derive(Debug)]
pub struct InboundPolicies {
    discovery: Option<Arc<Discovery>>,
    default: Arc<InboundPolicy>,
    metrics: Arc<Metrics>,
    /// Ports whose first answer did not come within the discovery timeout. Their connections
    /// use the default at once until the controller answers, instead of each waiting again.
    late: Mutex<HashSet<u16>>,
}

/// The policy one connection follows. Cheap to clone; [`PortPolicy::current`] is a watch
/// borrow and an `Arc` clone, so requests read the latest policy without waiting.
#[derive(Clone, Debug)]
pub struct PortPolicy {
    rx: Option<watch::Receiver<Option<Arc<InboundPolicy>>>>,
    default: Arc<InboundPolicy>,
    metrics: Arc<Metrics>,
}

// === impl InboundPolicies ===

impl InboundPolicies {
    /// Policies from `discovery`, with `default` for ports the controller has not answered
    /// about in time; without a controller every port gets `default`.
    pub fn new(
        discovery: Option<Arc<Discovery>>,
        default: InboundPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            discovery,
            default: Arc::new(default),
            metrics,
            late: Mutex::default(),
        }
    }

    /// Policies with the default from `WEFT_PROXY_INBOUND_DEFAULT_POLICY` and
    /// `WEFT_PROXY_CLUSTER_NETWORKS`.
    pub fn from_config(
        config: &Config,
        discovery: Option<Arc<Discovery>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self::with_default(
            discovery,
            config.inbound_default_policy,
            &config.cluster_networks,
            metrics,
        )
    }

    /// Policies with the default `policy` (`cluster_networks` for `cluster-authenticated`).
    pub fn with_default(
        discovery: Option<Arc<Discovery>>,
        policy: DefaultPolicy,
        cluster_networks: &[IpNet],
        metrics: Arc<Metrics>,
    ) -> Self {
        Self::new(discovery, policy.policy(cluster_networks), metrics)
    }

    /// The policy of `port`, waiting up to the discovery timeout for the controller's first
    /// answer. Without one in time the default applies, until the controller answers.
    pub async fn resolve(&self, port: u16) -> PortPolicy {
        let Some(discovery) = &self.discovery else {
            return PortPolicy::fixed(self.default.clone(), self.metrics.clone());
        };
        let mut rx = discovery.inbound(port);
        if rx.borrow().is_some() {
            // The controller answers for this port (again): a later watch for it, after this
            // one is swept, must wait for the answer rather than start on the default.
            self.late().remove(&port);
        } else if !self.late().contains(&port) {
            let wait = tokio::time::timeout(discovery.timeout, rx.wait_for(Option::is_some));
            if wait.await.is_err() {
                tracing::info!(port, after = ?discovery.timeout, default = %self.default.name, "no inbound policy from the controller in time; using the default until it answers");
                self.late().insert(port);
            }
        }
        PortPolicy::new(Some(rx), self.default.clone(), self.metrics.clone())
    }

    fn late(&self) -> std::sync::MutexGuard<'_, HashSet<u16>> {
        // Poisoned only if a task panicked mid-insert; the set is still a valid hint.
        self.late.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// === impl PortPolicy ===

impl PortPolicy {
    /// Follows `rx` (`None` in it: the controller has not answered), with `default` until
    /// it has a policy.
    pub fn new(
        rx: Option<watch::Receiver<Option<Arc<InboundPolicy>>>>,
        default: Arc<InboundPolicy>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            rx,
            default,
            metrics,
        }
    }

    /// Always `policy`.
    pub fn fixed(policy: Arc<InboundPolicy>, metrics: Arc<Metrics>) -> Self {
        Self::new(None, policy, metrics)
    }

    /// The policy now.
    pub fn current(&self) -> Arc<InboundPolicy> {
        self.rx
            .as_ref()
            .and_then(|rx| rx.borrow().clone())
            .unwrap_or_else(|| self.default.clone())
    }

    /// Authorizes a whole connection by the current policy's server authorizations, and
    /// counts the decision (`inbound_tcp_authz_{allow,deny}_total`). For opaque and TLS
    /// servers, and connections to a detecting server that are not HTTP.
    pub fn check_tcp(&self, conn: &ConnMeta) -> Result<Permit, Denied> {
        let policy = self.current();
        let checked = check_tcp(&policy, conn);
        self.metrics
            .inbound_authz()
            .tcp(&policy.name, conn.tls.is_mesh(), checked.is_ok());
        checked
    }

    /// Wraps the service that forwards `conn`'s requests to the app so that each request is
    /// routed and authorized first.
    pub fn authorize_http<S>(&self, conn: ConnMeta, inner: S) -> AuthorizeHttp<S> {
        AuthorizeHttp::new(self.clone(), conn, inner)
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
