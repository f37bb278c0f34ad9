use super::*;
use crate::policy::{
    Backend, Distribution, HttpRoute, HttpRoutes, PathMatch, RequestMatch, RouteBackend, Rule,
    Timeouts,
};
use http::{Method, Request};
use std::sync::Arc;

fn parts(uri: &str, headers: &[(&'static str, &'static str)]) -> request::Parts {
    let mut req = Request::builder().uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(()).expect("valid test request").into_parts().0
}

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    let values = headers.get_all(name).iter();
    values
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect()
}

fn hv(s: &'static str) -> HeaderValue {
    HeaderValue::from_static(s)
}

fn redirect() -> Redirect {
    Redirect {
        scheme: None,
        host: None,
        port: None,
        path: None,
        status: DEFAULT_REDIRECT_STATUS,
    }
}

/// The `Location` a redirect produces for a request.
fn location(r: Redirect, prefix: Option<&str>, uri: &str, host: Option<&'static str>) -> String {
    let mut p = parts(uri, &[]);
    if let Some(host) = host {
        p.headers.insert(header::HOST, hv(host));
    }
    match apply_request_matched(&[Filter::Redirect(r)], prefix, &mut p) {
        Err(Synthetic::Redirect { location, .. }) => location.to_string(),
        other => panic!("expected a redirect, got {other:?}"),
    }
}

#[test]
fn header_modifier_adds_then_sets_then_removes() {
    let modifier = HeaderModifier {
        add: vec![
            (HeaderName::from_static("x-a"), hv("2")),
            (HeaderName::from_static("x-gone"), hv("1")),
        ],
        set: vec![(HeaderName::from_static("x-b"), hv("new"))],
        remove: vec![
            HeaderName::from_static("x-gone"),
            HeaderName::from_static("x-c"),
        ],
    };
    let mut p = parts(
        "/",
        &[("x-a", "1"), ("x-b", "old1"), ("x-b", "old2"), ("X-C", "1")],
    );
    let filters = [
        Filter::RequestHeaders(modifier.clone()),
        Filter::ResponseHeaders(HeaderModifier::default()),
    ];
    assert_eq!(apply_request(&filters, &mut p), Ok(()));
    assert_eq!(values(&p.headers, "x-a"), ["1", "2"], "add appends");
    assert_eq!(
        values(&p.headers, "x-b"),
        ["new"],
        "set replaces every value"
    );
    assert!(p.headers.get("x-gone").is_none(), "remove runs after add");
    assert!(p.headers.get("x-c").is_none(), "names are case-insensitive");

    // Response filters only touch responses, and request filters only requests.
    let mut rsp = HeaderMap::new();
    apply_response(&[Filter::RequestHeaders(modifier.clone())], &mut rsp);
    assert!(rsp.is_empty());
    apply_response(&[Filter::ResponseHeaders(modifier)], &mut rsp);
    assert_eq!(values(&rsp, "x-a"), ["2"]);
}

#[test]
fn redirect_defaults_to_the_request() {
    let r = redirect();
    assert_eq!(
        location(r.clone(), None, "/a?b=c", Some("web:8080")),
        "http://web:8080/a?b=c"
    );
    assert_eq!(location(r, None, "https://web/a", None), "https://web/a");
}

#[test]
fn redirect_overrides_host_port_and_scheme() {
    let host = Redirect {
        host: Some("other.example".into()),
        ..redirect()
    };
    assert_eq!(
        location(host, None, "/a", Some("web:8080")),
        "http://other.example:8080/a"
    );

    let port = Redirect {
        port: Some(9090),
        ..redirect()
    };
    assert_eq!(
        location(port, None, "/a", Some("web:8080")),
        "http://web:9090/a"
    );

    let default_port = Redirect {
        port: Some(80),
        ..redirect()
    };
    assert_eq!(
        location(default_port, None, "/a", Some("web:8080")),
        "http://web/a"
    );

    // A new scheme without a port means that scheme's well-known port.
    let https = Redirect {
        scheme: Some(Scheme::HTTPS),
        ..redirect()
    };
    assert_eq!(
        location(https, None, "/a", Some("web:8080")),
        "https://web/a"
    );

    let https_port = Redirect {
        scheme: Some(Scheme::HTTPS),
        port: Some(8443),
        ..redirect()
    };
    assert_eq!(
        location(https_port, None, "/a", Some("web")),
        "https://web:8443/a"
    );
}

#[test]
fn redirect_paths() {
    let full = |p: &str| Redirect {
        path: Some(PathModifier::Full(p.into())),
        ..redirect()
    };
    assert_eq!(
        location(full("/new"), None, "/old?q=1", Some("web")),
        "http://web/new?q=1"
    );
    assert_eq!(
        location(full("/new?x=2"), None, "/old?q=1", Some("web")),
        "http://web/new?x=2"
    );

    let pfx = |p: &str| Redirect {
        path: Some(PathModifier::Prefix(p.into())),
        ..redirect()
    };
    let cases = [
        ("/foo", "/xyz", "/foo/bar?q=1", "http://web/xyz/bar?q=1"),
        ("/foo/", "/xyz", "/foo/bar", "http://web/xyz/bar"),
        ("/foo", "/xyz/", "/foo", "http://web/xyz"),
        ("/foo", "/", "/foo/bar", "http://web/bar"),
        ("/foo", "/", "/foo", "http://web/"),
        ("/", "/xyz", "/foo/bar", "http://web/xyz/foo/bar"),
    ];
    for (matched, new, uri, expected) in cases {
        assert_eq!(
            location(pfx(new), Some(matched), uri, Some("web")),
            expected,
            "{matched} -> {new} on {uri}"
        );
    }
}

#[test]
fn redirects_that_cannot_be_built_fail_with_500() {
    let pfx = Redirect {
        path: Some(PathModifier::Prefix("/x".into())),
        ..redirect()
    };
    let mut p = parts("/a", &[("host", "web")]);
    let err = apply_request(&[Filter::Redirect(pfx)], &mut p).expect_err("must not forward");
    assert!(
        matches!(
            err,
            Synthetic::Failure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                ..
            }
        ),
        "{err:?}"
    );

    let mut p = parts("/a", &[]);
    let err = apply_request(&[Filter::Redirect(redirect())], &mut p).expect_err("must not forward");
    assert!(
        matches!(
            err,
            Synthetic::Failure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn prefix_redirect_through_a_route_match() {
    let backend = Arc::new(Backend::forward(([10, 0, 0, 1], 80).into()));
    let rule = Rule {
        matches: vec![RequestMatch {
            path: Some(PathMatch::Prefix("/old".into())),
            ..RequestMatch::default()
        }],
        filters: vec![Filter::Redirect(Redirect {
            path: Some(PathModifier::Prefix("/new".into())),
            status: StatusCode::FOUND,
            ..redirect()
        })],
        backends: Distribution::FirstAvailable(vec![RouteBackend::new(backend)]),
        timeouts: Timeouts::default(),
        retry: None,
    };
    let routes = HttpRoutes {
        routes: vec![HttpRoute {
            name: "r".into(),
            hosts: Vec::new(),
            rules: vec![rule],
        }],
        failure_accrual: None,
    };
    let mut p = parts("/old/page?x=1", &[("host", "web.shop:8080")]);
    let found = routes
        .select(&Method::GET, &p.uri, &p.headers)
        .expect("matches");
    let synthetic = found.apply_request(&mut p).expect_err("redirects");
    let rsp = synthetic.to_response();
    assert_eq!(rsp.status(), StatusCode::FOUND);
    assert_eq!(
        rsp.headers()[header::LOCATION],
        "http://web.shop:8080/new/page?x=1"
    );
}

#[test]
fn failure_injection_ratio() {
    let inject = |numerator, denominator| FailureInjector {
        response: FailureResponse::Http(StatusCode::SERVICE_UNAVAILABLE),
        message: "injected".into(),
        numerator,
        denominator,
    };
    let mut rng = fastrand::Rng::with_seed(5);
    assert!((0..1000).all(|_| inject(1, 1).sample_with(&mut rng)));
    assert!((0..1000).all(|_| !inject(0, 1).sample_with(&mut rng)));
    assert!(
        (0..1000).all(|_| !inject(1, 0).sample_with(&mut rng)),
        "invalid ratio never fails"
    );
    let failed = (0..10_000)
        .filter(|_| inject(1, 4).sample_with(&mut rng))
        .count();
    // Expected 2,500; the standard deviation is ~43, so +-300 cannot fail by chance.
    assert!(
        (2_200..=2_800).contains(&failed),
        "{failed} of 10000 failed at 1/4"
    );

    let mut p = parts("/", &[]);
    let filters = [
        Filter::FailureInjector(inject(1, 1)),
        Filter::RequestHeaders(HeaderModifier {
            add: vec![(HeaderName::from_static("x-after"), hv("1"))],
            ..HeaderModifier::default()
        }),
    ];
    let err = apply_request(&filters, &mut p).expect_err("always fails");
    assert_eq!(
        err,
        Synthetic::Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "injected".into()
        }
    );
    assert!(
        p.headers.get("x-after").is_none(),
        "filters stop at the failure"
    );
    let rsp = err.to_response();
    assert_eq!(rsp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rsp.headers()[crate::http::PROXY_ERROR], "injected");
}

#[test]
fn grpc_failures_are_trailers_only() {
    let synthetic = Synthetic::GrpcFailure {
        code: 14,
        message: "down 100%\n".into(),
    };
    let rsp = synthetic.to_response();
    assert_eq!(rsp.status(), StatusCode::OK);
    assert_eq!(rsp.headers()[header::CONTENT_TYPE], "application/grpc");
    assert_eq!(rsp.headers()["grpc-status"], "14");
    assert_eq!(rsp.headers()["grpc-message"], "down 100%25%0A");
}

#[test]
fn denials() {
    let filters = [
        Filter::RequestHeaders(HeaderModifier::default()),
        Filter::Deny(Deny::Forbidden),
    ];
    assert_eq!(denied(&filters), Some(&Deny::Forbidden));
    assert_eq!(denied(&filters[..1]), None);
    let mut p = parts("/", &[]);
    let err = apply_request(&filters, &mut p).expect_err("denied");
    assert!(matches!(
        err,
        Synthetic::Failure {
            status: StatusCode::FORBIDDEN,
            ..
        }
    ));
    let err = apply_request(&[Filter::Deny(Deny::Invalid("bad ref".into()))], &mut p)
        .expect_err("denied");
    assert_eq!(
        err.to_response().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}
