//! weft-controller-identity through its public edge: the token registry and the TokenReview
//! authenticator, Certify served in-process and called by a real tonic client, issuer reloads,
//! and the controller's TLS and mTLS acceptors against rustls clients.

// Helpers outside `#[test]` functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod certify;
mod registry;
mod review;
mod support;
mod tls;
