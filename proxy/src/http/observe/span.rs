//! One request's span, with the OpenTelemetry HTTP (and RPC, for gRPC) semantic conventions'
//! attributes and Weft's own (`weft.direction`, `weft.route`, `weft.backend`, `weft.retries`,
//! the identities at either end).

use super::ConnInfo;
use crate::{
    http::{ProxyBody, deadline, notes::Notes},
    metrics::Direction,
    trace::Tracing,
};
use http::{Request, Response, Version};
use opentelemetry::{
    Context, KeyValue,
    trace::{SpanKind, Status, TraceContextExt},
};

/// A started span, ended with the response.
pub(super) struct RequestSpan {
    cx: Context,
    direction: Direction,
    grpc: bool,
}

impl RequestSpan {
    /// Starts the span of `req` under the caller's context in its headers, and writes the
    /// span's own context into them for the hop after this one.
    pub(super) fn start<B>(tracing: &Tracing, conn: &ConnInfo, req: &mut Request<B>) -> Self {
        let (parent, b3) = tracing.extract(req.headers());
        let grpc = deadline::is_grpc(req.headers());
        let (kind, direction) = match conn.direction {
            Direction::Inbound => (SpanKind::Server, "inbound"),
            Direction::Outbound => (SpanKind::Client, "outbound"),
        };
        let name = if grpc {
            req.uri().path().trim_start_matches('/').to_string()
        } else {
            req.method().as_str().to_string()
        };
        let cx = tracing.span(
            kind,
            name,
            request_attributes(req, conn, direction, grpc),
            &parent,
        );
        tracing.inject(&cx, req.headers_mut(), b3);
        Self {
            cx,
            direction: conn.direction,
            grpc,
        }
    }

    /// Records the outcome (`None`: no response) and what the layers inside learned, and
    /// ends the span.
    pub(super) fn end(self, rsp: Option<&Response<ProxyBody>>, notes: &Notes) {
        let span = self.cx.span();
        if !span.is_recording() {
            return;
        }
        let mut attrs = Vec::with_capacity(8);
        let text = |v: &Option<std::sync::Arc<str>>| v.as_deref().map(str::to_string);
        for (key, value) in [
            ("weft.route", text(&notes.route)),
            ("weft.backend", text(&notes.backend)),
            ("weft.dst_service", text(&notes.parent)),
            ("weft.server_id", text(&notes.server_id)),
            (
                "network.peer.address",
                notes.endpoint.map(|e| e.ip().to_string()),
            ),
        ] {
            if let Some(v) = value {
                attrs.push(KeyValue::new(key, v));
            }
        }
        if let Some(e) = notes.endpoint {
            attrs.push(KeyValue::new("network.peer.port", i64::from(e.port())));
        }
        if notes.retries > 0 {
            attrs.push(KeyValue::new("weft.retries", i64::from(notes.retries)));
        }
        let status = match rsp {
            None => {
                attrs.push(KeyValue::new("error.type", "no_response"));
                Status::error("no response")
            }
            Some(rsp) => {
                let code = rsp.status().as_u16();
                attrs.push(KeyValue::new("http.response.status_code", i64::from(code)));
                if let Some(reason) = rsp.headers().get(crate::http::PROXY_ERROR) {
                    let reason = reason.to_str().unwrap_or("").to_string();
                    attrs.push(KeyValue::new("weft.proxy_error", reason));
                }
                let grpc_status = self
                    .grpc
                    .then(|| crate::retry::grpc_status(rsp.headers()))
                    .flatten();
                if let Some(s) = grpc_status {
                    attrs.push(KeyValue::new("rpc.grpc.status_code", i64::from(s)));
                }
                // Servers fail on 5xx; clients also on 4xx (semantic conventions).
                let failed = code >= 500
                    || (code >= 400 && self.direction == Direction::Outbound)
                    || grpc_status.is_some_and(|s| s != 0);
                if failed {
                    attrs.push(KeyValue::new("error.type", code.to_string()));
                    Status::error(format!("status {code}"))
                } else {
                    Status::Unset
                }
            }
        };
        span.set_attributes(attrs);
        span.set_status(status);
        span.end();
    }
}

fn request_attributes<B>(
    req: &Request<B>,
    conn: &ConnInfo,
    direction: &'static str,
    grpc: bool,
) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(12);
    attrs.push(KeyValue::new("weft.direction", direction));
    attrs.push(KeyValue::new(
        "http.request.method",
        req.method().as_str().to_string(),
    ));
    attrs.push(KeyValue::new("url.path", req.uri().path().to_string()));
    attrs.push(KeyValue::new("url.scheme", "http"));
    let version = match req.version() {
        Version::HTTP_2 => "2",
        Version::HTTP_10 => "1.0",
        _ => "1.1",
    };
    attrs.push(KeyValue::new("network.protocol.version", version));
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    let (host, port) = match authority.as_deref().map(|a| a.rsplit_once(':')) {
        Some(Some((host, port))) => (Some(host.to_string()), port.parse::<i64>().ok()),
        Some(None) => (authority.clone(), None),
        None => (None, None),
    };
    attrs.push(KeyValue::new(
        "server.address",
        host.unwrap_or_else(|| conn.target.ip().to_string()),
    ));
    attrs.push(KeyValue::new(
        "server.port",
        port.unwrap_or(i64::from(conn.target.port())),
    ));
    if conn.direction == Direction::Inbound {
        attrs.push(KeyValue::new("client.address", conn.peer.ip().to_string()));
        if let Some(id) = &conn.client_id {
            attrs.push(KeyValue::new("weft.client_id", id.to_string()));
        }
    }
    if let Some(ua) = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attrs.push(KeyValue::new("user_agent.original", ua.to_string()));
    }
    if grpc {
        attrs.push(KeyValue::new("rpc.system", "grpc"));
        let path = req.uri().path().trim_start_matches('/');
        if let Some((service, method)) = path.split_once('/') {
            attrs.push(KeyValue::new("rpc.service", service.to_string()));
            attrs.push(KeyValue::new("rpc.method", method.to_string()));
        }
    }
    attrs
}
