//! Weft's wire API. The proxy and the controller speak linkerd2-proxy-api, so Weft's controller
//! can serve any proxy that speaks it and Weft's proxy can follow any controller that does.
//! This crate re-exports that API in one place; Weft-only messages are added here only for
//! what the API cannot carry.

#![forbid(unsafe_code)]

pub use linkerd2_proxy_api::{
    destination, grpc_route, http_route, http_types, identity, inbound, meta, net, opaque_route,
    outbound,
};
