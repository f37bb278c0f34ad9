use super::*;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn statuses_parse_codes_ranges_and_classes() {
    assert_eq!(parse_statuses("5xx"), Ok(vec![(500, 599)]));
    assert_eq!(
        parse_statuses("429, 500-504,503"),
        Ok(vec![(429, 429), (500, 504), (503, 503)])
    );
    for bad in ["", "6xx", "0xx", "99", "600", "504-500", "abc", "5xx,oops"] {
        assert!(parse_statuses(bad).is_err(), "{bad:?} should be refused");
    }
    let err = parse_statuses("5xx,700").expect_err("700 is not a status");
    assert!(err.contains("\"700\"") && err.contains("100-599"), "{err}");
}

#[test]
fn grpc_codes_parse_by_name_or_number() {
    let codes = parse_grpc_codes("UNAVAILABLE, deadline_exceeded,8").expect("valid");
    assert!(codes.unavailable && codes.deadline_exceeded && codes.resource_exhausted);
    assert!(!codes.internal && !codes.cancelled);
    let err = parse_grpc_codes("unavailable,not-found").expect_err("NOT_FOUND is an answer");
    assert!(
        err.contains("not-found") && err.contains("unavailable"),
        "{err}"
    );
    assert!(parse_grpc_codes(" , ").is_err());
}

#[test]
fn budgets_parse_in_any_order_and_keep_defaults() {
    let d = RetryBudget::default();
    assert_eq!(
        parse_budget("50%"),
        Ok(RetryBudget {
            ratio: Ratio::from_millionths(500_000),
            ..d
        })
    );
    assert_eq!(
        parse_budget("5/s, 30s, 12.5%"),
        Ok(RetryBudget {
            ratio: Ratio::from_millionths(125_000),
            min_per_second: 5,
            ttl: Duration::from_secs(30),
        })
    );
    for bad in ["-1%", "abc%", "x/s", "-3/s", "0s", "2m", "10", "fast"] {
        assert!(parse_budget(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn any_retry_annotation_turns_retries_on_with_defaults() {
    let d = rule_defaults(&"shop/web", &annotations(&[(RETRY_HTTP, "502,503")]));
    let http = d.http_retry.expect("http retries on");
    assert_eq!(http.on, vec![(502, 502), (503, 503)]);
    assert_eq!(http.limit, DEFAULT_RETRY_LIMIT);
    assert_eq!(http.backoff, Backoff::default());
    assert_eq!(http.max_request_bytes, 64 * 1024);
    let grpc = d.grpc_retry.expect("grpc retries on too");
    assert!(grpc.on.unavailable && !grpc.on.internal);

    let d = rule_defaults(
        &"shop/web",
        &annotations(&[
            (RETRY_LIMIT, "5"),
            (RETRY_GRPC, "internal"),
            (RETRY_TIMEOUT, "250ms"),
            (RETRY_BACKOFF, "10ms"),
            (RETRY_MAX_REQUEST_BYTES, "1024"),
            (TIMEOUT_REQUEST, "2s"),
            (TIMEOUT_BACKEND_REQUEST, "1s"),
        ]),
    );
    let grpc = d.grpc_retry.expect("on");
    assert_eq!(grpc.limit, 5);
    assert!(grpc.on.internal && !grpc.on.unavailable);
    assert_eq!(grpc.timeout, Some(Duration::from_millis(250)));
    assert_eq!(grpc.backoff.min, Duration::from_millis(10));
    assert_eq!(grpc.backoff.max, Duration::from_millis(100));
    assert_eq!(grpc.max_request_bytes, 1024);
    assert_eq!(d.http_retry.expect("on").on, vec![DEFAULT_RETRY_STATUSES]);
    assert_eq!(
        d.timeouts,
        Timeouts {
            request: Some(Duration::from_secs(2)),
            backend_request: Some(Duration::from_secs(1)),
        }
    );
    assert_eq!(
        rule_defaults(&"shop/web", &BTreeMap::new()),
        RuleDefaults::default()
    );
}

#[test]
fn invalid_annotations_are_ignored_one_by_one() {
    let d = rule_defaults(
        &"shop/web",
        &annotations(&[
            (RETRY_LIMIT, "many"),
            (RETRY_HTTP, "5xx"),
            (TIMEOUT_REQUEST, "soon"),
            (TIMEOUT_BACKEND_REQUEST, "300ms"),
        ]),
    );
    let http = d
        .http_retry
        .expect("the valid statuses still turn retries on");
    assert_eq!(http.limit, DEFAULT_RETRY_LIMIT);
    assert_eq!(d.timeouts.request, None);
    assert_eq!(d.timeouts.backend_request, Some(Duration::from_millis(300)));
}

#[test]
fn failure_accrual_is_off_unless_asked_for() {
    let s = service_resilience(
        &"shop/web",
        &annotations(&[(FAILURE_ACCRUAL_MAX_FAILURES, "3")]),
    );
    assert_eq!(s.failure_accrual, None, "tuning alone does not turn it on");
    let s = service_resilience(
        &"shop/web",
        &annotations(&[(FAILURE_ACCRUAL, "consecutive")]),
    );
    assert_eq!(s.failure_accrual, Some(FailureAccrual::default()));
    let s = service_resilience(
        &"shop/web",
        &annotations(&[
            (FAILURE_ACCRUAL, "consecutive"),
            (FAILURE_ACCRUAL_MAX_FAILURES, "3"),
            (FAILURE_ACCRUAL_MIN_PENALTY, "5s"),
            (FAILURE_ACCRUAL_MAX_PENALTY, "2s"),
            (FAILURE_ACCRUAL_JITTER, "0"),
        ]),
    );
    let fa = s.failure_accrual.expect("on");
    assert_eq!(fa.max_failures, 3);
    assert_eq!(
        (fa.backoff.min, fa.backoff.max),
        (Duration::from_secs(5), Duration::from_secs(5))
    );
    assert_eq!(fa.backoff.jitter, Ratio::from_millionths(0));
    let s = service_resilience(
        &"shop/web",
        &annotations(&[(FAILURE_ACCRUAL, "sometimes"), (RETRY_BUDGET, "50%,1/s")]),
    );
    assert_eq!(s.failure_accrual, None);
    assert_eq!(s.retry_budget.ratio, Ratio::from_millionths(500_000));
    assert_eq!(s.retry_budget.min_per_second, 1);
}

#[test]
fn gateway_retry_fills_what_it_leaves_out() {
    let r = gateway_retry(&"shop/r", None, None, None, None);
    assert_eq!(r.limit, DEFAULT_RETRY_LIMIT);
    assert_eq!(r.on, vec![DEFAULT_RETRY_STATUSES]);
    assert_eq!(r.backoff, Backoff::default());

    let r = gateway_retry(
        &"shop/r",
        Some(4),
        Some(&[503, 700, 504]),
        Some("100ms"),
        None,
    );
    assert_eq!(r.limit, 4);
    assert_eq!(r.on, vec![(503, 503), (504, 504)], "700 is dropped");
    assert_eq!(r.backoff.min, Duration::from_millis(100));

    let route = rule_defaults(
        &"shop/r",
        &annotations(&[
            (RETRY_LIMIT, "7"),
            (RETRY_HTTP, "429"),
            (RETRY_TIMEOUT, "1s"),
        ]),
    );
    let r = gateway_retry(
        &"shop/r",
        None,
        Some(&[]),
        Some("bad"),
        route.http_retry.as_ref(),
    );
    assert_eq!(r.limit, 7);
    assert_eq!(r.on, vec![(429, 429)]);
    assert_eq!(r.timeout, Some(Duration::from_secs(1)));
    assert_eq!(r.backoff, Backoff::default());
    let r = gateway_retry(&"shop/r", Some(-1), None, None, None);
    assert_eq!(r.limit, DEFAULT_RETRY_LIMIT, "a negative count falls back");
}
