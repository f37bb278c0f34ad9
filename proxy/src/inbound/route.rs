//! Inbound HTTP routes: the outbound route model (matches, precedence, filters) with an
//! authorization list per route.

use super::Authz;
use crate::policy::{HttpRoute, HttpRoutes, RouteMatch};
use http::{HeaderMap, Method, Uri};
use std::sync::Arc;

/// The HTTP routes of one server, in the controller's order.
///
/// Selection is the outbound one ([`HttpRoutes::select`]: Gateway API precedence over hosts,
/// path, method, headers and query parameters), so both directions match requests alike. The
/// routes' rules carry no backends: inbound requests always go to the local app.
#[derive(Clone, Debug, Default)]
pub struct InboundRoutes {
    routes: HttpRoutes,
    /// One list per route, in the same order as `routes.routes`.
    authorizations: Vec<Vec<Authz>>,
    /// One name per route, shared with metric labels.
    names: Vec<Arc<str>>,
}

/// One inbound route as the controller sent it: matches and filters, and who may use it.
#[derive(Clone, Debug)]
pub struct InboundRoute {
    /// The matches and filters (its rules have no backends).
    pub route: HttpRoute,
    /// Who may send requests on this route.
    pub authorizations: Vec<Authz>,
}

/// The route a request takes.
#[derive(Clone, Copy, Debug)]
pub struct InboundRouteMatch<'a> {
    /// The route's name.
    pub name: &'a Arc<str>,
    /// The route, rule and matched prefix, for applying the rule's filters.
    pub matched: RouteMatch<'a>,
    /// Who may send requests on this route.
    pub authorizations: &'a [Authz],
}

// === impl InboundRoutes ===

impl InboundRoutes {
    /// Routes in precedence-tie order.
    pub fn new(routes: Vec<InboundRoute>) -> Self {
        let mut this = Self::default();
        for r in routes {
            this.names.push(r.route.name.clone());
            this.routes.routes.push(r.route);
            this.authorizations.push(r.authorizations);
        }
        this
    }

    /// Whether the server has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.routes.is_empty()
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.routes.routes.len()
    }

    /// The routes with their authorizations, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HttpRoute, &[Authz])> {
        self.routes
            .routes
            .iter()
            .zip(self.authorizations.iter().map(Vec::as_slice))
    }

    /// The route a request takes, or `None` when no route matches (the proxy answers 404).
    pub fn select(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<InboundRouteMatch<'_>> {
        let matched = self.routes.select(method, uri, headers)?;
        // `select` returns a reference into `routes`; its position finds the route's
        // authorizations. Routes per server are few, so the scan is cheap.
        let i = self
            .routes
            .routes
            .iter()
            .position(|r| std::ptr::eq(r, matched.route))?;
        Some(InboundRouteMatch {
            name: self.names.get(i)?,
            matched,
            authorizations: self.authorizations.get(i)?,
        })
    }
}
