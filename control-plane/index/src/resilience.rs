//! Retries, timeouts, retry budgets and failure accrual from annotations on a Service (the
//! defaults of its routes) or on an HTTPRoute/GRPCRoute (the defaults of its rules), and from
//! Gateway API `rules[].retry`.
//!
//! A rule's own setting wins over its route's annotations, which win over the Service's. An
//! invalid annotation is logged with the object and ignored, so the rest still applies.

use std::{collections::BTreeMap, fmt, str::FromStr, time::Duration};
use weft_controller_core::{
    outbound::Timeouts,
    resilience::{
        Backoff, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_RETRY_LIMIT, DEFAULT_RETRY_STATUSES,
        FailureAccrual, GrpcCodes, GrpcRetry, HttpRetry, Ratio, Retry, RetryBudget,
    },
};

#[cfg(test)]
mod tests;

/// HTTP statuses to retry: `5xx`, `503`, `500-504`, comma-separated.
pub const RETRY_HTTP: &str = "weft.dev/retry-http";
/// gRPC codes to retry: `unavailable,internal,...` (names or numbers).
pub const RETRY_GRPC: &str = "weft.dev/retry-grpc";
/// Retries after the first try (`0` turns inherited retries off).
pub const RETRY_LIMIT: &str = "weft.dev/retry-limit";
/// The limit on each try of a retried request.
pub const RETRY_TIMEOUT: &str = "weft.dev/retry-timeout";
/// The first wait between tries (it doubles up to ten times this).
pub const RETRY_BACKOFF: &str = "weft.dev/retry-backoff";
/// Bodies up to this many bytes are kept for a retry.
pub const RETRY_MAX_REQUEST_BYTES: &str = "weft.dev/retry-max-request-bytes";
/// The whole request's timeout, retries included.
pub const TIMEOUT_REQUEST: &str = "weft.dev/timeout-request";
/// Each try's timeout.
pub const TIMEOUT_BACKEND_REQUEST: &str = "weft.dev/timeout-backend-request";
/// The Service's retry budget: `20%`, `20%,10/s`, `20%,10/s,10s`.
pub const RETRY_BUDGET: &str = "weft.dev/retry-budget";
/// `consecutive` turns failure accrual on for the Service's endpoints (`off`: off).
pub const FAILURE_ACCRUAL: &str = "weft.dev/failure-accrual";
/// Failures in a row that eject an endpoint (default 7).
pub const FAILURE_ACCRUAL_MAX_FAILURES: &str = "weft.dev/failure-accrual-max-failures";
/// The first ejection's length (default 1s).
pub const FAILURE_ACCRUAL_MIN_PENALTY: &str = "weft.dev/failure-accrual-min-penalty";
/// The longest ejection (default 1m).
pub const FAILURE_ACCRUAL_MAX_PENALTY: &str = "weft.dev/failure-accrual-max-penalty";
/// Random extra on ejections, as a ratio (default 0.5).
pub const FAILURE_ACCRUAL_JITTER: &str = "weft.dev/failure-accrual-jitter";

/// What an object's annotations say about its routes' rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RuleDefaults {
    /// Retries of HTTP rules; `Some` with a zero limit turns inherited retries off.
    pub http_retry: Option<HttpRetry>,
    /// Retries of gRPC rules, likewise.
    pub grpc_retry: Option<GrpcRetry>,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// What a Service's annotations say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServiceResilience {
    /// Defaults of the rules of every route to the Service.
    pub rules: RuleDefaults,
    pub retry_budget: RetryBudget,
    pub failure_accrual: Option<FailureAccrual>,
}

/// An annotation that could not be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{annotation}: {value:?} is not valid: {why}")]
pub(crate) struct Invalid {
    annotation: &'static str,
    value: String,
    why: String,
}

/// Reads annotations and logs each invalid one against `what`.
struct Reader<'a> {
    what: &'a dyn fmt::Display,
    annotations: &'a BTreeMap<String, String>,
}

impl Reader<'_> {
    fn get<T>(&self, name: &'static str, parse: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        let value = self.annotations.get(name)?;
        match parse(value.trim()) {
            Ok(v) => Some(v),
            Err(why) => {
                let e = Invalid {
                    annotation: name,
                    value: value.clone(),
                    why,
                };
                tracing::warn!(object = %self.what, error = %e, "ignoring annotation");
                None
            }
        }
    }

    fn duration(&self, name: &'static str) -> Option<Duration> {
        self.get(name, parse_duration)
    }
}

/// The rule defaults `annotations` of `what` (a Service or a route) give.
pub(crate) fn rule_defaults(
    what: &dyn fmt::Display,
    annotations: &BTreeMap<String, String>,
) -> RuleDefaults {
    let r = Reader { what, annotations };
    let limit = r.get(RETRY_LIMIT, |v| {
        v.parse::<u32>()
            .map_err(|_| "expected a whole number of retries, e.g. 2".to_string())
    });
    let statuses = r.get(RETRY_HTTP, parse_statuses);
    let codes = r.get(RETRY_GRPC, parse_grpc_codes);
    let timeout = r.duration(RETRY_TIMEOUT);
    let backoff = r.duration(RETRY_BACKOFF).map(Backoff::from_min);
    let max_request_bytes = r.get(RETRY_MAX_REQUEST_BYTES, |v| {
        v.parse::<u32>()
            .map_err(|_| "expected a number of bytes, e.g. 65536".to_string())
    });
    fn retry<On>(
        on: On,
        limit: Option<u32>,
        timeout: Option<Duration>,
        backoff: Option<Backoff>,
        max_request_bytes: Option<u32>,
    ) -> Retry<On> {
        Retry {
            limit: limit.unwrap_or(DEFAULT_RETRY_LIMIT),
            on,
            timeout,
            backoff: backoff.unwrap_or_default(),
            max_request_bytes: max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
        }
    }
    // Any retry annotation turns retries on; each kind takes its default conditions when only
    // the other kind's, or only the limit, is given.
    let on = limit.is_some() || statuses.is_some() || codes.is_some();
    RuleDefaults {
        http_retry: on.then(|| {
            let statuses = statuses.unwrap_or_else(|| vec![DEFAULT_RETRY_STATUSES]);
            retry(statuses, limit, timeout, backoff, max_request_bytes)
        }),
        grpc_retry: on.then(|| {
            let codes = codes.unwrap_or(GrpcCodes {
                unavailable: true,
                ..GrpcCodes::default()
            });
            retry(codes, limit, timeout, backoff, max_request_bytes)
        }),
        timeouts: Timeouts {
            request: r.duration(TIMEOUT_REQUEST),
            backend_request: r.duration(TIMEOUT_BACKEND_REQUEST),
        },
    }
}

/// What a Service's annotations say.
pub(crate) fn service_resilience(
    what: &dyn fmt::Display,
    annotations: &BTreeMap<String, String>,
) -> ServiceResilience {
    let r = Reader { what, annotations };
    ServiceResilience {
        rules: rule_defaults(what, annotations),
        retry_budget: r.get(RETRY_BUDGET, parse_budget).unwrap_or_default(),
        failure_accrual: failure_accrual(&r),
    }
}

fn failure_accrual(r: &Reader<'_>) -> Option<FailureAccrual> {
    let on = r.get(FAILURE_ACCRUAL, |v| match v {
        "consecutive" => Ok(true),
        "off" | "none" => Ok(false),
        _ => Err("expected `consecutive` or `off`".to_string()),
    });
    if on != Some(true) {
        let tuned = [
            FAILURE_ACCRUAL_MAX_FAILURES,
            FAILURE_ACCRUAL_MIN_PENALTY,
            FAILURE_ACCRUAL_MAX_PENALTY,
            FAILURE_ACCRUAL_JITTER,
        ]
        .into_iter()
        .filter(|a| r.annotations.contains_key(*a))
        .collect::<Vec<_>>();
        if !tuned.is_empty() {
            tracing::warn!(object = %r.what, annotations = ?tuned, "failure accrual settings ignored without {FAILURE_ACCRUAL}: consecutive");
        }
        return None;
    }
    let default = FailureAccrual::default();
    let max_failures = r
        .get(FAILURE_ACCRUAL_MAX_FAILURES, |v| match v.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("expected a whole number of failures, at least 1".to_string()),
        })
        .unwrap_or(default.max_failures);
    let min = r
        .duration(FAILURE_ACCRUAL_MIN_PENALTY)
        .unwrap_or(default.backoff.min);
    let mut max = r
        .duration(FAILURE_ACCRUAL_MAX_PENALTY)
        .unwrap_or(default.backoff.max.max(min));
    if max < min {
        tracing::warn!(object = %r.what, ?min, ?max, "{FAILURE_ACCRUAL_MAX_PENALTY} is below {FAILURE_ACCRUAL_MIN_PENALTY}; using the minimum for both");
        max = min;
    }
    let jitter = r
        .get(FAILURE_ACCRUAL_JITTER, |v| {
            v.parse::<f64>()
                .ok()
                .filter(|j| (0.0..=100.0).contains(j))
                .and_then(Ratio::from_f64)
                .ok_or_else(|| "expected a ratio between 0 and 100, e.g. 0.5".to_string())
        })
        .unwrap_or(default.backoff.jitter);
    Some(FailureAccrual {
        max_failures,
        backoff: Backoff { min, max, jitter },
    })
}

/// Gateway API's `rules[].retry` of an HTTPRoute rule, with what it leaves unset from
/// `defaults` (the route's annotations) or Weft's defaults.
pub(crate) fn gateway_retry(
    what: &dyn fmt::Display,
    attempts: Option<i64>,
    codes: Option<&[i64]>,
    backoff: Option<&str>,
    defaults: Option<&HttpRetry>,
) -> HttpRetry {
    let limit = match attempts.map(u32::try_from) {
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            tracing::warn!(object = %what, ?attempts, "retry.attempts out of range; using the default");
            defaults.map_or(DEFAULT_RETRY_LIMIT, |d| d.limit)
        }
        None => defaults.map_or(DEFAULT_RETRY_LIMIT, |d| d.limit),
    };
    let statuses: Vec<(u16, u16)> = codes
        .unwrap_or_default()
        .iter()
        .filter_map(|c| match u16::try_from(*c) {
            Ok(c @ 400..=599) => Some((c, c)),
            _ => {
                tracing::warn!(object = %what, code = c, "retry.codes: ignoring a code outside 400-599");
                None
            }
        })
        .collect();
    let on = match (statuses.is_empty(), defaults) {
        (false, _) => statuses,
        (true, Some(d)) => d.on.clone(),
        (true, None) => vec![DEFAULT_RETRY_STATUSES],
    };
    let backoff = backoff
        .and_then(|b| match parse_duration(b) {
            Ok(d) => Some(Backoff::from_min(d)),
            Err(why) => {
                tracing::warn!(object = %what, backoff = b, %why, "ignoring retry.backoff");
                None
            }
        })
        .or(defaults.map(|d| d.backoff))
        .unwrap_or_default();
    Retry {
        limit,
        on,
        timeout: defaults.and_then(|d| d.timeout),
        backoff,
        max_request_bytes: defaults.map_or(DEFAULT_MAX_REQUEST_BYTES, |d| d.max_request_bytes),
    }
}

// === parsing ===

/// A Gateway API duration (GEP-2257: `1h`, `500ms`, `1m30s`).
pub(crate) fn parse_duration(value: &str) -> Result<Duration, String> {
    let d = gateway_api::duration::Duration::from_str(value)
        .map_err(|e| format!("{e}; expected a duration like 500ms, 2s or 1m30s"))?;
    Ok(Duration::from_millis(
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
    ))
}

/// `5xx`, `503`, `500-504`, comma-separated; each within 100-599.
pub(crate) fn parse_statuses(value: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let range = if let Some(class) = item.strip_suffix("xx") {
            class
                .parse::<u16>()
                .ok()
                .filter(|c| (1..=5).contains(c))
                .map(|c| (c * 100, c * 100 + 99))
        } else if let Some((a, b)) = item.split_once('-') {
            a.trim().parse().ok().zip(b.trim().parse().ok())
        } else {
            item.parse().ok().map(|c| (c, c))
        };
        match range {
            Some((a, b)) if a <= b && a >= 100 && b <= 599 => out.push((a, b)),
            _ => {
                return Err(format!(
                    "{item:?} is not a status, range or class within 100-599 (e.g. 503, 500-504, 5xx)"
                ));
            }
        }
    }
    if out.is_empty() {
        return Err("no statuses; expected e.g. 5xx or 502,503".to_string());
    }
    Ok(out)
}

/// gRPC code names or numbers, comma-separated.
pub(crate) fn parse_grpc_codes(value: &str) -> Result<GrpcCodes, String> {
    let mut codes = GrpcCodes::default();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !codes.set(item) {
            return Err(format!(
                "{item:?} cannot be retried; expected any of {}",
                GrpcCodes::NAMES.join(", ")
            ));
        }
    }
    if codes.is_empty() {
        return Err("no codes; expected e.g. unavailable".to_string());
    }
    Ok(codes)
}

/// `20%`, `20%,10/s`, `20%,10/s,10s`: the ratio, then optionally retries a second and the
/// window, in any order.
pub(crate) fn parse_budget(value: &str) -> Result<RetryBudget, String> {
    let mut budget = RetryBudget::default();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(pct) = item.strip_suffix('%') {
            budget.ratio = pct
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=1000.0).contains(p))
                .and_then(|p| Ratio::from_f64(p / 100.0))
                .ok_or_else(|| format!("{item:?}: expected a percentage from 0% to 1000%"))?;
        } else if let Some(n) = item.strip_suffix("/s") {
            budget.min_per_second = n
                .trim()
                .parse()
                .map_err(|_| format!("{item:?}: expected whole retries a second, e.g. 10/s"))?;
        } else {
            let ttl = parse_duration(item).map_err(|e| format!("{item:?}: {e}"))?;
            if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
                return Err(format!("{item:?}: the window must be from 1s to 60s"));
            }
            budget.ttl = ttl;
        }
    }
    Ok(budget)
}
