//! Retries, failure accrual and retry budgets on the wire: `OutboundPolicies` rule retries and
//! protocol failure accrual, and `Destination.GetProfile`'s retry budget.

use crate::{
    Fake, next,
    outbound::fixtures::{CLUSTER_IP, GRPC_AUTHORITY, grpc_policy, http_policy},
    start,
};
use std::time::Duration;
use weft_controller_core::{
    OutboundTarget,
    resilience::{FailureAccrual, Ratio, RetryBudget},
};
use weft_proto::{
    destination::{
        GetDestination, RetryBudget as ProtoBudget, destination_client::DestinationClient,
    },
    outbound::{
        ExponentialBackoff, TrafficSpec, failure_accrual, http_route,
        outbound_policies_client::OutboundPoliciesClient, proxy_protocol, traffic_spec::Target,
    },
};

fn spec(target: Target) -> TrafficSpec {
    TrafficSpec {
        source_workload: "shop/client".to_string(),
        target: Some(target),
    }
}

fn proto_duration(ms: u64) -> Option<prost_types::Duration> {
    Some(Duration::from_millis(ms).try_into().unwrap())
}

#[tokio::test]
async fn http_rules_carry_their_retries_and_the_protocols_failure_accrual() {
    let fake = Fake::default();
    let mut policy = http_policy(90, 10);
    policy.failure_accrual = Some(FailureAccrual::default());
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), policy);
    let server = start(&fake).await;
    let mut client = OutboundPoliciesClient::new(server.channel().await);
    let policy = client
        .get(spec(Target::Addr(CLUSTER_IP.into())))
        .await
        .unwrap()
        .into_inner();
    let Some(proxy_protocol::Kind::Detect(detect)) = policy.protocol.and_then(|p| p.kind) else {
        panic!("expected detect");
    };
    let http1 = detect.http1.unwrap();
    let rules = &http1.routes[0].rules;
    let retry = rules[0].retry.clone().expect("the split rule retries");
    assert_eq!(
        retry,
        http_route::Retry {
            max_retries: 3,
            max_request_bytes: 4096,
            conditions: Some(http_route::retry::Conditions {
                status_ranges: vec![
                    http_route::retry::conditions::StatusRange {
                        start: 502,
                        end: 504
                    },
                    http_route::retry::conditions::StatusRange {
                        start: 429,
                        end: 429
                    },
                ],
            }),
            timeout: proto_duration(300),
            backoff: Some(ExponentialBackoff {
                min_backoff: proto_duration(20),
                max_backoff: proto_duration(200),
                jitter_ratio: 0.5,
                respect_retry_after_hint: false,
            }),
        }
    );
    assert_eq!(rules[1].retry, None, "the redirect rule does not retry");

    let accrual = http1.failure_accrual.expect("failure accrual is on");
    let Some(failure_accrual::Kind::ConsecutiveFailures(c)) = accrual.kind else {
        panic!("consecutive failures expected: {accrual:?}");
    };
    assert_eq!(c.max_failures, 7);
    let backoff = c.backoff.unwrap();
    assert_eq!(backoff.min_backoff, proto_duration(1000));
    assert_eq!(backoff.max_backoff, proto_duration(60_000));
    assert_eq!(detect.http2.unwrap().failure_accrual, Some(accrual));
}

#[tokio::test]
async fn grpc_rules_carry_their_codes() {
    let fake = Fake::default();
    fake.set_policy(
        OutboundTarget::Authority(GRPC_AUTHORITY.into()),
        grpc_policy(),
    );
    let server = start(&fake).await;
    let mut client = OutboundPoliciesClient::new(server.channel().await);
    let policy = client
        .get(spec(Target::Authority(GRPC_AUTHORITY.into())))
        .await
        .unwrap()
        .into_inner();
    let Some(proxy_protocol::Kind::Grpc(grpc)) = policy.protocol.and_then(|p| p.kind) else {
        panic!("expected grpc");
    };
    let retry = grpc.routes[0].rules[0].retry.expect("retries");
    assert_eq!(retry.max_retries, 2);
    assert_eq!(retry.max_request_bytes, 65536);
    let c = retry.conditions.unwrap();
    assert!(c.unavailable && c.internal);
    assert!(!c.cancelled && !c.deadine_exceeded && !c.resource_exhausted);
    assert!(grpc.failure_accrual.is_some());
}

fn get(path: &str) -> GetDestination {
    GetDestination {
        scheme: "k8s".into(),
        path: path.into(),
        context_token: "shop/client".into(),
    }
}

#[tokio::test]
async fn a_profile_carries_the_retry_budget_and_follows_it() {
    let fake = Fake::default();
    let mut policy = http_policy(90, 10);
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), policy.clone());
    let server = start(&fake).await;
    let mut client = DestinationClient::new(server.channel().await);
    let mut profiles = client
        .get_profile(get(&CLUSTER_IP.to_string()))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut profiles).await;
    assert_eq!(first.fully_qualified_name, "web.shop.svc.cluster.local");
    assert!(!first.opaque_protocol);
    assert_eq!(
        first.retry_budget,
        Some(ProtoBudget {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            ttl: proto_duration(10_000),
        })
    );

    // A route change leaves the profile as it was: nothing is sent. A budget change is.
    policy.http_routes.clear();
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), policy.clone());
    let quiet = tokio::time::timeout(Duration::from_millis(200), profiles.message()).await;
    assert!(quiet.is_err(), "a route change sent a profile: {quiet:?}");
    policy.retry_budget = RetryBudget {
        ratio: Ratio::from_millionths(500_000),
        min_per_second: 1,
        ttl: Duration::from_secs(30),
    };
    fake.set_policy(OutboundTarget::Addr(CLUSTER_IP), policy);
    let second = next(&mut profiles).await;
    assert_eq!(
        second.retry_budget,
        Some(ProtoBudget {
            retry_ratio: 0.5,
            min_retries_per_second: 1,
            ttl: proto_duration(30_000),
        })
    );
}

#[tokio::test]
async fn profiles_of_unknown_addresses_are_empty_and_bad_paths_refused() {
    let fake = Fake::default();
    fake.set_policy(
        OutboundTarget::Authority(GRPC_AUTHORITY.into()),
        grpc_policy(),
    );
    let server = start(&fake).await;
    let mut client = DestinationClient::new(server.channel().await);
    let mut unknown = client
        .get_profile(get("10.9.9.9:80"))
        .await
        .unwrap()
        .into_inner();
    let profile = next(&mut unknown).await;
    assert_eq!(profile.retry_budget, None, "the proxy keeps its default");
    assert!(profile.fully_qualified_name.is_empty());

    let mut by_name = client
        .get_profile(get(GRPC_AUTHORITY))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next(&mut by_name).await.fully_qualified_name,
        "cart.shop.svc.cluster.local"
    );

    for bad in ["", "web", "web.shop.svc.example.org:80"] {
        let err = client.get_profile(get(bad)).await.expect_err(bad);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad:?}: {err}");
    }
    let err = client
        .get_profile(get("api.shop.svc.cluster.local:80"))
        .await
        .expect_err("no such service");
    assert_eq!(err.code(), tonic::Code::NotFound);
}
