//! `Destination.GetProfile` for one original destination, for its retry budget.
//!
//! The outbound policy API has no field for a service's retry budget; the Destination API's
//! profile does (`DestinationProfile.retry_budget`), so the proxy reads only that from it.
//! Until (or without) an answer the budget keeps its defaults.

use super::Backoff;
use crate::{
    metrics::Metrics,
    retry::{Budget, BudgetParams},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tonic::{Code, transport::Channel};
use weft_proto::destination::{self as api, destination_client::DestinationClient};

/// Keeps `budget`'s parameters current with the profile of `target`.
pub async fn watch(
    channel: Channel,
    workload: String,
    target: SocketAddr,
    budget: Arc<Budget>,
    metrics: Arc<Metrics>,
) {
    let mut client = DestinationClient::new(channel);
    let mut backoff = Backoff::default();
    loop {
        let req = api::GetDestination {
            scheme: "k8s".to_string(),
            path: target.to_string(),
            context_token: workload.clone(),
        };
        match client.get_profile(req).await {
            Ok(rsp) => {
                let mut stream = rsp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(profile)) => {
                            backoff.reset();
                            metrics.control_update("profile");
                            budget.set_params(params(profile.retry_budget.as_ref(), target));
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(%target, code = ?status.code(), message = status.message(), "profile stream failed; keeping the retry budget");
                            break;
                        }
                    }
                }
            }
            // A controller that serves no profiles: the default budget stays, for good.
            Err(status) if status.code() == Code::Unimplemented => return,
            Err(status) => {
                tracing::debug!(%target, code = ?status.code(), message = status.message(), "no profile; keeping the retry budget");
            }
        }
        backoff.wait().await;
    }
}

/// The budget a profile gives, or the default for one it does not (or a bad one).
pub fn params(budget: Option<&api::RetryBudget>, target: SocketAddr) -> BudgetParams {
    let Some(b) = budget else {
        return BudgetParams::default();
    };
    let ttl = b
        .ttl
        .and_then(|t| Duration::try_from(t).ok())
        .filter(|t| !t.is_zero());
    let ratio = f64::from(b.retry_ratio);
    if !(ratio.is_finite() && ratio >= 0.0) {
        tracing::warn!(%target, ratio = b.retry_ratio, "invalid retry_ratio in the profile (expected >= 0); using the default budget");
        return BudgetParams::default();
    }
    BudgetParams {
        ratio,
        min_per_sec: b.min_retries_per_second,
        ttl: ttl.unwrap_or(BudgetParams::default().ttl),
    }
}
