//! Resolving a port's policy: the default without a controller, and one wait per port.

use crate::{
    discover::Discovery,
    inbound::{ClientTls, DefaultPolicy, InboundPolicies},
    metrics::Metrics,
};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test]
async fn without_a_controller_every_port_gets_the_default() {
    let policies =
        InboundPolicies::with_default(None, DefaultPolicy::AllAuthenticated, &[], Metrics::new());
    let port = policies.resolve(8080).await;
    assert_eq!(&*port.current().name, "all-authenticated");
    let conn = super::conn("192.0.2.7:1000", ClientTls::None);
    assert!(port.check_tcp(&conn).is_err());
}

/// On the paused clock, so the waits are exact: the first connection to a port waits the
/// discovery timeout, later ones use the default at once while the controller stays silent.
#[tokio::test(start_paused = true)]
async fn a_port_waits_for_the_controller_only_once() {
    // Nothing listens on port 1: the controller never answers.
    let timeout = Duration::from_secs(3);
    let discovery = Discovery::new("127.0.0.1:1", "shop/web".into(), timeout, Metrics::new())
        .expect("a valid address");
    let policies =
        InboundPolicies::with_default(Some(discovery), DefaultPolicy::Deny, &[], Metrics::new());

    let start = Instant::now();
    let first = policies.resolve(8080).await;
    assert!(start.elapsed() >= timeout, "{:?}", start.elapsed());
    assert_eq!(&*first.current().name, "deny");

    let again = Instant::now();
    let second = policies.resolve(8080).await;
    assert_eq!(again.elapsed(), Duration::ZERO);
    assert_eq!(&*second.current().name, "deny");

    let other = Instant::now();
    policies.resolve(9090).await;
    assert!(other.elapsed() >= timeout, "another port waits too");
}
