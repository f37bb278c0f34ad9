//! `OutboundPolicies.Watch` for one original destination.

use super::Backoff;
use crate::{metrics::Metrics, policy::OutboundPolicy};
use std::{net::SocketAddr, sync::Arc};
use tokio::sync::watch;
use tonic::{Code, transport::Channel};
use weft_proto::outbound::{
    TrafficSpec, outbound_policies_client::OutboundPoliciesClient, traffic_spec,
};

/// Keeps `tx` current with the policy for `target` until the receivers are gone.
///
/// A controller that says it does not know the target (`NotFound`, `InvalidArgument`) gets
/// the forward policy: connections go to the original destination, as without a mesh. When
/// the controller cannot be reached before the first answer, the forward policy is used too,
/// so an outage never blackholes traffic; once any answer has arrived, the last good policy
/// is kept until the controller is back.
pub async fn watch(
    channel: Channel,
    workload: String,
    target: SocketAddr,
    tx: Arc<watch::Sender<Option<Arc<OutboundPolicy>>>>,
    metrics: Arc<Metrics>,
) {
    let mut client = OutboundPoliciesClient::new(channel);
    let mut backoff = Backoff::default();
    let spec = TrafficSpec {
        source_workload: workload,
        target: Some(traffic_spec::Target::Addr(target.into())),
    };
    let forward = || Some(Arc::new(OutboundPolicy::forward(target)));
    loop {
        match client.watch(spec.clone()).await {
            Ok(rsp) => {
                let mut stream = rsp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(msg)) => {
                            backoff.reset();
                            metrics.control_update("outbound_policy");
                            match OutboundPolicy::try_from(msg) {
                                Ok(policy) => {
                                    tx.send_replace(Some(Arc::new(policy)));
                                }
                                Err(e) => {
                                    tracing::warn!(%target, error = %e, "invalid policy from the controller; keeping the last good one");
                                    if tx.borrow().is_none() {
                                        tx.send_replace(forward());
                                    }
                                }
                            }
                        }
                        Ok(None) => break,
                        // The controller stopped knowing the target mid-stream: as at the start.
                        Err(status)
                            if matches!(status.code(), Code::NotFound | Code::InvalidArgument) =>
                        {
                            tracing::debug!(%target, message = status.message(), "target no longer known to the controller; forwarding to the original destination");
                            tx.send_replace(forward());
                            break;
                        }
                        Err(status) => {
                            tracing::info!(%target, code = ?status.code(), message = status.message(), "policy stream failed; keeping the last policy");
                            break;
                        }
                    }
                }
            }
            Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
                tracing::debug!(%target, message = status.message(), "target unknown to the controller; forwarding to the original destination");
                tx.send_replace(forward());
            }
            Err(status) => {
                tracing::info!(%target, code = ?status.code(), message = status.message(), "cannot reach the controller");
                if tx.borrow().is_none() {
                    tx.send_replace(forward());
                }
            }
        }
        // The task lives until the discovery cache drops (aborts) it.
        backoff.wait().await;
    }
}
