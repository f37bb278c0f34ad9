use super::*;
use tokio::time::advance;

const RTT: Duration = Duration::from_millis(30);
const DECAY: Duration = Duration::from_secs(10);

fn endpoint(port: u16, weight: u32) -> Arc<Endpoint> {
    let addr = SocketAddr::from(([10, 0, 0, 1], port));
    Arc::new(Endpoint::new(
        addr,
        None,
        weight,
        BTreeMap::new(),
        RTT,
        DECAY,
    ))
}

fn ms(estimate: Duration) -> f64 {
    estimate.as_secs_f64() * 1000.0
}

/// Sends `n` requests one after another through P2C; each takes its endpoint's `rtts` time.
/// Returns how many each endpoint got.
async fn drive(endpoints: &[Arc<Endpoint>], rtts: &[Duration], n: usize, seed: u64) -> Vec<usize> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut picks = vec![0; endpoints.len()];
    for _ in 0..n {
        let picked = p2c_with(endpoints, &mut rng, Endpoint::cost).expect("endpoints exist");
        let i = endpoints
            .iter()
            .position(|e| Arc::ptr_eq(e, picked))
            .expect("picked one of them");
        picks[i] += 1;
        let req = picked.start();
        advance(rtts[i]).await;
        req.complete();
    }
    picks
}

#[tokio::test(start_paused = true)]
async fn slow_endpoint_gets_little_traffic() {
    let eps = [endpoint(1, 0), endpoint(2, 0), endpoint(3, 0)];
    let fast = Duration::from_millis(5);
    let rtts = [fast, fast, Duration::from_millis(100)];
    let picks = drive(&eps, &rtts, 10_000, 7).await;
    // The slow endpoint loses every comparison until its 100 ms estimate has decayed below the
    // fast ones' ~5 ms: ln(20) x 10 s = 30 s of not being picked, while 10,000 requests take
    // about 50 s. So it is tried a handful of times; 2% (200) is a very wide margin. Without
    // load balancing it would get a third.
    assert!(picks[2] < 200, "slow endpoint got {picks:?}");
    // The fast ones share the rest evenly; 40% each allows for any imbalance P2C might have.
    assert!(
        picks[0] > 4_000 && picks[1] > 4_000,
        "fast endpoints got {picks:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn pending_requests_raise_cost() {
    let ep = endpoint(1, 0);
    let idle = ep.load();
    assert_eq!(idle, nanos(RTT), "starts at the default RTT");
    let a = ep.start();
    let b = ep.start();
    assert_eq!(ep.pending(), 2);
    assert_eq!(ep.load(), 3.0 * idle, "cost = estimate x (pending + 1)");

    // With two endpoints P2C always compares both: the busy one loses.
    let other = endpoint(2, 0);
    let eps = [ep.clone(), other.clone()];
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..100 {
        let picked = p2c_with(&eps, &mut rng, Endpoint::cost).expect("endpoints exist");
        assert!(Arc::ptr_eq(picked, &other));
    }
    a.complete();
    b.complete();
    assert_eq!(ep.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn peak_is_taken_at_once_and_decays() {
    let ep = endpoint(1, 0);
    let req = ep.start();
    advance(Duration::from_millis(500)).await;
    req.complete();
    assert_eq!(
        ep.rtt_estimate(),
        Duration::from_millis(500),
        "a slower RTT replaces it"
    );

    // A faster RTT right away barely moves it (no time has passed to blend with)...
    let req = ep.start();
    req.complete();
    assert!(ms(ep.rtt_estimate()) > 499.0);

    // ...and time alone decays it: exp(-1) after one decay window.
    advance(DECAY).await;
    let after = ms(ep.rtt_estimate());
    let expected = 500.0 * (-1.0f64).exp();
    assert!(
        (after - expected).abs() < 0.5,
        "{after} ms, expected {expected} ms"
    );

    // A faster RTT blends in, weighted by the time since the last update (10.01 s here).
    advance(DECAY).await;
    let req = ep.start();
    advance(Duration::from_millis(10)).await;
    req.complete();
    let blended = ms(ep.rtt_estimate());
    let w = (-10.01f64 / 10.0).exp();
    let expected = after * w + 10.0 * (1.0 - w);
    assert!(
        (blended - expected).abs() < 0.01,
        "{blended} ms, expected {expected} ms"
    );
}

#[tokio::test(start_paused = true)]
async fn failure_penalizes() {
    let ep = endpoint(1, 0);
    let req = ep.start();
    advance(Duration::from_millis(1)).await;
    drop(req);
    assert_eq!(ep.pending(), 0);
    // A fast failure counts as twice the default RTT, not as a fast success.
    assert_eq!(ep.rtt_estimate(), 2 * RTT);

    // Repeated failures compound up to the cap (100 x default RTT)...
    for _ in 0..20 {
        drop(ep.start());
    }
    assert_eq!(ep.rtt_estimate(), 100 * RTT);

    // ...but a failure that took longer than that counts as what it took.
    let req = ep.start();
    advance(Duration::from_secs(5)).await;
    drop(req);
    assert_eq!(ep.rtt_estimate(), Duration::from_secs(5));

    // A failing endpoint loses to a healthy one.
    let healthy = endpoint(2, 0);
    let eps = [ep, healthy.clone()];
    let picked = p2c_with(&eps, &mut fastrand::Rng::with_seed(3), Endpoint::cost);
    assert!(picked.is_some_and(|p| Arc::ptr_eq(p, &healthy)));
}

#[tokio::test(start_paused = true)]
async fn failure_never_lowers_a_high_estimate() {
    let ep = endpoint(1, 0);
    let req = ep.start();
    advance(Duration::from_secs(10)).await;
    req.complete();
    advance(Duration::from_secs(1)).await;
    let before = ep.rtt_estimate();
    drop(ep.start());
    assert_eq!(ep.rtt_estimate(), before);
}

#[test]
fn least_connections_prefers_the_idle_endpoint() {
    let (busy, idle) = (endpoint(1, 0), endpoint(2, 0));
    let conns = [busy.open_connection(), busy.open_connection()];
    assert_eq!(busy.connections(), 2);
    let eps = [busy.clone(), idle.clone()];
    for _ in 0..100 {
        let picked = p2c_least_connections(&eps).expect("endpoints exist");
        assert!(Arc::ptr_eq(picked, &idle));
    }
    drop(conns);
    assert_eq!(busy.connections(), 0);
}

#[test]
fn one_endpoint_is_always_chosen_and_none_is_none() {
    let only = [endpoint(1, 0)];
    for _ in 0..10 {
        assert!(p2c_peak_ewma(&only).is_some_and(|e| Arc::ptr_eq(e, &only[0])));
        assert!(p2c_least_connections(&only).is_some());
    }
    assert!(p2c_peak_ewma(&[]).is_none());
    assert!(p2c_least_connections(&[]).is_none());
}

#[test]
fn draws_are_distinct() {
    let eps = [endpoint(1, 0), endpoint(2, 0)];
    let mut rng = fastrand::Rng::with_seed(9);
    let mut compared = Vec::new();
    for _ in 0..100 {
        compared.clear();
        p2c_with(&eps, &mut rng, |e| {
            compared.push(e.addr);
            0.0
        });
        assert_eq!(compared.len(), 2);
        assert_ne!(compared[0], compared[1]);
    }
}

#[tokio::test(start_paused = true)]
async fn weights_skew_the_choice() {
    // Equal load; the heavier endpoint has 4x the capacity, so a quarter of the cost. It wins
    // every comparison it is in, and P2C draws it in 2 of the 3 possible pairs.
    let eps = [
        endpoint(1, DEFAULT_WEIGHT),
        endpoint(2, DEFAULT_WEIGHT),
        endpoint(3, 4 * DEFAULT_WEIGHT),
    ];
    assert_eq!(eps[2].cost() * 4.0, eps[0].cost());
    let mut rng = fastrand::Rng::with_seed(11);
    let heavy = (0..9_000)
        .filter(|_| {
            let picked = p2c_with(&eps, &mut rng, Endpoint::cost).expect("endpoints exist");
            Arc::ptr_eq(picked, &eps[2])
        })
        .count();
    // Expected 6,000 (2/3); the standard deviation is ~45, so +-300 cannot fail by chance.
    assert!(
        (5_700..=6_300).contains(&heavy),
        "heavy endpoint got {heavy} of 9000"
    );

    // Weight 0 means unweighted, not "free".
    assert_eq!(endpoint(4, 0).cost(), eps[0].cost());
}

#[tokio::test(start_paused = true)]
async fn zero_estimate_with_pending_is_penalized() {
    let addr = SocketAddr::from(([10, 0, 0, 1], 1));
    let ep = Arc::new(Endpoint::new(
        addr,
        None,
        0,
        BTreeMap::new(),
        Duration::ZERO,
        DECAY,
    ));
    assert_eq!(ep.load(), 0.0);
    let req = ep.start();
    assert!(ep.load() >= PENALTY_NS);
    req.complete();
}
