//! Dynamic routing end to end: a real `weft-controller` reading a directory of manifests,
//! real sidecars following it, and a client in its own pod observing which version answers.
//!
//! Each test builds its own `shop` (client, web-v1, web-v2, controller); they run one at a
//! time because they check timings and splits that a saturated 2-core machine would blur.

use std::{
    sync::MutexGuard,
    time::{Duration, Instant},
};
use weft_cli_local::{
    shop::{Options, Shop},
    traffic::{self, Traffic},
};
use weft_e2e::assert_eventually;

fn shop(test: &str, weights: (u32, u32)) -> Option<(MutexGuard<'static, ()>, Shop)> {
    let options = Options {
        weights,
        ..Options::default()
    };
    let (guard, shop) = weft_e2e::shop(test, options)?;
    // The first request makes the client's sidecar watch the service.
    let first = traffic::tally(&shop.client.pod, &Shop::web_request("/"), 1, 1);
    assert_eq!(
        first.failures,
        0,
        "first request: {:?}\n{}",
        first.errors,
        shop.client.process.log()
    );
    Some((guard, shop))
}

#[test]
fn a_90_10_split_is_measured_within_two_points_over_5000_requests() {
    let Some((_guard, shop)) = shop("a_90_10_split", (90, 10)) else {
        return;
    };
    let tally = traffic::tally(&shop.client.pod, &Shop::web_request("/"), 5000, 8);
    assert_eq!(tally.failures, 0, "{:?}", tally.errors);
    assert_eq!(tally.ok(), 5000);
    let v2 = tally.percent("web-v2");
    assert!(
        (v2 - 10.0).abs() <= 2.0,
        "web-v2 got {v2:.2}% of 5000 requests, expected 10 ± 2: {tally:?}"
    );
    assert!(
        (tally.percent("web-v1") + v2 - 100.0).abs() < 1e-9,
        "only web-v1 and web-v2 answer: {tally:?}"
    );
}

#[test]
fn changing_the_weights_in_the_files_source_changes_the_split_within_a_second() {
    let Some((_guard, shop)) = shop("changing_the_weights", (100, 0)) else {
        return;
    };
    let traffic = Traffic::start(
        &shop.client.pod,
        &Shop::web_request("/"),
        4,
        Duration::from_millis(2),
    );
    assert_eventually!(
        traffic.len() > 200,
        Duration::from_secs(10),
        "no traffic flowing"
    );
    let before = traffic.since(Instant::now() - Duration::from_secs(60));
    assert_eq!(before.percent("web-v1"), 100.0, "{before:?}");

    let changed_at = Instant::now();
    shop.set_split((0, 100)).expect("write split");
    std::thread::sleep(Duration::from_millis(2500));
    let outcomes = traffic.outcomes();
    let last_v1 = outcomes
        .iter()
        .filter(|(_, o)| o.as_deref() == Ok("web-v1"))
        .map(|(t, _)| *t)
        .max()
        .expect("web-v1 answered before the change");
    let took = last_v1.saturating_duration_since(changed_at);
    assert!(
        took < Duration::from_secs(1),
        "web-v1 still answered {took:?} after the split moved to web-v2"
    );
    let after = traffic.since(changed_at + Duration::from_secs(1));
    assert!(
        after.ok() > 100,
        "too little traffic after the change: {after:?}"
    );
    assert_eq!(after.percent("web-v2"), 100.0, "{after:?}");
    let all = traffic.since(changed_at - Duration::from_secs(60));
    assert_eq!(
        all.failures, 0,
        "requests failed around the change: {:?}",
        all.errors
    );
    eprintln!("the last web-v1 response came {took:?} after the file changed");
}

const CANARY_ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web-canary-header
  namespace: shop
spec:
  parentRefs:
  - {group: "", kind: Service, name: web, port: 8080}
  rules:
  - matches:
    - headers: [{name: x-canary, value: "true"}]
    backendRefs: [{name: web-v2, port: 8080}]
  - backendRefs: [{name: web-v1, port: 8080}]
"#;

#[test]
fn an_httproute_header_match_sends_canary_requests_to_v2_exactly() {
    // The split says 50/50; the HTTPRoute on the same service wins over it.
    let Some((_guard, shop)) = shop("an_httproute_header_match", (50, 50)) else {
        return;
    };
    let before = shop.policy_updates();
    shop.write_manifest("route.yaml", CANARY_ROUTE)
        .expect("write route");
    assert!(
        shop.wait_policy_update(before, Duration::from_secs(5))
            .is_some(),
        "the client sidecar got no policy update:\n{}",
        shop.controller.log()
    );
    let canary = traffic::tally(
        &shop.client.pod,
        &Shop::web_request("/").header("x-canary", "true"),
        500,
        4,
    );
    assert_eq!(canary.failures, 0, "{:?}", canary.errors);
    assert_eq!(
        canary.by_value.get("web-v2"),
        Some(&500),
        "x-canary: true must go to web-v2 only: {canary:?}"
    );
    let others = traffic::tally(
        &shop.client.pod,
        &Shop::web_request("/").header("x-canary", "false"),
        500,
        4,
    );
    assert_eq!(
        others.by_value.get("web-v1"),
        Some(&500),
        "everything else goes to web-v1: {others:?}"
    );

    // Removing the route brings the split back.
    let before = shop.policy_updates();
    std::fs::remove_file(shop.dir.join("route.yaml")).expect("remove route");
    assert!(
        shop.wait_policy_update(before, Duration::from_secs(5))
            .is_some()
    );
    let split = traffic::tally(
        &shop.client.pod,
        &Shop::web_request("/").header("x-canary", "true"),
        1000,
        4,
    );
    assert!(
        (split.percent("web-v2") - 50.0).abs() < 10.0,
        "the 50/50 split applies again: {split:?}"
    );
}

#[test]
fn an_endpoint_that_goes_away_stops_getting_traffic_and_no_request_fails() {
    let Some((_guard, shop)) = shop("an_endpoint_that_goes_away", (50, 50)) else {
        return;
    };
    // Without the split, `web` balances over its own endpoints: both pods.
    let before = shop.policy_updates();
    shop.remove_split().expect("remove split");
    assert!(
        shop.wait_policy_update(before, Duration::from_secs(5))
            .is_some()
    );
    let traffic = Traffic::start(
        &shop.client.pod,
        &Shop::web_request("/"),
        4,
        Duration::from_millis(2),
    );
    assert_eventually!(
        traffic
            .since(Instant::now() - Duration::from_secs(60))
            .by_value
            .len()
            == 2,
        Duration::from_secs(10),
        "both pods should answer before web-v2 goes away: {:?}",
        traffic.since(Instant::now() - Duration::from_secs(60))
    );

    // The pod goes away as in Kubernetes: its endpoint is removed, then it is stopped.
    let destination_before = shop.updates("destination");
    let removed_at = Instant::now();
    shop.set_web(false, &[]).expect("rewrite endpoints");
    assert!(
        shop.wait_update("destination", destination_before, Duration::from_secs(5))
            .is_some(),
        "the client sidecar got no endpoint update"
    );
    shop.v2
        .process
        .signal(nix::sys::signal::Signal::SIGTERM)
        .expect("stop web-v2's proxy");
    shop.apps[1]
        .signal(nix::sys::signal::Signal::SIGKILL)
        .expect("stop web-v2's app");
    std::thread::sleep(Duration::from_secs(2));

    let all = traffic.since(removed_at - Duration::from_secs(60));
    assert_eq!(
        all.failures, 0,
        "requests failed while web-v2 went away: {:?}",
        all.errors
    );
    let after = traffic.since(removed_at + Duration::from_secs(1));
    assert!(after.ok() > 100, "traffic kept flowing: {after:?}");
    assert_eq!(
        after.by_value.get("web-v2"),
        None,
        "web-v2 is gone but still answered: {after:?}"
    );
}

#[test]
fn traffic_keeps_flowing_on_the_last_config_while_the_controller_is_down() {
    let Some((_guard, mut shop)) = shop("traffic_keeps_flowing", (0, 100)) else {
        return;
    };
    let request = Shop::web_request("/");
    let up = traffic::tally(&shop.client.pod, &request, 200, 4);
    assert_eq!(up.by_value.get("web-v2"), Some(&200), "{up:?}");

    shop.controller.stop();
    // Changes made while the controller is down are not seen...
    shop.set_split((100, 0)).expect("write split");
    std::thread::sleep(Duration::from_millis(500));
    // ...and traffic, on existing and new connections, follows the last config.
    let down = traffic::tally(&shop.client.pod, &request, 500, 4);
    assert_eq!(
        down.failures, 0,
        "requests failed while the controller was down: {:?}",
        down.errors
    );
    assert_eq!(down.by_value.get("web-v2"), Some(&500), "{down:?}");

    // Restarted, the controller loads the directory and the sidecar reconnects (with backoff).
    shop.controller.restart().expect("restart the controller");
    assert_eventually!(
        traffic::tally(&shop.client.pod, &request, 100, 4)
            .by_value
            .get("web-v1")
            == Some(&100),
        Duration::from_secs(20),
        "the sidecar did not pick up the split after the controller came back:\n{}",
        shop.client.process.log()
    );
}
