//! Request matchers (Gateway API `HTTPRouteMatch` and hostnames) and how a match ranks.

pub(super) mod convert;

use super::{Invalid, InvalidPolicy};
use http::{HeaderMap, HeaderName, Method};
use regex::Regex;
use std::borrow::Cow;

/// Matches the request's host (the URI authority or the `Host` header, without port).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostMatch {
    /// The whole name, case-insensitively: `www.example.com`.
    Exact(String),
    /// A wildcard `*.example.com`, stored as reversed labels `["com", "example"]`; it needs at
    /// least one more label in front.
    Suffix {
        /// The suffix's labels, last label first.
        reverse_labels: Vec<String>,
    },
}

/// One way a rule can match a request; every part that is set must apply.
#[derive(Clone, Debug, Default)]
pub struct RequestMatch {
    /// The path, if the match constrains it.
    pub path: Option<PathMatch>,
    /// Headers that must all match.
    pub headers: Vec<HeaderMatch>,
    /// Query parameters that must all match.
    pub query_params: Vec<QueryParamMatch>,
    /// The method, if the match constrains it.
    pub method: Option<Method>,
}

/// How a path is matched.
#[derive(Clone, Debug)]
pub enum PathMatch {
    /// The whole path.
    Exact(String),
    /// Whole leading path segments: `/foo` matches `/foo` and `/foo/bar`, not `/foobar`.
    Prefix(String),
    /// The whole path matches the expression (anchored at both ends).
    Regex(Regex),
}

/// A header that must be present with a matching value (any of its values may match).
#[derive(Clone, Debug)]
pub struct HeaderMatch {
    /// The header name (case-insensitive, as every header name).
    pub name: HeaderName,
    /// The value match; `Exact` compares bytes.
    pub value: ValueMatch<Vec<u8>>,
}

/// A query parameter that must be present (its first occurrence is the one compared).
#[derive(Clone, Debug)]
pub struct QueryParamMatch {
    /// The parameter name, case-sensitive, after percent-decoding.
    pub name: String,
    /// The value match, after percent-decoding.
    pub value: ValueMatch<String>,
}

/// An exact value or a regular expression anchored at both ends.
#[derive(Clone, Debug)]
pub enum ValueMatch<T> {
    /// Equal to this.
    Exact(T),
    /// Wholly matched by this.
    Regex(Regex),
}

/// How well a host matched; a greater rank wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum HostRank {
    /// The route has no host matches.
    Any,
    /// A wildcard matched this many characters.
    Suffix(usize),
    /// An exact name of this length matched.
    Exact(usize),
}

/// How well a request matched; a greater rank wins. Field order is precedence order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct MatchRank {
    pub(super) path: PathRank,
    pub(super) method: bool,
    pub(super) headers: usize,
    pub(super) query_params: usize,
}

/// Path precedence: exact, then the longest prefix, then regex, then no path constraint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PathRank {
    #[default]
    None,
    Regex,
    Prefix(usize),
    Exact,
}

// === impl HostMatch ===

impl HostMatch {
    pub(super) fn rank(&self, host: &str) -> Option<HostRank> {
        match self {
            Self::Exact(name) => {
                let host = if name.ends_with('.') {
                    host
                } else {
                    host.strip_suffix('.').unwrap_or(host)
                };
                name.eq_ignore_ascii_case(host)
                    .then_some(HostRank::Exact(name.len()))
            }
            Self::Suffix { reverse_labels } => {
                // A leading empty label means the pattern is fully qualified (`*.example.com.`).
                let mut host = match reverse_labels.first() {
                    Some(first) if first.is_empty() => host,
                    _ => host.strip_suffix('.').unwrap_or(host),
                };
                let mut len = 0;
                for label in reverse_labels {
                    let cut = host.len().checked_sub(label.len())?;
                    let (head, tail) = host.split_at_checked(cut)?;
                    if !tail.eq_ignore_ascii_case(label) {
                        return None;
                    }
                    host = head.strip_suffix('.')?;
                    len += label.len() + 1;
                }
                // The wildcard stands for at least one label.
                (!host.is_empty()).then_some(HostRank::Suffix(len))
            }
        }
    }
}

// === impl RequestMatch ===

impl RequestMatch {
    /// The rank of this match for a request, and the matched prefix, or `None` if it fails.
    pub(super) fn rank<'a>(
        &'a self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Option<(MatchRank, Option<&'a str>)> {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return None;
        }
        let (path_rank, prefix) = match &self.path {
            None => (PathRank::None, None),
            Some(m) => m.rank(path)?,
        };
        if !self.headers.iter().all(|h| h.is_match(headers)) {
            return None;
        }
        if !self.query_params.iter().all(|q| q.is_match(query)) {
            return None;
        }
        let rank = MatchRank {
            path: path_rank,
            method: self.method.is_some(),
            headers: self.headers.len(),
            query_params: self.query_params.len(),
        };
        Some((rank, prefix))
    }
}

impl PathMatch {
    fn rank(&self, path: &str) -> Option<(PathRank, Option<&str>)> {
        match self {
            Self::Exact(p) => (p == path).then_some((PathRank::Exact, None)),
            Self::Regex(re) => full_match(re, path).then_some((PathRank::Regex, None)),
            Self::Prefix(prefix) => {
                let trimmed = prefix.trim_end_matches('/');
                let rest = path.strip_prefix(trimmed)?;
                // Only whole segments: the prefix must end where a segment ends.
                (rest.is_empty() || rest.starts_with('/')).then_some((
                    PathRank::Prefix(trimmed.len().max(1)),
                    Some(prefix.as_str()),
                ))
            }
        }
    }
}

impl HeaderMatch {
    fn is_match(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(&self.name)
            .iter()
            .any(|v| match &self.value {
                ValueMatch::Exact(bytes) => v.as_bytes() == bytes.as_slice(),
                ValueMatch::Regex(re) => v.to_str().is_ok_and(|v| full_match(re, v)),
            })
    }
}

impl QueryParamMatch {
    fn is_match(&self, query: Option<&str>) -> bool {
        // Gateway API leaves repeated parameters undefined and recommends the first value.
        let Some(value) = query.and_then(|q| {
            q.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                .find(|(name, _)| decode(name) == self.name)
                .map(|(_, value)| decode(value))
        }) else {
            return false;
        };
        match &self.value {
            ValueMatch::Exact(exact) => *exact == value,
            ValueMatch::Regex(re) => full_match(re, &value),
        }
    }
}

/// Whether `re` (compiled by [`anchored`]) matches all of `s`.
fn full_match(re: &Regex, s: &str) -> bool {
    re.is_match(s)
}

/// Compiles `pattern` so that it must match a whole value. Anchoring the pattern itself matters:
/// checking where an unanchored leftmost-first match ends would reject `a|ab` on `ab`.
pub(super) fn anchored(pattern: &str) -> Result<Regex, InvalidPolicy> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|anchored_error| {
        // Report the error against the pattern as sent, not the wrapped one.
        let error = Regex::new(pattern).err().unwrap_or(anchored_error);
        InvalidPolicy::new(Invalid::Regex {
            regex: pattern.to_string(),
            error: Box::new(error),
        })
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; invalid escapes
/// stay as they are and invalid UTF-8 is replaced.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['+', '%']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}
