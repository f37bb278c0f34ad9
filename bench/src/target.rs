//! The URL under load: parsed once, resolved once, turned into one request per scheduled send.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri, header, uri::PathAndQuery};
use http_body_util::Full;
use std::{fmt, io, net::SocketAddr, str::FromStr};

/// A URL that cannot be used as a load target.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL `{input}`: {reason}; expected e.g. `http://10.1.2.3:8080/`")]
pub struct InvalidTarget {
    /// The text as given.
    pub input: String,
    /// What was wrong with it.
    pub reason: String,
}

/// The target's host name could not be turned into an address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The resolver failed.
    #[error("cannot resolve `{host}`")]
    Lookup {
        /// The host name from the URL.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The resolver answered with no addresses.
    #[error("`{host}` resolved to no addresses")]
    NoAddress {
        /// The host name from the URL.
        host: String,
    },
}

/// A plain-HTTP URL to send every request to.
#[derive(Clone, Debug)]
pub struct Target {
    url: Uri,
    host: String,
    port: u16,
    authority: HeaderValue,
    path: PathAndQuery,
}

// === impl Target ===

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| InvalidTarget {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let url: Uri = input
            .trim()
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        match url.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "https is not supported: the load generator speaks plain HTTP/1.1, \
                     the mesh adds TLS between proxies",
                ));
            }
            Some(_) => return Err(invalid("the scheme must be `http`")),
            None => {
                return Err(invalid(
                    "the scheme is missing; start the URL with `http://`",
                ));
            }
        }
        let authority = url
            .authority()
            .ok_or_else(|| invalid("the host is missing"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("the host is missing"));
        }
        let header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| invalid("the host is not a valid Host header"))?;
        let path = url
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Ok(Self {
            port: authority.port_u16().unwrap_or(80),
            host,
            authority: header,
            path,
            url,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.url.fmt(f)
    }
}

impl Target {
    /// The URL as given.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Resolves the host once; every connection goes to the first address returned.
    pub async fn resolve(&self) -> Result<SocketAddr, ResolveError> {
        let mut addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: self.host.clone(),
                source,
            })?;
        addrs.next().ok_or_else(|| ResolveError::NoAddress {
            host: self.host.clone(),
        })
    }

    /// Builds one request: `GET` when `body` is empty, otherwise `POST` with `body`.
    pub(crate) fn request(&self, body: &Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body.clone()));
        if !body.is_empty() {
            *request.method_mut() = Method::POST;
        }
        *request.uri_mut() = Uri::from(self.path.clone());
        request
            .headers_mut()
            .insert(header::HOST, self.authority.clone());
        request
    }

    /// The same request as bytes on the wire, asking the server to close the connection after
    /// answering: what a one-request connection sends.
    pub(crate) fn closing_request(&self, body: &Bytes) -> Bytes {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let mut head = format!("{method} {} HTTP/1.1\r\nhost: ", self.path).into_bytes();
        head.extend_from_slice(self.authority.as_bytes());
        head.extend_from_slice(b"\r\nconnection: close\r\n");
        if !body.is_empty() {
            head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(body);
        head.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Target {
        s.parse().expect(s)
    }

    #[test]
    fn origin_form_request_with_host() {
        let t = target("http://10.1.2.3:8080/ping?x=1");
        let req = t.request(&Bytes::new());
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri(), "/ping?x=1");
        assert_eq!(req.headers()[header::HOST], "10.1.2.3:8080");
        assert_eq!((t.host.as_str(), t.port), ("10.1.2.3", 8080));

        let post = t.request(&Bytes::from_static(b"abc"));
        assert_eq!(post.method(), Method::POST);
    }

    #[test]
    fn closing_request_on_the_wire() {
        let t = target("http://10.1.2.3:8080/ping?x=1");
        assert_eq!(
            t.closing_request(&Bytes::new()),
            "GET /ping?x=1 HTTP/1.1\r\nhost: 10.1.2.3:8080\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(
            t.closing_request(&Bytes::from_static(b"abc")),
            "POST /ping?x=1 HTTP/1.1\r\nhost: 10.1.2.3:8080\r\nconnection: close\r\n\
             content-length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn defaults_port_and_path() {
        let t = target("http://example.test");
        assert_eq!((t.host.as_str(), t.port), ("example.test", 80));
        assert_eq!(t.request(&Bytes::new()).uri(), "/");

        let v6 = target("http://[::1]:9/");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9));
    }

    #[test]
    fn rejects_what_it_cannot_send_to() {
        let reason = |s: &str| s.parse::<Target>().expect_err(s).reason;
        assert!(reason("https://a:1/").contains("https is not supported"));
        assert!(reason("ftp://a/").contains("scheme must be `http`"));
        assert!(reason("10.1.2.3:8080").contains("scheme"));
        assert!(reason("/path").contains("scheme is missing"));
        assert!(reason("http://u:p@a/").contains("credentials"));
        assert!(!reason("http://a b/").is_empty());
    }
}
