//! The Weft chained CNI plugin (`weft-cni`): installs a meshed pod's redirect from the node,
//! with iptables rules in the pod's namespace or eBPF programs, so pods need no NET_ADMIN.
//!
//! Nothing is built here yet; until then `weft-init` programs the redirect.

#![forbid(unsafe_code)]
