use super::*;
use crate::policy::{BackendKind, HeaderMatch, PathMatch, QueryParamMatch, ValueMatch, matches};
use http::{HeaderName, HeaderValue};
use regex::Regex;

// Each rule sends to its own port, so the port names the rule a request took.

fn rule(port: u16, matches: Vec<RequestMatch>) -> Rule {
    let backend = Arc::new(Backend::forward(([10, 0, 0, 1], port).into()));
    Rule {
        matches,
        filters: Vec::new(),
        backends: Distribution::FirstAvailable(vec![RouteBackend::new(backend)]),
        timeouts: Timeouts::default(),
        retry: None,
    }
}

fn route(hosts: Vec<HostMatch>, rules: Vec<Rule>) -> HttpRoute {
    HttpRoute {
        name: "test".into(),
        hosts,
        rules,
    }
}

fn routes(routes: Vec<HttpRoute>) -> HttpRoutes {
    HttpRoutes {
        routes,
        failure_accrual: None,
    }
}

/// Shorthand for the common case: one route, no hosts.
fn rules(rules: Vec<Rule>) -> HttpRoutes {
    routes(vec![route(Vec::new(), rules)])
}

fn on_path(path: PathMatch) -> RequestMatch {
    RequestMatch {
        path: Some(path),
        ..RequestMatch::default()
    }
}

fn exact(p: &str) -> PathMatch {
    PathMatch::Exact(p.to_string())
}

fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.to_string())
}

fn regex(re: &str) -> Regex {
    matches::anchored(re).expect("test regex compiles")
}

fn header(name: &'static str, value: &str) -> HeaderMatch {
    HeaderMatch {
        name: HeaderName::from_static(name),
        value: ValueMatch::Exact(value.as_bytes().to_vec()),
    }
}

fn query(name: &str, value: &str) -> QueryParamMatch {
    QueryParamMatch {
        name: name.to_string(),
        value: ValueMatch::Exact(value.to_string()),
    }
}

/// The port of the rule a request takes.
fn pick(
    routes: &HttpRoutes,
    method: Method,
    uri: &str,
    headers: &[(&'static str, &[u8])],
) -> Option<u16> {
    let uri: Uri = uri.parse().expect("test URI parses");
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            *name,
            HeaderValue::from_bytes(value).expect("test header value"),
        );
    }
    let found = routes.select(&method, &uri, &map)?;
    match &found.rule.backends.backends().first()?.backend.kind {
        BackendKind::Forward { addr, .. } => Some(addr.port()),
        BackendKind::Balancer { .. } | BackendKind::Unavailable => None,
    }
}

fn get(routes: &HttpRoutes, uri: &str) -> Option<u16> {
    pick(routes, Method::GET, uri, &[])
}

#[test]
fn path_precedence_exact_prefix_regex_none() {
    let table = rules(vec![
        rule(1, vec![RequestMatch::default()]),
        rule(2, vec![on_path(PathMatch::Regex(regex("/foo/.*")))]),
        rule(3, vec![on_path(prefix("/foo"))]),
        rule(4, vec![on_path(prefix("/foo/bar"))]),
        rule(5, vec![on_path(exact("/foo/bar"))]),
    ]);
    assert_eq!(get(&table, "/foo/bar"), Some(5), "exact beats everything");
    assert_eq!(
        get(&table, "/foo/bar/baz"),
        Some(4),
        "the longer prefix wins"
    );
    assert_eq!(get(&table, "/foo/x"), Some(3), "a prefix beats a regex");
    assert_eq!(
        get(&table, "/other"),
        Some(1),
        "no path constraint is the fallback"
    );

    let table = rules(vec![
        rule(1, vec![RequestMatch::default()]),
        rule(2, vec![on_path(PathMatch::Regex(regex("/foo/.*")))]),
    ]);
    assert_eq!(get(&table, "/foo/x"), Some(2), "a regex beats no path");
}

#[test]
fn prefixes_match_whole_segments() {
    let table = rules(vec![rule(1, vec![on_path(prefix("/foo"))])]);
    assert_eq!(get(&table, "/foo"), Some(1));
    assert_eq!(get(&table, "/foo/"), Some(1));
    assert_eq!(get(&table, "/foo/bar"), Some(1));
    assert_eq!(get(&table, "/foobar"), None);
    assert_eq!(get(&table, "/fo"), None);

    let table = rules(vec![rule(1, vec![on_path(prefix("/foo/"))])]);
    assert_eq!(
        get(&table, "/foo"),
        Some(1),
        "a trailing slash in the prefix is ignored"
    );
    assert_eq!(get(&table, "/foobar"), None);

    let table = rules(vec![rule(1, vec![on_path(prefix("/"))])]);
    assert_eq!(get(&table, "/"), Some(1));
    assert_eq!(get(&table, "/anything/at/all?q=1"), Some(1));
}

#[test]
fn regexes_match_the_whole_path() {
    let table = rules(vec![rule(
        1,
        vec![on_path(PathMatch::Regex(regex("/a|/ab")))],
    )]);
    assert_eq!(
        get(&table, "/ab"),
        Some(1),
        "leftmost-first would stop at /a"
    );
    assert_eq!(get(&table, "/abc"), None);
    assert_eq!(get(&table, "/x/ab"), None);
}

#[test]
fn method_then_headers_then_query_params() {
    let with = |method: Option<Method>, headers: usize, query_params: usize| RequestMatch {
        path: Some(prefix("/")),
        method,
        headers: (0..headers).map(|_| header("x-a", "1")).collect(),
        query_params: (0..query_params).map(|_| query("q", "1")).collect(),
    };
    let table = rules(vec![
        rule(1, vec![with(None, 0, 2)]),
        rule(2, vec![with(None, 1, 0)]),
        rule(3, vec![with(Some(Method::POST), 0, 0)]),
    ]);
    let h: &[(&'static str, &[u8])] = &[("x-a", b"1")];
    assert_eq!(
        pick(&table, Method::POST, "/?q=1", h),
        Some(3),
        "method first"
    );
    assert_eq!(
        pick(&table, Method::GET, "/?q=1", h),
        Some(2),
        "then headers"
    );
    assert_eq!(
        pick(&table, Method::GET, "/?q=1", &[]),
        Some(1),
        "then query params"
    );
    assert_eq!(pick(&table, Method::GET, "/", &[]), None);

    // Path still beats all of them.
    let table = rules(vec![
        rule(1, vec![with(Some(Method::GET), 3, 3)]),
        rule(2, vec![on_path(prefix("/x"))]),
    ]);
    let h: &[(&'static str, &[u8])] = &[("x-a", b"1")];
    assert_eq!(pick(&table, Method::GET, "/x?q=1", h), Some(2));
}

#[test]
fn ties_go_to_the_earlier_route_then_rule() {
    let table = routes(vec![
        route(
            Vec::new(),
            vec![
                rule(1, vec![on_path(prefix("/a"))]),
                rule(2, vec![on_path(prefix("/a"))]),
            ],
        ),
        route(Vec::new(), vec![rule(3, vec![on_path(prefix("/a"))])]),
    ]);
    assert_eq!(get(&table, "/a"), Some(1));

    // A later route still wins on precedence.
    let table = routes(vec![
        route(Vec::new(), vec![rule(1, vec![on_path(prefix("/a"))])]),
        route(Vec::new(), vec![rule(2, vec![on_path(exact("/a"))])]),
    ]);
    assert_eq!(get(&table, "/a"), Some(2));
}

#[test]
fn a_rule_takes_its_best_match() {
    let table = rules(vec![
        rule(1, vec![on_path(prefix("/a/b"))]),
        rule(2, vec![on_path(prefix("/")), on_path(exact("/a/b"))]),
    ]);
    assert_eq!(get(&table, "/a/b"), Some(2));
    assert_eq!(get(&table, "/a/b/c"), Some(1));
    assert_eq!(get(&table, "/z"), Some(2));
}

#[test]
fn no_matches_match_everything_and_no_rule_is_none() {
    let table = rules(vec![rule(1, Vec::new())]);
    assert_eq!(pick(&table, Method::DELETE, "/x/y?z", &[]), Some(1));
    assert_eq!(get(&rules(Vec::new()), "/"), None);
    assert_eq!(get(&HttpRoutes::default(), "/"), None);
}

#[test]
fn hosts() {
    let exact_host = HostMatch::Exact("web.shop.svc.cluster.local".to_string());
    let wildcard = HostMatch::Suffix {
        reverse_labels: vec![
            "local".into(),
            "cluster".into(),
            "svc".into(),
            "shop".into(),
        ],
    };
    let table = routes(vec![
        route(Vec::new(), vec![rule(1, Vec::new())]),
        route(vec![wildcard.clone()], vec![rule(2, Vec::new())]),
        route(vec![exact_host.clone()], vec![rule(3, Vec::new())]),
    ]);
    let host = |h: &'static str| pick(&table, Method::GET, "/", &[("host", h.as_bytes())]);
    assert_eq!(
        host("web.shop.svc.cluster.local:8080"),
        Some(3),
        "exact, port stripped"
    );
    assert_eq!(
        host("WEB.Shop.svc.cluster.local."),
        Some(3),
        "case and the root dot ignored"
    );
    assert_eq!(host("api.shop.svc.cluster.local"), Some(2), "wildcard");
    assert_eq!(
        host("shop.svc.cluster.local"),
        Some(1),
        "a wildcard needs one more label"
    );
    assert_eq!(host("example.com"), Some(1));
    assert_eq!(
        get(&table, "/"),
        Some(1),
        "no host: only routes without hosts"
    );
    assert_eq!(
        get(&table, "http://web.shop.svc.cluster.local/"),
        Some(3),
        "URI authority"
    );

    // Host precedence comes before path precedence.
    let table = routes(vec![
        route(Vec::new(), vec![rule(1, vec![on_path(exact("/a"))])]),
        route(vec![exact_host], vec![rule(2, Vec::new())]),
    ]);
    assert_eq!(
        pick(
            &table,
            Method::GET,
            "/a",
            &[("host", b"web.shop.svc.cluster.local")]
        ),
        Some(2)
    );
}

#[test]
fn headers_match_by_name_case_insensitively_and_value_bytes() {
    let binary = HeaderMatch {
        name: HeaderName::from_bytes(b"X-Bin").expect("valid name"),
        value: ValueMatch::Exact(vec![0xff, b'a']),
    };
    let re = HeaderMatch {
        name: HeaderName::from_static("x-version"),
        value: ValueMatch::Regex(regex("v[0-9]+")),
    };
    let table = rules(vec![
        rule(
            1,
            vec![RequestMatch {
                headers: vec![binary],
                ..RequestMatch::default()
            }],
        ),
        rule(
            2,
            vec![RequestMatch {
                headers: vec![re],
                ..RequestMatch::default()
            }],
        ),
    ]);
    assert_eq!(
        pick(&table, Method::GET, "/", &[("x-bin", &[0xff, b'a'])]),
        Some(1)
    );
    assert_eq!(pick(&table, Method::GET, "/", &[("x-bin", b"a")]), None);
    assert_eq!(
        pick(&table, Method::GET, "/", &[("x-version", b"v2")]),
        Some(2)
    );
    assert_eq!(
        pick(&table, Method::GET, "/", &[("x-version", b"v2-beta")]),
        None
    );
    let two: &[(&'static str, &[u8])] = &[("x-version", b"beta"), ("x-version", b"v3")];
    assert_eq!(
        pick(&table, Method::GET, "/", two),
        Some(2),
        "any value may match"
    );
}

#[test]
fn query_params_use_the_first_occurrence_decoded() {
    let re = QueryParamMatch {
        name: "id".to_string(),
        value: ValueMatch::Regex(regex("[0-9]+")),
    };
    let table = rules(vec![
        rule(
            1,
            vec![RequestMatch {
                query_params: vec![query("name", "a b/c")],
                ..RequestMatch::default()
            }],
        ),
        rule(
            2,
            vec![RequestMatch {
                query_params: vec![re],
                ..RequestMatch::default()
            }],
        ),
    ]);
    assert_eq!(get(&table, "/?name=a+b%2Fc"), Some(1));
    assert_eq!(get(&table, "/?x=1&name=a%20b/c&name=zzz"), Some(1));
    assert_eq!(
        get(&table, "/?name=zzz&name=a+b%2Fc"),
        None,
        "only the first counts"
    );
    assert_eq!(get(&table, "/?id=42"), Some(2));
    assert_eq!(get(&table, "/?id=42x"), None);
    assert_eq!(get(&table, "/?id"), None);
    assert_eq!(get(&table, "/"), None);
}

#[test]
fn the_matched_prefix_is_reported() {
    let table = rules(vec![rule(
        1,
        vec![on_path(prefix("/api/")), on_path(exact("/x"))],
    )]);
    let uri: Uri = "/api/v1".parse().expect("valid");
    let found = table
        .select(&Method::GET, &uri, &HeaderMap::new())
        .expect("matches");
    assert_eq!(found.prefix, Some("/api/"));
    let uri: Uri = "/x".parse().expect("valid");
    let found = table
        .select(&Method::GET, &uri, &HeaderMap::new())
        .expect("matches");
    assert_eq!(found.prefix, None);
}

#[test]
fn forward_takes_everything_to_the_address() {
    let addr = ([10, 1, 2, 3], 8080).into();
    let table = HttpRoutes::forward(Arc::new(Backend::forward(addr)));
    assert_eq!(
        pick(&table, Method::PATCH, "http://any.host/any/path?x=y", &[]),
        Some(8080)
    );
}

#[test]
fn a_rule_names_a_method_only_when_every_match_does() {
    let with = |method: Option<Method>| RequestMatch {
        method,
        ..on_path(prefix("/"))
    };
    let posts = rule(1, vec![with(Some(Method::POST)), with(Some(Method::POST))]);
    assert!(posts.names_method(&Method::POST));
    assert!(!posts.names_method(&Method::PUT));
    let mixed = rule(2, vec![with(Some(Method::POST)), with(None)]);
    assert!(
        !mixed.names_method(&Method::POST),
        "one match takes any method"
    );
    assert!(
        !rule(3, vec![]).names_method(&Method::POST),
        "no matches: any method"
    );
}
