//! The demo's resilience step: `/flaky` on the web pods fails 30% of requests; an HTTPRoute
//! with a Gateway API `retry` makes it look reliable, within the service's retry budget; and
//! its `timeouts` cut `/slow`, which takes 2 s, at 500 ms with a 504.

use anyhow::bail;
use std::time::{Duration, Instant};
use weft_cli_local::{
    metric_sum,
    shop::{Shop, WEB_HOST},
    traffic::{self, Tally},
};

/// Retries for `/flaky`, a timeout for `/slow`, and everything else to `web` as before.
const ROUTE: &str = "\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-resilience, namespace: shop}
spec:
  parentRefs: [{group: \"\", kind: Service, name: web, port: 8080}]
  rules:
  - matches: [{path: {type: Exact, value: /flaky}}]
    retry: {attempts: 6, codes: [503], backoff: 5ms}
  - matches: [{path: {type: Exact, value: /slow}}]
    timeouts: {request: 500ms}
  - matches: [{path: {type: PathPrefix, value: /}}]
";

const REQUESTS: usize = 1000;

/// The `web` Service's retry budget during the step.
const BUDGET: &str = "50%,10/s";

/// Runs the step and removes its route afterwards.
pub fn run(shop: &Shop) -> anyhow::Result<()> {
    println!(
        "Resilience: GET http://{WEB_HOST}:8080/flaky fails 30% of requests with 503 on the web pods"
    );
    let before = flaky(shop);
    println!("  no route:           {}", summary(&before));

    // The default budget (retries up to 20% of requests, plus 10/s) is too small for a backend
    // that fails 30% of the time; this Service allows half.
    shop.set_web(true, &[("weft.dev/retry-budget", BUDGET)])?;
    let updates = shop.policy_updates();
    shop.write_manifest("resilience.yaml", ROUTE)?;
    if shop
        .wait_policy_update(updates, Duration::from_secs(5))
        .is_none()
    {
        bail!("the client sidecar never received the HTTPRoute");
    }
    let retries_before = retries(shop);
    let after = flaky(shop);
    let retried = retries(shop) - retries_before;
    println!(
        "  HTTPRoute retry:    {} — {retried} retries ({:.0} per 100 requests; weft.dev/retry-budget {BUDGET})",
        summary(&after),
        100.0 * retried / REQUESTS as f64
    );
    if after.ok() <= before.ok() {
        bail!("retries did not help: {after:?}");
    }

    let slow = Shop::web_request("/slow");
    let started = Instant::now();
    let tally = traffic::tally(&shop.client.pod, &slow, 1, 1);
    let took = started.elapsed();
    println!(
        "  GET /slow (takes 2 s) with timeouts.request 500ms: {} ms -> {}",
        took.as_millis(),
        tally.errors.first().map_or("answered", String::as_str),
    );
    if tally.failures != 1 || took >= Duration::from_secs(1) {
        bail!("the route timeout did not cut /slow: {tally:?} after {took:?}");
    }
    std::fs::remove_file(shop.dir.join("resilience.yaml"))?;
    shop.set_web(true, &[])?;
    println!();
    Ok(())
}

fn flaky(shop: &Shop) -> Tally {
    traffic::tally(&shop.client.pod, &Shop::web_request("/flaky"), REQUESTS, 4)
}

fn summary(t: &Tally) -> String {
    format!(
        "{} of {REQUESTS} ok ({:.1}%)",
        t.ok(),
        100.0 * t.ok() as f64 / REQUESTS as f64
    )
}

fn retries(shop: &Shop) -> f64 {
    metric_sum(
        &shop.client.metrics(),
        "route_retry_total",
        &["route=\"shop/web-resilience\""],
    )
}
