use super::*;

fn backend(port: u16) -> RouteBackend {
    RouteBackend::new(Arc::new(Backend::forward(([10, 0, 0, 1], port).into())))
}

fn port(b: Option<&RouteBackend>) -> Option<u16> {
    match b?.backend.kind {
        BackendKind::Forward { addr, .. } => Some(addr.port()),
        BackendKind::Balancer { .. } | BackendKind::Unavailable => None,
    }
}

fn split(weights: &[u32]) -> Distribution {
    Distribution::RandomAvailable {
        backends: (1..=weights.len() as u16).map(backend).collect(),
        weights: weights.to_vec(),
    }
}

#[test]
fn random_available_walks_cumulative_weights() {
    let d = split(&[1, 0, 3]);
    assert_eq!(port(d.pick_with(0)), Some(1));
    assert_eq!(
        port(d.pick_with(1)),
        Some(3),
        "the zero-weight backend has no range"
    );
    assert_eq!(port(d.pick_with(3)), Some(3));
    assert_eq!(port(d.pick_with(4)), Some(1), "r wraps modulo the total");
    for r in 0..100 {
        assert_ne!(port(d.pick_with(r)), Some(2));
    }
}

#[test]
fn random_available_is_proportional() {
    fastrand::seed(42);
    let d = split(&[1, 3]);
    let heavy = (0..10_000).filter(|_| port(d.pick()) == Some(2)).count();
    // Expected 7,500; the standard deviation is ~43, so +-400 cannot fail by chance.
    assert!(
        (7_100..=7_900).contains(&heavy),
        "{heavy} of 10000 went to weight 3"
    );
}

#[test]
fn nothing_to_pick() {
    assert!(split(&[0, 0]).pick().is_none(), "all weights zero");
    assert!(split(&[]).pick().is_none());
    assert!(Distribution::Empty.pick().is_none());
    assert!(Distribution::FirstAvailable(Vec::new()).pick().is_none());
}

#[test]
fn first_available_picks_the_first() {
    let d = Distribution::FirstAvailable(vec![backend(1), backend(2)]);
    for r in 0..10 {
        assert_eq!(port(d.pick_with(r)), Some(1));
    }
    assert_eq!(d.backends().len(), 2);
}

#[test]
fn backends_key_caches() {
    use std::collections::HashSet;
    let a = Backend::forward(([10, 0, 0, 1], 80).into());
    let b = Backend {
        name: "shop/web:80".into(),
        kind: BackendKind::Balancer {
            path: "web.shop.svc.cluster.local:80".to_string(),
            default_rtt: DEFAULT_RTT,
            decay: DEFAULT_DECAY,
            queue: crate::policy::Queue::default(),
        },
    };
    let set: HashSet<_> = [a.clone(), b.clone(), a, b].into_iter().collect();
    assert_eq!(set.len(), 2);
}

#[test]
fn opaque_constructors() {
    let b = Arc::new(Backend::forward(([10, 0, 0, 1], 9).into()));
    assert_eq!(port(OpaqueRoutes::forward(b).distribution.pick()), Some(9));
    assert!(OpaqueRoutes::empty().distribution.pick().is_none());
}
