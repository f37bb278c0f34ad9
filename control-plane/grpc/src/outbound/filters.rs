//! Route and backend filters to protobuf, and the failure an unusable backend answers with.

use weft_controller_core::outbound::{HeaderModifier, HttpFilter, PathModifier, RequestRedirect};
use weft_proto::{
    grpc_route as grpc_proto, http_route as route,
    http_types::{self, Scheme},
    outbound::{grpc_route, http_route},
};

pub(super) fn http_filter(f: &HttpFilter) -> http_route::Filter {
    use http_route::filter::Kind;
    http_route::Filter {
        kind: Some(match f {
            HttpFilter::RequestHeaders(m) => {
                let (add, set, remove) = header_modifier(m);
                Kind::RequestHeaderModifier(route::RequestHeaderModifier { add, set, remove })
            }
            HttpFilter::ResponseHeaders(m) => {
                let (add, set, remove) = header_modifier(m);
                Kind::ResponseHeaderModifier(route::ResponseHeaderModifier { add, set, remove })
            }
            HttpFilter::Redirect(r) => Kind::Redirect(redirect(r)),
        }),
    }
}

/// gRPC routes can only change request headers; other filters were dropped by the index
/// already, and are skipped here should one slip through.
pub(super) fn grpc_filter(f: &HttpFilter) -> Option<grpc_route::Filter> {
    match f {
        HttpFilter::RequestHeaders(m) => {
            let (add, set, remove) = header_modifier(m);
            let kind =
                grpc_route::filter::Kind::RequestHeaderModifier(route::RequestHeaderModifier {
                    add,
                    set,
                    remove,
                });
            Some(grpc_route::Filter { kind: Some(kind) })
        }
        other => {
            tracing::warn!(filter = ?other, "GRPCRoutes support only request header filters");
            None
        }
    }
}

type Modifier = (
    Option<http_types::Headers>,
    Option<http_types::Headers>,
    Vec<String>,
);

fn header_modifier(m: &HeaderModifier) -> Modifier {
    let headers = |pairs: &[(String, String)]| http_types::Headers {
        headers: pairs
            .iter()
            .map(|(name, value)| http_types::headers::Header {
                name: name.clone(),
                value: value.clone().into_bytes(),
            })
            .collect(),
    };
    (
        Some(headers(&m.add)),
        Some(headers(&m.set)),
        m.remove.clone(),
    )
}

fn redirect(r: &RequestRedirect) -> route::RequestRedirect {
    route::RequestRedirect {
        scheme: r.scheme.as_deref().map(Scheme::from),
        host: r.hostname.clone().unwrap_or_default(),
        path: r.path.as_ref().map(|p| route::PathModifier {
            replace: Some(match p {
                PathModifier::Full(p) => route::path_modifier::Replace::Full(p.clone()),
                PathModifier::Prefix(p) => route::path_modifier::Replace::Prefix(p.clone()),
            }),
        }),
        port: r.port.map(u32::from).unwrap_or_default(),
        // Unset means 301 to the proxy, but Gateway API's default is 302.
        status: u32::from(r.status.unwrap_or(302)),
    }
}

/// Fails every request (`ratio` unset) to an unusable backend, as Linkerd does.
pub(super) fn http_failure(message: String) -> http_route::Filter {
    http_route::Filter {
        kind: Some(http_route::filter::Kind::FailureInjector(
            route::HttpFailureInjector {
                status: 500,
                message,
                ratio: None,
            },
        )),
    }
}

/// The gRPC form: Linkerd sends 500 here too, which is no gRPC code; Weft sends INTERNAL (13).
pub(super) fn grpc_failure(message: String) -> grpc_route::Filter {
    grpc_route::Filter {
        kind: Some(grpc_route::filter::Kind::FailureInjector(
            grpc_proto::GrpcFailureInjector {
                code: 13,
                message,
                ratio: None,
            },
        )),
    }
}
