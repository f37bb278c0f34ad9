//! Route matches to protobuf: hosts, paths, headers, query parameters, methods, gRPC calls.

use weft_controller_core::outbound::{
    GrpcMatch, HeaderMatch, HostMatch, HttpMatch, PathMatch, QueryParamMatch, ValueMatch,
};
use weft_proto::{
    grpc_route as grpc_proto, http_route as route,
    http_types::{HttpMethod, http_method},
};

pub(crate) fn any_path() -> route::HttpRouteMatch {
    route::HttpRouteMatch {
        path: Some(route::PathMatch {
            kind: Some(route::path_match::Kind::Prefix("/".to_string())),
        }),
        ..Default::default()
    }
}

pub(crate) fn http_match(m: &HttpMatch) -> route::HttpRouteMatch {
    route::HttpRouteMatch {
        path: m.path.as_ref().map(|p| route::PathMatch {
            kind: Some(match p {
                PathMatch::Exact(p) => route::path_match::Kind::Exact(p.clone()),
                PathMatch::Prefix(p) => route::path_match::Kind::Prefix(p.clone()),
                PathMatch::Regex(p) => route::path_match::Kind::Regex(p.clone()),
            }),
        }),
        headers: m.headers.iter().map(header_match).collect(),
        query_params: m.query_params.iter().map(query_match).collect(),
        method: m.method.as_deref().map(method),
    }
}

pub(super) fn grpc_match(m: &GrpcMatch) -> grpc_proto::GrpcRouteMatch {
    let rpc = (m.service.is_some() || m.method.is_some()).then(|| grpc_proto::GrpcRpcMatch {
        service: m.service.clone().unwrap_or_default(),
        method: m.method.clone().unwrap_or_default(),
    });
    grpc_proto::GrpcRouteMatch {
        rpc,
        headers: m.headers.iter().map(header_match).collect(),
    }
}

pub(super) fn header_match(h: &HeaderMatch) -> route::HeaderMatch {
    route::HeaderMatch {
        name: h.name.clone(),
        value: Some(match &h.value {
            ValueMatch::Exact(v) => route::header_match::Value::Exact(v.clone().into_bytes()),
            ValueMatch::Regex(r) => route::header_match::Value::Regex(r.clone()),
        }),
    }
}

pub(super) fn query_match(q: &QueryParamMatch) -> route::QueryParamMatch {
    route::QueryParamMatch {
        name: q.name.clone(),
        value: Some(match &q.value {
            ValueMatch::Exact(v) => route::query_param_match::Value::Exact(v.clone()),
            ValueMatch::Regex(r) => route::query_param_match::Value::Regex(r.clone()),
        }),
    }
}

pub(super) fn method(m: &str) -> HttpMethod {
    use http_method::Registered as R;
    let registered = match m {
        "GET" => Some(R::Get),
        "POST" => Some(R::Post),
        "PUT" => Some(R::Put),
        "DELETE" => Some(R::Delete),
        "PATCH" => Some(R::Patch),
        "OPTIONS" => Some(R::Options),
        "CONNECT" => Some(R::Connect),
        "HEAD" => Some(R::Head),
        "TRACE" => Some(R::Trace),
        _ => None,
    };
    HttpMethod {
        r#type: Some(match registered {
            Some(r) => http_method::Type::Registered(r.into()),
            None => http_method::Type::Unregistered(m.to_string()),
        }),
    }
}

pub(crate) fn host_match(h: &HostMatch) -> route::HostMatch {
    route::HostMatch {
        r#match: Some(match h {
            HostMatch::Exact(host) => route::host_match::Match::Exact(host.clone()),
            // `*.example.com` is sent as ["com", "example"].
            HostMatch::Suffix(suffix) => {
                route::host_match::Match::Suffix(route::host_match::Suffix {
                    reverse_labels: suffix.split('.').rev().map(str::to_string).collect(),
                })
            }
        }),
    }
}
