//! What the inner layers learn about a request (its route, backend, endpoint, peer identity,
//! retries), for the outer layers' metrics labels, span attributes and access log line.
//!
//! The outermost layer puts an empty [`RequestNotes`] into the request's extensions; the router
//! or the authorizer fills it in; the outer layers read it once the response is back.

use http::Request;
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
};

/// What is known about one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// Outbound: the service the client called (`Service shop/web:8080`); inbound: the
    /// Server that took the request.
    pub parent: Option<Arc<str>>,
    /// The route that took it.
    pub route: Option<Arc<str>>,
    /// Outbound: the backend it went to (the last try's).
    pub backend: Option<Arc<str>>,
    /// Outbound: the endpoint it went to (the last try's).
    pub endpoint: Option<SocketAddr>,
    /// Outbound: the identity the endpoint proved (mTLS).
    pub server_id: Option<Arc<str>>,
    /// Retries sent.
    pub retries: u32,
}

/// A request's [`Notes`], shared by the layers that handle it.
#[derive(Clone, Debug, Default)]
pub struct RequestNotes(Arc<Mutex<Notes>>);

impl RequestNotes {
    /// The notes attached to `req`, if a layer attached some.
    pub fn of<B>(req: &Request<B>) -> Option<&Self> {
        req.extensions().get::<Self>()
    }

    /// Changes the notes.
    pub fn update(&self, f: impl FnOnce(&mut Notes)) {
        f(&mut self.lock());
    }

    /// A copy of the notes now.
    pub fn get(&self) -> Notes {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Notes> {
        // Plain fields set in place: a panic elsewhere cannot leave them torn.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
