//! `DestinationProfile`s: the retry budget of a service port, which the outbound policy API
//! has no field for.

use crate::{duration, outbound::Event};
use weft_proto::destination::{DestinationProfile, RetryBudget};

/// The profile for what a target resolves to. An address no service has gets an empty
/// profile: no budget (the proxy keeps its default), not opaque.
pub(super) fn profile(event: Event) -> DestinationProfile {
    match event {
        Event::Policy(policy) => {
            let budget = policy.retry_budget;
            let name = policy
                .authority
                .rsplit_once(':')
                .map_or(policy.authority.as_str(), |(host, _)| host);
            DestinationProfile {
                fully_qualified_name: name.to_string(),
                opaque_protocol: policy.opaque,
                retry_budget: Some(RetryBudget {
                    retry_ratio: budget.ratio.as_f32(),
                    min_retries_per_second: budget.min_per_second,
                    ttl: duration(budget.ttl),
                }),
                ..DestinationProfile::default()
            }
        }
        Event::Fallback(..) => DestinationProfile::default(),
    }
}
