//! Building a redirect's `Location` from the request (Gateway API `RequestRedirect`).

use super::{PathModifier, Redirect, Synthetic};
use http::{
    HeaderMap, StatusCode, Uri, header,
    uri::{Authority, Scheme},
};

impl Redirect {
    /// The redirect for a request, or a 500 if none can be built (no host known, or a prefix
    /// replacement on a rule that did not match by prefix, which the proto forbids serving).
    pub fn respond(&self, prefix: Option<&str>, uri: &Uri, headers: &HeaderMap) -> Synthetic {
        match self.location(prefix, uri, headers) {
            Ok(location) => Synthetic::Redirect {
                status: self.status,
                location,
            },
            Err(message) => Synthetic::Failure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("invalid redirect: {message}"),
            },
        }
    }

    fn location(
        &self,
        prefix: Option<&str>,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Uri, String> {
        let scheme = self
            .scheme
            .clone()
            .or_else(|| uri.scheme().cloned())
            .unwrap_or(Scheme::HTTP);
        let authority = uri.authority().cloned().or_else(|| {
            let host = headers.get(header::HOST)?;
            Authority::try_from(host.as_bytes()).ok()
        });
        let host = match (&self.host, &authority) {
            (Some(host), _) => host.as_str(),
            (None, Some(a)) => a.host(),
            (None, None) => return Err("the request has no host".to_string()),
        };
        // Gateway API: a new scheme without a port means that scheme's well-known port.
        let port = match (self.port, &self.scheme) {
            (Some(port), _) => Some(port),
            (None, Some(_)) => None,
            (None, None) => authority.as_ref().and_then(Authority::port_u16),
        };
        let authority = match port.filter(|&p| !is_default_port(&scheme, p)) {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path_and_query = self.path_and_query(prefix, uri)?;
        Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| e.to_string())
    }

    fn path_and_query(&self, prefix: Option<&str>, uri: &Uri) -> Result<String, String> {
        let with_query = |path: String| match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        match &self.path {
            None => Ok(uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_string()),
            Some(PathModifier::Full(path)) if path.contains('?') => Ok(path.clone()),
            Some(PathModifier::Full(path)) => Ok(with_query(path.clone())),
            Some(PathModifier::Prefix(new)) => {
                let prefix = prefix.ok_or("a prefix replacement needs a prefix match")?;
                let rest = uri
                    .path()
                    .strip_prefix(prefix.trim_end_matches('/'))
                    .ok_or("the path does not start with the matched prefix")?;
                let mut path = new.trim_end_matches('/').to_string();
                if !rest.is_empty() && !rest.starts_with('/') {
                    path.push('/');
                }
                path.push_str(rest);
                if path.is_empty() {
                    path.push('/');
                }
                Ok(with_query(path))
            }
        }
    }
}

fn is_default_port(scheme: &Scheme, port: u16) -> bool {
    (*scheme == Scheme::HTTP && port == 80) || (*scheme == Scheme::HTTPS && port == 443)
}
