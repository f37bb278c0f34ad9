//! Matches from the proto, validated (regexes compiled once, here).

use super::{
    HeaderMatch, HostMatch, PathMatch, QueryParamMatch, RequestMatch, ValueMatch, anchored,
};
use crate::policy::{At, InvalidPolicy, indexed, required};
use http::{HeaderName, Method};
use weft_proto::http_route as proto;

impl TryFrom<proto::HostMatch> for HostMatch {
    type Error = InvalidPolicy;

    fn try_from(proto: proto::HostMatch) -> Result<Self, Self::Error> {
        Ok(match required(proto.r#match, "match")? {
            proto::host_match::Match::Exact(name) => Self::Exact(name),
            proto::host_match::Match::Suffix(s) => Self::Suffix {
                reverse_labels: s.reverse_labels,
            },
        })
    }
}

impl TryFrom<proto::HttpRouteMatch> for RequestMatch {
    type Error = InvalidPolicy;

    fn try_from(proto: proto::HttpRouteMatch) -> Result<Self, Self::Error> {
        use proto::path_match::Kind;
        let path = match proto.path.map(|p| required(p.kind, "kind").at("path")) {
            None => None,
            Some(kind) => Some(match kind? {
                Kind::Exact(p) => PathMatch::Exact(p),
                Kind::Prefix(p) => PathMatch::Prefix(p),
                Kind::Regex(re) => PathMatch::Regex(anchored(&re).at("path")?),
            }),
        };
        let method = proto
            .method
            .map(|m| {
                let shown = format!("{m:?}");
                Method::try_from(m).map_err(|_| {
                    InvalidPolicy::value("method", shown, "an HTTP method").within("method")
                })
            })
            .transpose()?;
        Ok(Self {
            path,
            headers: header_matches(proto.headers)?,
            query_params: indexed(proto.query_params, "query_params", query_param)?,
            method,
        })
    }
}

/// Converts header matches (shared by HTTP and gRPC matches).
pub(in crate::policy) fn header_matches(
    headers: Vec<proto::HeaderMatch>,
) -> Result<Vec<HeaderMatch>, InvalidPolicy> {
    indexed(headers, "headers", |h| {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
            InvalidPolicy::value("header name", &h.name, "an HTTP header name").within("name")
        })?;
        let value = match required(h.value, "value")? {
            proto::header_match::Value::Exact(bytes) => ValueMatch::Exact(bytes),
            proto::header_match::Value::Regex(re) => ValueMatch::Regex(anchored(&re).at("value")?),
        };
        Ok(HeaderMatch { name, value })
    })
}

fn query_param(q: proto::QueryParamMatch) -> Result<QueryParamMatch, InvalidPolicy> {
    if q.name.is_empty() {
        return Err(InvalidPolicy::value("name", "", "a query parameter name").within("name"));
    }
    let value = match required(q.value, "value")? {
        proto::query_param_match::Value::Exact(v) => ValueMatch::Exact(v),
        proto::query_param_match::Value::Regex(re) => ValueMatch::Regex(anchored(&re).at("value")?),
    };
    Ok(QueryParamMatch {
        name: q.name,
        value,
    })
}
