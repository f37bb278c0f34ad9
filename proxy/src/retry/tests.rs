use super::{Budget, BudgetParams, backoff, retryable_response};
use crate::policy::{Backoff, RetryOn};
use http::{HeaderMap, StatusCode};
use proptest::prelude::*;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
enum Op {
    Deposit,
    Withdraw,
}

fn ops() -> impl Strategy<Value = Vec<(u64, Op)>> {
    // (milliseconds since the previous event, what happens)
    prop::collection::vec(
        (
            prop_oneof![3 => Just(0u64), 2 => 0u64..50, 1 => 0u64..3_000],
            prop_oneof![Just(Op::Deposit), Just(Op::Withdraw)],
        ),
        0..400,
    )
}

fn params() -> impl Strategy<Value = BudgetParams> {
    (0.0f64..1.5, 0u32..20, 100u64..20_000).prop_map(|(ratio, min_per_sec, ttl)| BudgetParams {
        ratio,
        min_per_sec,
        ttl: Duration::from_millis(ttl),
    })
}

fn reserve(p: &BudgetParams) -> f64 {
    // As the budget computes it: ten slots of a tenth of the window.
    f64::from(p.min_per_sec) * (p.ttl / 10).as_secs_f64() * 10.0
}

proptest! {
    /// With the clock still, a retry is granted exactly while granted retries stay within
    /// `min_per_sec × ttl + ratio × requests`.
    #[test]
    fn a_still_budget_grants_exactly_its_allowance(
        p in params(),
        seq in prop::collection::vec(any::<bool>(), 0..500),
    ) {
        // Whole slots only, so the reserve is exact.
        let p = BudgetParams { ttl: Duration::from_millis(p.ttl.as_millis() as u64 / 10 * 10), ..p };
        let now = Instant::now();
        let budget = Budget::new_at(p, now);
        let (mut deposits, mut granted) = (0u64, 0u64);
        for deposit in seq {
            if deposit {
                budget.deposit_at(now);
                deposits += 1;
            } else {
                let allowed = (granted + 1) as f64 <= reserve(&p) + p.ratio * deposits as f64;
                prop_assert_eq!(budget.withdraw_at(now), allowed);
                granted += u64::from(allowed);
            }
        }
    }

    /// Whatever the timing, at every granted retry the retries of the last 0.9 × ttl are
    /// within the allowance of the requests of the last ttl: retries cannot outgrow the
    /// traffic by more than the budget says.
    #[test]
    fn retries_never_outgrow_the_window(p in params(), seq in ops()) {
        let start = Instant::now();
        let budget = Budget::new_at(p, start);
        let mut now = start;
        let mut deposits: Vec<Instant> = Vec::new();
        let mut grants: Vec<Instant> = Vec::new();
        for (dt, op) in seq {
            now += Duration::from_millis(dt);
            match op {
                Op::Deposit => {
                    budget.deposit_at(now);
                    deposits.push(now);
                }
                Op::Withdraw => {
                    if !budget.withdraw_at(now) {
                        continue;
                    }
                    grants.push(now);
                    let recent = p.ttl.mul_f64(0.9);
                    let g = grants.iter().filter(|t| now.duration_since(**t) <= recent).count();
                    let d = deposits.iter().filter(|t| now.duration_since(**t) < p.ttl).count();
                    let bound = reserve(&p) + p.ratio * d as f64;
                    prop_assert!(
                        g as f64 <= bound + 1e-9,
                        "{g} retries in the last 0.9 ttl, but only {bound} allowed by {d} requests"
                    );
                }
            }
        }
    }

    /// Requests keep a budget open: after `n` requests with no retries, about `ratio × n`
    /// retries are granted at once.
    #[test]
    fn requests_earn_retries(ratio in 0.05f64..1.0, n in 10u64..1_000) {
        let p = BudgetParams { ratio, min_per_sec: 0, ttl: Duration::from_secs(10) };
        let now = Instant::now();
        let budget = Budget::new_at(p, now);
        for _ in 0..n {
            budget.deposit_at(now);
        }
        let granted = (0..n * 2).take_while(|_| budget.withdraw_at(now)).count() as u64;
        prop_assert_eq!(granted, (ratio * n as f64 + 1e-9).floor() as u64);
    }

    /// The wait grows from `min` by doubling, never passes `max` before jitter, and the jitter
    /// adds at most `jitter × base`; no retry count overflows it.
    #[test]
    fn backoff_stays_within_its_bounds(
        min_ms in 0u64..10_000,
        extra_ms in 0u64..100_000,
        jitter in 0.0f32..2.0,
        retry in any::<u32>(),
        rand in 0.0f64..1.0,
    ) {
        let b = Backoff {
            min: Duration::from_millis(min_ms),
            max: Duration::from_millis(min_ms + extra_ms),
            jitter,
        };
        let d = backoff(&b, retry, rand);
        let base = backoff(&b, retry, 0.0);
        prop_assert!(base >= b.min.min(b.max));
        prop_assert!(base <= b.max);
        prop_assert!(d >= base);
        prop_assert!(d <= base + base.mul_f64(f64::from(jitter)) + Duration::from_nanos(1));
        if retry < 40 {
            prop_assert!(backoff(&b, retry + 1, 0.0) >= base, "the base never shrinks");
        }
    }
}

#[test]
fn the_first_backoff_is_the_minimum_and_doubles() {
    let b = Backoff {
        min: Duration::from_millis(25),
        max: Duration::from_millis(150),
        jitter: 0.0,
    };
    let waits: Vec<_> = (0..5).map(|n| backoff(&b, n, 0.5).as_millis()).collect();
    assert_eq!(waits, [25, 50, 100, 150, 150]);
}

#[test]
fn a_budget_refills_as_the_window_slides() {
    let p = BudgetParams {
        ratio: 0.0,
        min_per_sec: 1,
        ttl: Duration::from_secs(10),
    };
    let start = Instant::now();
    let budget = Budget::new_at(p, start);
    let granted = (0..20).filter(|_| budget.withdraw_at(start)).count();
    assert_eq!(granted, 10, "1/s over 10 s");
    assert!(!budget.withdraw_at(start + Duration::from_secs(5)));
    assert!(
        budget.withdraw_at(start + Duration::from_secs(11)),
        "the old retries aged out"
    );
}

#[test]
fn statuses_and_trailers_only_grpc_codes_are_retried() {
    let on = RetryOn::Statuses(vec![500..=504]);
    assert!(retryable_response(
        &on,
        StatusCode::SERVICE_UNAVAILABLE,
        &HeaderMap::new()
    ));
    let not_listed = StatusCode::HTTP_VERSION_NOT_SUPPORTED;
    assert!(!retryable_response(&on, not_listed, &HeaderMap::new()));
    assert!(!retryable_response(&on, StatusCode::OK, &HeaderMap::new()));
    let grpc = RetryOn::GrpcCodes(vec![14]);
    let mut h = HeaderMap::new();
    h.insert("grpc-status", "14".parse().expect("valid"));
    assert!(retryable_response(&grpc, StatusCode::OK, &h));
    h.insert("grpc-status", "13".parse().expect("valid"));
    assert!(!retryable_response(&grpc, StatusCode::OK, &h));
    assert!(!retryable_response(
        &grpc,
        StatusCode::OK,
        &HeaderMap::new()
    ));
}
