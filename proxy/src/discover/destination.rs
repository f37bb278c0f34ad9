//! `Destination.Get` for one backend: a stream of add/remove/no_endpoints updates folded into
//! the current endpoint set.

use super::{Backoff, Endpoints};
use crate::{balance::Endpoint, metrics::Metrics};
use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};
use tokio::sync::watch;
use tonic::transport::Channel;
use weft_proto::destination::{
    self as api, destination_client::DestinationClient, tls_identity, update,
};

/// Load-estimate settings for new endpoints, from the backend's `PeakEwma`.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// RTT assumed before the first response.
    pub rtt: Duration,
    /// How fast old RTTs are forgotten.
    pub decay: Duration,
}

/// The endpoint set being built from one or more `Get` streams.
#[derive(Debug)]
pub struct Resolution {
    load: Load,
    current: BTreeMap<SocketAddr, Arc<Endpoint>>,
    not_found: bool,
    resolved: bool,
    /// Set when a new stream starts: its first message replaces everything (the contract lets
    /// a client use stale results only until then).
    fresh_stream: bool,
}

impl Resolution {
    /// Nothing known yet.
    pub fn new(load: Load) -> Self {
        Self {
            load,
            current: BTreeMap::new(),
            not_found: false,
            resolved: false,
            fresh_stream: true,
        }
    }

    /// A new stream is starting.
    pub fn restart(&mut self) {
        self.fresh_stream = true;
    }

    /// Folds one update in. Endpoints whose address and metadata did not change keep their
    /// load estimate.
    pub fn apply(&mut self, update: api::Update) {
        let previous = if std::mem::take(&mut self.fresh_stream) {
            std::mem::take(&mut self.current)
        } else {
            BTreeMap::new()
        };
        self.resolved = true;
        match update.update {
            Some(update::Update::Add(set)) => {
                self.not_found = false;
                for wa in set.addrs {
                    let Some(ep) = self.endpoint(wa, &set.metric_labels) else {
                        continue;
                    };
                    let keep = previous
                        .get(&ep.addr)
                        .or_else(|| self.current.get(&ep.addr))
                        .filter(|old| old.same_as(&ep))
                        .cloned();
                    self.current
                        .insert(ep.addr, keep.unwrap_or_else(|| Arc::new(ep)));
                }
            }
            Some(update::Update::Remove(set)) => {
                for addr in set.addrs {
                    if let Ok(addr) = SocketAddr::try_from(addr) {
                        self.current.remove(&addr);
                    }
                }
            }
            Some(update::Update::NoEndpoints(ne)) => {
                self.current.clear();
                self.not_found = !ne.exists;
            }
            None => {}
        }
    }

    fn endpoint(
        &self,
        wa: api::WeightedAddr,
        set_labels: &std::collections::HashMap<String, String>,
    ) -> Option<Endpoint> {
        let addr = SocketAddr::try_from(wa.addr?).ok()?;
        let identity = wa.tls_identity.and_then(tls_server_name);
        let mut labels: BTreeMap<String, String> = set_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.extend(wa.metric_labels);
        Some(Endpoint::new(
            addr,
            identity,
            wa.weight,
            labels,
            self.load.rtt,
            self.load.decay,
        ))
    }

    /// The endpoints now.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            resolved: self.resolved,
            not_found: self.not_found,
            endpoints: self.current.values().cloned().collect(),
        }
    }
}

/// Keeps `tx` current with the endpoints of `path` until the receivers are gone.
pub async fn watch(
    channel: Channel,
    path: String,
    load: Load,
    tx: Arc<watch::Sender<Endpoints>>,
    metrics: Arc<Metrics>,
) {
    let mut client = DestinationClient::new(channel);
    let mut resolution = Resolution::new(load);
    let mut backoff = Backoff::default();
    loop {
        resolution.restart();
        let req = api::GetDestination {
            scheme: "k8s".to_string(),
            path: path.clone(),
            context_token: String::new(),
        };
        match client.get(req).await {
            Ok(rsp) => {
                let mut stream = rsp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(update)) => {
                            backoff.reset();
                            resolution.apply(update);
                            metrics.control_update("destination");
                            tx.send_replace(resolution.endpoints());
                        }
                        Ok(None) => {
                            tracing::debug!(%path, "destination stream ended; reconnecting");
                            break;
                        }
                        Err(status) => {
                            tracing::info!(%path, code = ?status.code(), message = status.message(), "destination stream failed; keeping the last endpoints");
                            break;
                        }
                    }
                }
            }
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                tracing::info!(%path, message = status.message(), "controller cannot resolve this backend");
                resolution.apply(api::Update {
                    update: Some(update::Update::NoEndpoints(api::NoEndpoints {
                        exists: false,
                    })),
                });
                tx.send_replace(resolution.endpoints());
            }
            Err(status) => {
                tracing::info!(%path, code = ?status.code(), message = status.message(), "cannot reach the controller; keeping the last endpoints");
            }
        }
        // The task lives until the discovery cache drops (aborts) it.
        backoff.wait().await;
    }
}

/// The name a meshed endpoint's certificate must carry, sent as SNI: the identity's
/// `server_name` when the controller gives one, else its DNS-like identity. A URI-like
/// identity without a server name cannot be named in a ClientHello, so the endpoint is
/// treated as unmeshed.
pub(crate) fn tls_server_name(id: api::TlsIdentity) -> Option<String> {
    if let Some(name) = id.server_name.filter(|n| !n.name.is_empty()) {
        return Some(name.name);
    }
    match id.strategy? {
        tls_identity::Strategy::DnsLikeIdentity(d) => Some(d.name),
        tls_identity::Strategy::UriLikeIdentity(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_proto::net::TcpAddress;

    fn add(addrs: &[&str], identity: Option<&str>) -> api::Update {
        api::Update {
            update: Some(update::Update::Add(api::WeightedAddrSet {
                addrs: addrs
                    .iter()
                    .map(|a| api::WeightedAddr {
                        addr: Some(TcpAddress::from(a.parse::<SocketAddr>().unwrap())),
                        weight: 10_000,
                        tls_identity: identity.map(|name| api::TlsIdentity {
                            strategy: Some(tls_identity::Strategy::DnsLikeIdentity(
                                tls_identity::DnsLikeIdentity {
                                    name: name.to_string(),
                                },
                            )),
                            server_name: None,
                        }),
                        ..Default::default()
                    })
                    .collect(),
                metric_labels: [("service".to_string(), "web".to_string())].into(),
            })),
        }
    }

    fn remove(addrs: &[&str]) -> api::Update {
        api::Update {
            update: Some(update::Update::Remove(api::AddrSet {
                addrs: addrs
                    .iter()
                    .map(|a| TcpAddress::from(a.parse::<SocketAddr>().unwrap()))
                    .collect(),
            })),
        }
    }

    fn addrs(r: &Resolution) -> Vec<String> {
        r.endpoints()
            .endpoints
            .iter()
            .map(|e| e.addr.to_string())
            .collect()
    }

    fn load() -> Load {
        Load {
            rtt: Duration::from_millis(30),
            decay: Duration::from_secs(10),
        }
    }

    #[test]
    fn folds_adds_removes_and_no_endpoints() {
        let mut r = Resolution::new(load());
        assert!(!r.endpoints().resolved);
        r.apply(add(
            &["10.0.0.1:80", "10.0.0.2:80"],
            Some("web.shop.serviceaccount.identity.cluster.local"),
        ));
        assert_eq!(addrs(&r), ["10.0.0.1:80", "10.0.0.2:80"]);
        let eps = r.endpoints();
        assert!(eps.resolved);
        assert_eq!(
            eps.endpoints[0].identity.as_deref(),
            Some("web.shop.serviceaccount.identity.cluster.local")
        );
        assert_eq!(
            eps.endpoints[0].labels.get("service").map(String::as_str),
            Some("web")
        );
        r.apply(add(&["10.0.0.3:80"], None));
        assert_eq!(addrs(&r), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
        r.apply(remove(&["10.0.0.1:80"]));
        assert_eq!(addrs(&r), ["10.0.0.2:80", "10.0.0.3:80"]);
        r.apply(api::Update {
            update: Some(update::Update::NoEndpoints(api::NoEndpoints {
                exists: false,
            })),
        });
        assert!(addrs(&r).is_empty());
        assert!(r.endpoints().not_found);
        r.apply(add(&["10.0.0.4:80"], None));
        assert!(!r.endpoints().not_found);
    }

    #[test]
    fn unchanged_endpoints_keep_their_state_and_changed_ones_are_replaced() {
        let mut r = Resolution::new(load());
        r.apply(add(&["10.0.0.1:80"], None));
        let before = r.endpoints().endpoints[0].clone();
        r.apply(add(&["10.0.0.1:80"], None));
        assert!(Arc::ptr_eq(&before, &r.endpoints().endpoints[0]));
        r.apply(add(&["10.0.0.1:80"], Some("id")));
        assert!(!Arc::ptr_eq(&before, &r.endpoints().endpoints[0]));
    }

    #[test]
    fn a_new_stream_keeps_stale_endpoints_until_its_first_message_replaces_them() {
        let mut r = Resolution::new(load());
        r.apply(add(&["10.0.0.1:80", "10.0.0.2:80"], None));
        let kept = r.endpoints().endpoints[1].clone();
        r.restart();
        assert_eq!(
            addrs(&r),
            ["10.0.0.1:80", "10.0.0.2:80"],
            "stale results are usable until the first message"
        );
        r.apply(add(&["10.0.0.2:80", "10.0.0.3:80"], None));
        assert_eq!(
            addrs(&r),
            ["10.0.0.2:80", "10.0.0.3:80"],
            "the first message replaces the old set"
        );
        assert!(Arc::ptr_eq(&kept, &r.endpoints().endpoints[0]));
    }

    #[test]
    fn the_sni_is_the_server_name_else_the_dns_like_identity() {
        let dns = |name: &str| tls_identity::DnsLikeIdentity {
            name: name.to_string(),
        };
        let uri = Some(tls_identity::Strategy::UriLikeIdentity(
            tls_identity::UriLikeIdentity {
                uri: "spiffe://cluster.local/ns/shop/sa/web".into(),
            },
        ));
        let with = |strategy, server_name| api::TlsIdentity {
            strategy,
            server_name,
        };
        let web = "web.shop.serviceaccount.identity.cluster.local";
        assert_eq!(
            tls_server_name(with(uri.clone(), Some(dns(web)))).as_deref(),
            Some(web)
        );
        assert_eq!(tls_server_name(with(uri, None)), None);
        assert_eq!(
            tls_server_name(with(
                Some(tls_identity::Strategy::DnsLikeIdentity(dns(web))),
                None
            ))
            .as_deref(),
            Some(web)
        );
    }
}
