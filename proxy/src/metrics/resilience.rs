//! Counters of the outbound resilience machinery: retries, timeouts, ejections and fail-fast
//! answers. They change only when something goes wrong, so their label lookups stay off the
//! path of a request that succeeds the first time.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use std::{net::SocketAddr, sync::Arc};

/// A route of a parent service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    /// The service the client called, e.g. `Service shop/web:8080`.
    parent: Arc<str>,
    /// The route, e.g. `shop/web-retry` or `default:http`.
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabels {
    parent: Arc<str>,
    route: Arc<str>,
    /// `request` (the whole exchange, retries included) or `response` (one attempt).
    timeout: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    dst_backend: Arc<str>,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailFastLabels {
    dst_backend: Arc<str>,
    /// `all_ejected`, `no_endpoints` or `queue_full`.
    reason: &'static str,
}

/// `route_retry_total`, `route_retry_budget_exhausted_total`, `route_timeout_total`,
/// `endpoint_ejections_total` and `backend_failfast_total`.
#[derive(Clone, Debug, Default)]
pub struct ResilienceMetrics {
    retries: Family<RouteLabels, Counter>,
    budget_exhausted: Family<RouteLabels, Counter>,
    timeouts: Family<TimeoutLabels, Counter>,
    ejections: Family<EndpointLabels, Counter>,
    failfast: Family<FailFastLabels, Counter>,
}

/// Why a backend answered at once instead of sending a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailFast {
    /// Every endpoint is ejected after consecutive failures.
    AllEjected,
    /// The backend had no endpoints for the whole fail-fast timeout.
    NoEndpoints,
    /// Too many requests were already waiting for endpoints.
    QueueFull,
}

impl FailFast {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllEjected => "all_ejected",
            Self::NoEndpoints => "no_endpoints",
            Self::QueueFull => "queue_full",
        }
    }
}

impl ResilienceMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "route_retry",
            "Retries sent, by parent service and route",
            self.retries.clone(),
        );
        registry.register(
            "route_retry_budget_exhausted",
            "Retries not sent because the service's retry budget was spent",
            self.budget_exhausted.clone(),
        );
        registry.register(
            "route_timeout",
            "Requests (timeout=request) and attempts (timeout=response) cut by a route timeout",
            self.timeouts.clone(),
        );
        registry.register(
            "endpoint_ejections",
            "Endpoints taken out of balancing after consecutive failures",
            self.ejections.clone(),
        );
        registry.register(
            "backend_failfast",
            "Requests a backend answered with 503 without sending, by reason",
            self.failfast.clone(),
        );
    }

    /// A retry of a request on `route` of `parent` was sent.
    pub fn retry(&self, parent: &str, route: &str) {
        self.retries
            .get_or_create(&route_labels(parent, route))
            .inc();
    }

    /// A retry was due but the budget said no.
    pub fn budget_exhausted(&self, parent: &str, route: &str) {
        let labels = route_labels(parent, route);
        self.budget_exhausted.get_or_create(&labels).inc();
    }

    /// A request (`whole`) or one attempt timed out.
    pub fn timeout(&self, parent: &str, route: &str, whole: bool) {
        let labels = TimeoutLabels {
            parent: parent.into(),
            route: route.into(),
            timeout: if whole { "request" } else { "response" },
        };
        self.timeouts.get_or_create(&labels).inc();
    }

    /// `endpoint` of `backend` was ejected.
    pub fn ejection(&self, backend: &str, endpoint: SocketAddr) {
        let labels = EndpointLabels {
            dst_backend: backend.into(),
            endpoint: endpoint.to_string(),
        };
        self.ejections.get_or_create(&labels).inc();
    }

    /// `backend` answered a request at once, for `why`.
    pub fn failfast(&self, backend: &str, why: FailFast) {
        let labels = FailFastLabels {
            dst_backend: backend.into(),
            reason: why.as_str(),
        };
        self.failfast.get_or_create(&labels).inc();
    }
}

fn route_labels(parent: &str, route: &str) -> RouteLabels {
    RouteLabels {
        parent: parent.into(),
        route: route.into(),
    }
}
