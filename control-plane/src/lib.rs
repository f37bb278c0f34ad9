//! The Weft control plane (`weft-controller`): the index of Services, EndpointSlices, Pods,
//! traffic splits, routes and policies, the `kube` and `files` sources that feed it, and the
//! linkerd2-proxy-api gRPC services that stream its results to proxies.
//!
//! Nothing is built here yet: the control-plane issue splits this into core, index, sources,
//! grpc and runtime crates. Until then the proxy forwards to original destinations.

#![forbid(unsafe_code)]
