//! What makes each request visible: an OpenTelemetry span joined to the caller's trace
//! (server span inbound, client span outbound), whose context goes on in the forwarded
//! request's headers, and an access log line. The record layer calls it when one of them is
//! on, so a proxy with neither pays nothing for it.

mod access;
mod span;

pub use access::{AccessLogger, Line};

use super::{ProxyBody, notes::Notes};
use crate::{metrics::Direction, trace::Tracing};
use http::{Request, Response};
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

/// What the observe layer does, for the whole proxy.
#[derive(Clone, Debug, Default)]
pub struct Observe {
    /// Spans, when a collector is configured.
    pub tracing: Option<Arc<Tracing>>,
    /// Access log lines, when asked for.
    pub access_log: Option<AccessLogger>,
}

impl Observe {
    /// The observer of one connection's requests, unless nothing is on.
    pub fn observer(&self, conn: ConnInfo) -> Option<Observer> {
        (self.tracing.is_some() || self.access_log.is_some()).then(|| Observer {
            observe: self.clone(),
            conn: Arc::new(conn),
        })
    }
}

/// What a connection's requests share.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// inbound | outbound.
    pub direction: Direction,
    /// The client's address.
    pub peer: SocketAddr,
    /// Where the connection was going (its original destination).
    pub target: SocketAddr,
    /// Inbound: the meshed client's identity.
    pub client_id: Option<Arc<str>>,
}

/// Observes one connection's requests.
#[derive(Clone, Debug)]
pub struct Observer {
    observe: Observe,
    conn: Arc<ConnInfo>,
}

/// One request being observed.
pub struct Observation {
    span: Option<span::RequestSpan>,
    line: Option<(AccessLogger, Line)>,
}

impl Observer {
    /// Starts observing `req` as it is forwarded: its span starts, and its context replaces
    /// the caller's in the headers.
    pub fn start<B>(&self, req: &mut Request<B>) -> Observation {
        let at = SystemTime::now();
        let span = self
            .observe
            .tracing
            .as_ref()
            .map(|t| span::RequestSpan::start(t, &self.conn, req));
        let line = self
            .observe
            .access_log
            .as_ref()
            .map(|log| (log.clone(), Line::of(req, &self.conn, at)));
        Observation { span, line }
    }
}

impl Observation {
    /// Ends the span and writes the log line, with the response (`None`: none), what the
    /// inner layers noted, and how long the response took.
    pub fn finish(self, rsp: Option<&Response<ProxyBody>>, notes: &Notes, took: Duration) {
        if let Some(span) = self.span {
            span.end(rsp, notes);
        }
        if let Some((log, line)) = self.line {
            log.write(line.finish(rsp, notes, took));
        }
    }
}
