//! `InboundServerPolicies.WatchPort` for one port of this pod.

use super::Backoff;
use crate::{inbound::InboundPolicy, metrics::Metrics};
use std::sync::Arc;
use tokio::sync::watch;
use tonic::transport::Channel;
use weft_proto::inbound::{PortSpec, inbound_server_policies_client::InboundServerPoliciesClient};

/// Keeps `tx` current with the policy of `port` until the discovery cache drops the task.
///
/// `tx` holds `None` until the first valid policy arrives; after that, the last good policy is
/// kept through invalid messages, failed streams and controller outages (connections then
/// keep the rules they had rather than falling open or closed). A controller that refuses the
/// port (`NotFound`, `InvalidArgument`) is retried with backoff like any other failure.
pub async fn watch(
    channel: Channel,
    workload: String,
    port: u16,
    tx: Arc<watch::Sender<Option<Arc<InboundPolicy>>>>,
    metrics: Arc<Metrics>,
) {
    let mut client = InboundServerPoliciesClient::new(channel);
    let mut backoff = Backoff::default();
    let spec = PortSpec {
        workload,
        port: u32::from(port),
    };
    loop {
        match client.watch_port(spec.clone()).await {
            Ok(rsp) => {
                let mut stream = rsp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(server)) => {
                            backoff.reset();
                            metrics.control_update("inbound");
                            match InboundPolicy::try_from(server) {
                                Ok(policy) => {
                                    tracing::debug!(port, server = %policy.name, "inbound policy updated");
                                    tx.send_replace(Some(Arc::new(policy)));
                                }
                                Err(e) => {
                                    tracing::warn!(port, error = %e, "invalid inbound policy from the controller; keeping the last good one");
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::info!(port, code = ?status.code(), message = status.message(), "inbound policy stream failed; keeping the last policy");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::info!(port, code = ?status.code(), message = status.message(), "cannot get the inbound policy from the controller");
            }
        }
        backoff.wait().await;
    }
}
