//! Resilience policy of a service and its routes: retries, the retry budget, and failure
//! accrual (circuit breaking). Sources: Gateway API `rules[].retry` and the `weft.dev/retry-*`,
//! `weft.dev/retry-budget` and `weft.dev/failure-accrual*` annotations.

use std::{fmt, time::Duration};

/// A ratio kept in millionths, so that policies stay comparable (`Eq`) and hashable.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ratio(u32);

impl Ratio {
    /// `millionths / 1_000_000`.
    pub const fn from_millionths(millionths: u32) -> Self {
        Self(millionths)
    }

    /// The ratio nearest to `value`, or `None` if it is negative, not finite, or over 4000.
    pub fn from_f64(value: f64) -> Option<Self> {
        let scaled = (value * 1_000_000.0).round();
        (value.is_finite() && value >= 0.0 && scaled <= f64::from(u32::MAX))
            .then_some(Self(scaled as u32))
    }

    /// As a float (`0.2` for 20 %).
    pub fn as_f32(self) -> f32 {
        self.0 as f32 / 1_000_000.0
    }
}

impl fmt::Debug for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f32())
    }
}

/// Exponential backoff: `min`, doubling up to `max`, plus up to `jitter` of it at random.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// The first wait.
    pub min: Duration,
    /// The longest wait (before jitter).
    pub max: Duration,
    /// The random extra, as a share of the wait.
    pub jitter: Ratio,
}

impl Backoff {
    /// Retries wait at least `min` (Gateway API's `backoff`), growing to ten times that.
    pub fn from_min(min: Duration) -> Self {
        Self {
            min,
            max: min.saturating_mul(10),
            jitter: Ratio::from_millionths(500_000),
        }
    }
}

impl Default for Backoff {
    /// Between retries: 25 ms, doubling to 250 ms, with up to 50 % jitter.
    fn default() -> Self {
        Self::from_min(Duration::from_millis(25))
    }
}

/// When and how a rule's requests are retried. `On` says which answers are retried: HTTP
/// status ranges ([`HttpRetry`]) or gRPC codes ([`GrpcRetry`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry<On> {
    /// Retries after the first try (Gateway API's `attempts`).
    pub limit: u32,
    /// Which answers are retried; connection failures always are.
    pub on: On,
    /// The limit on each try, if shorter than the rule's `backendRequest` timeout.
    pub timeout: Option<Duration>,
    /// The wait between tries.
    pub backoff: Backoff,
    /// Bodies up to this many bytes are kept for a retry; larger requests are not retried.
    pub max_request_bytes: u32,
}

/// Retries of an HTTP rule: on these inclusive status ranges.
pub type HttpRetry = Retry<Vec<(u16, u16)>>;

/// Retries of a gRPC rule: on these codes.
pub type GrpcRetry = Retry<GrpcCodes>;

/// Retries when the rule does not say: two.
pub const DEFAULT_RETRY_LIMIT: u32 = 2;

/// Bodies kept for a retry when the rule does not say: 64 KiB.
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 64 * 1024;

/// HTTP statuses retried when a retry names none: every 5xx.
pub const DEFAULT_RETRY_STATUSES: (u16, u16) = (500, 599);

/// The gRPC codes a retry policy can name: the ones that mean the server did not (fully) act
/// on the call, as `outbound.GrpcRoute.Retry.Conditions` carries them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GrpcCodes {
    /// CANCELLED (1).
    pub cancelled: bool,
    /// DEADLINE_EXCEEDED (4).
    pub deadline_exceeded: bool,
    /// RESOURCE_EXHAUSTED (8).
    pub resource_exhausted: bool,
    /// INTERNAL (13).
    pub internal: bool,
    /// UNAVAILABLE (14).
    pub unavailable: bool,
}

impl GrpcCodes {
    /// Names accepted by [`GrpcCodes::set`], in code order.
    pub const NAMES: [&'static str; 5] = [
        "cancelled",
        "deadline-exceeded",
        "resource-exhausted",
        "internal",
        "unavailable",
    ];

    /// Sets the code `name` (case-insensitive; `-` or `_` between words) or its number.
    /// Returns `false` for any other code.
    pub fn set(&mut self, name: &str) -> bool {
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        let flag = match name.as_str() {
            "cancelled" | "1" => &mut self.cancelled,
            "deadline-exceeded" | "4" => &mut self.deadline_exceeded,
            "resource-exhausted" | "8" => &mut self.resource_exhausted,
            "internal" | "13" => &mut self.internal,
            "unavailable" | "14" => &mut self.unavailable,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// Whether no code is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A service's retry budget: over a sliding `ttl`, retries may be at most `ratio` of the
/// requests plus `min_per_second` a second, so retries cannot multiply an outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryBudget {
    /// Retries per request.
    pub ratio: Ratio,
    /// Retries a second allowed whatever the request rate.
    pub min_per_second: u32,
    /// The window.
    pub ttl: Duration,
}

impl Default for RetryBudget {
    /// 20 % of requests plus 10 a second, over 10 s.
    fn default() -> Self {
        Self {
            ratio: Ratio::from_millionths(200_000),
            min_per_second: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

/// Circuit breaking per endpoint: after `max_failures` failures in a row an endpoint is
/// ejected for a `backoff` that grows with each ejection, then probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FailureAccrual {
    /// Failures in a row that eject an endpoint.
    pub max_failures: u32,
    /// How long ejections last.
    pub backoff: Backoff,
}

impl Default for FailureAccrual {
    /// 7 failures; ejected 1 s, doubling up to 1 min, with 50 % jitter.
    fn default() -> Self {
        Self {
            max_failures: 7,
            backoff: Backoff {
                min: Duration::from_secs(1),
                max: Duration::from_secs(60),
                jitter: Ratio::from_millionths(500_000),
            },
        }
    }
}
