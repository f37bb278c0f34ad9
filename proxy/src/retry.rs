//! Retries: which failures are retried, how long to wait between attempts, and the budget that
//! keeps retries from multiplying the load on a service that is already failing.
//!
//! Pure logic; the outbound router drives it (see `outbound::attempts`).

mod budget;

#[cfg(test)]
mod tests;

pub use budget::{Budget, BudgetParams};

use crate::policy::{Backoff, RetryOn};
use http::{HeaderMap, Method, StatusCode};
use std::time::Duration;

/// The body limit when the controller does not set one: larger bodies are streamed, not
/// buffered, and their requests are not retried.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Whether a response is one the route retries: a status in the configured ranges, or a
/// trailers-only gRPC answer (`grpc-status` in the headers) with a configured code.
///
/// A gRPC status that only arrives in the trailers after a response body is not retried: by
/// then the response is streaming to the client.
pub fn retryable_response(on: &RetryOn, status: StatusCode, headers: &HeaderMap) -> bool {
    match on {
        RetryOn::Statuses(ranges) => ranges.iter().any(|r| r.contains(&status.as_u16())),
        RetryOn::GrpcCodes(codes) => grpc_status(headers).is_some_and(|c| codes.contains(&c)),
    }
}

/// The `grpc-status` in `headers`, if it is there and a number.
pub fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// Whether a request may be sent twice without the route saying so: an idempotent method
/// (RFC 9110 §9.2.2). A gRPC route's retry policy says so for every call, as gRPC's own retry
/// design does: the codes it retries mean the server did not act on the call.
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The wait before retry number `retry` (0 for the first retry): `min × 2^retry`, at most
/// `max`, plus a random extra of up to `jitter` times that, where `rand` is uniform in [0, 1).
pub fn backoff(b: &Backoff, retry: u32, rand: f64) -> Duration {
    let base = b
        .min
        .checked_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(b.max)
        .min(b.max);
    let jitter = f64::from(b.jitter).clamp(0.0, 100.0) * rand.clamp(0.0, 1.0);
    base + base.mul_f64(jitter)
}
