//! `inbound.Server` → `InboundPolicy`: every field, and malformed messages.

use super::*;
use crate::inbound::{Authentication, Protocol, Suffix};
use http::{HeaderMap, Method, Uri};
use std::time::Duration;
use weft_proto::http_types;

#[test]
fn a_detect_server_converts_field_by_field() {
    let mut server = server(
        "web-http",
        detect(Vec::new()),
        vec![
            authz(
                "from-pods",
                vec![network("10.0.0.0/8", &["10.9.0.0/16"])],
                unauthenticated(),
            ),
            authz(
                "meshed",
                everywhere(),
                mesh(&[WEB], &["ops.serviceaccount.identity.cluster.local", ""]),
            ),
        ],
    );
    server
        .labels
        .insert("group".into(), "policy.weft.dev".into());
    let p = policy(server);

    assert_eq!(&*p.name, "web-http");
    assert_eq!(
        p.protocol,
        Protocol::Detect {
            timeout: Duration::from_secs(5)
        }
    );
    assert_eq!(p.labels.get("kind").map(String::as_str), Some("server"));
    assert_eq!(p.labels.len(), 3);
    assert!(p.http_routes.is_empty());

    let [from_pods, meshed] = &p.authorizations[..] else {
        panic!("two authorizations: {:?}", p.authorizations);
    };
    assert_eq!(&*from_pods.name, "from-pods");
    assert_eq!(from_pods.networks.len(), 1);
    assert_eq!(from_pods.networks[0].net.to_string(), "10.0.0.0/8");
    assert_eq!(from_pods.networks[0].except[0].to_string(), "10.9.0.0/16");
    assert_eq!(from_pods.authentication, Authentication::Unauthenticated);

    assert_eq!(&*meshed.name, "meshed");
    assert_eq!(meshed.networks.len(), 2);
    let Authentication::TlsAuthenticated {
        identities,
        suffixes,
    } = &meshed.authentication
    else {
        panic!("not mesh TLS: {:?}", meshed.authentication);
    };
    assert_eq!(identities, &[WEB.to_string()]);
    assert_eq!(
        suffixes[0].labels(),
        ["ops", "serviceaccount", "identity", "cluster", "local"]
    );
    assert_eq!(suffixes[1], Suffix::any());
}

#[test]
fn names_come_from_metadata_then_labels() {
    let mut by_label = authz("ignored", everywhere(), unauthenticated());
    by_label.metadata = None;
    by_label.labels.insert("name".into(), "by-label".into());
    let mut default = authz("ignored", everywhere(), unauthenticated());
    default.metadata = Some(meta::Metadata {
        kind: Some(meta::metadata::Kind::Default("all-unauthenticated".into())),
    });
    let mut nameless = authz("ignored", everywhere(), unauthenticated());
    nameless.metadata = None;
    let mut server = server("x", opaque(), vec![by_label, default, nameless]);
    server.labels.clear();
    let p = policy(server);
    let names: Vec<&str> = p.authorizations.iter().map(|a| &*a.name).collect();
    assert_eq!(names, ["by-label", "all-unauthenticated", "unknown"]);
    assert_eq!(&*p.name, "unknown");
}

#[test]
fn every_protocol_kind_converts() {
    use proxy_protocol::Kind;
    let http1 = Kind::Http1(proxy_protocol::Http1 {
        routes: vec![http_route("h1", vec![prefix("/")], vec![], vec![])],
        local_rate_limit: None,
    });
    let http2 = Kind::Http2(proxy_protocol::Http2 {
        routes: vec![http_route("h2", vec![prefix("/")], vec![], vec![])],
        local_rate_limit: None,
    });
    for (kind, protocol, routes) in [
        (opaque(), Protocol::Opaque, 0),
        (Kind::Tls(proxy_protocol::Tls {}), Protocol::Tls, 0),
        (http1, Protocol::Http1, 1),
        (http2, Protocol::Http2, 1),
    ] {
        let p = policy(server("s", kind, vec![]));
        assert_eq!(p.protocol, protocol);
        assert_eq!(p.http_routes.len(), routes, "{protocol:?}");
    }
    assert!(Protocol::Opaque.is_opaque() && Protocol::Tls.is_opaque());
    assert!(!Protocol::Http1.is_opaque());

    // No timeout: the default.
    let p = policy(server(
        "s",
        Kind::Detect(proxy_protocol::Detect {
            timeout: None,
            http_routes: vec![],
            http_local_rate_limit: None,
        }),
        vec![],
    ));
    assert_eq!(
        p.protocol,
        Protocol::Detect {
            timeout: crate::inbound::DEFAULT_DETECT_TIMEOUT
        }
    );
}

#[test]
fn grpc_routes_match_post_to_the_method_path() {
    let route = proto::GrpcRoute {
        metadata: None,
        hosts: Vec::new(),
        authorizations: vec![authz("grpc-clients", everywhere(), mesh(&[WEB], &[]))],
        rules: vec![proto::grpc_route::Rule {
            matches: vec![rpc("shop.Cart", "Add")],
            filters: Vec::new(),
        }],
    };
    let kind = proxy_protocol::Kind::Grpc(proxy_protocol::Grpc {
        routes: vec![route],
    });
    let p = policy(server("cart", kind, vec![]));
    assert_eq!(p.protocol, Protocol::Grpc);
    let select = |method: Method, path: &str| {
        let uri: Uri = path.parse().expect("a path");
        p.http_routes
            .select(&method, &uri, &HeaderMap::new())
            .map(|m| m.authorizations.len())
    };
    assert_eq!(select(Method::POST, "/shop.Cart/Add"), Some(1));
    assert_eq!(select(Method::GET, "/shop.Cart/Add"), None);
    assert_eq!(select(Method::POST, "/shop.Cart/Remove"), None);
}

#[test]
fn authorizations_without_networks_are_ignored() {
    let p = policy(server(
        "s",
        opaque(),
        vec![
            authz("nowhere", vec![], unauthenticated()),
            authz("somewhere", everywhere(), unauthenticated()),
        ],
    ));
    let names: Vec<&str> = p.authorizations.iter().map(|a| &*a.name).collect();
    assert_eq!(names, ["somewhere"]);
}

#[test]
fn mesh_tls_from_any_client_admits_any_identity() {
    use authn::permit_mesh_tls::Clients;
    let permit = authn::Permit::MeshTls(authn::PermitMeshTls {
        clients: Some(Clients::Unauthenticated(authn::PermitUnauthenticated {})),
    });
    let p = policy(server(
        "s",
        opaque(),
        vec![authz("any-mesh", everywhere(), permit)],
    ));
    assert_eq!(
        p.authorizations[0].authentication,
        Authentication::TlsAuthenticated {
            identities: vec![],
            suffixes: vec![Suffix::any()]
        }
    );
}

#[test]
fn malformed_messages_are_errors_naming_the_field() {
    let ok = || {
        server(
            "s",
            detect(Vec::new()),
            vec![authz("a", everywhere(), unauthenticated())],
        )
    };
    let bad_route = |r: proto::HttpRoute| server("s", detect(vec![r]), vec![]);
    let mut cases: Vec<(&str, proto::Server, &str)> = Vec::new();

    let mut s = ok();
    s.protocol = None;
    cases.push(("no protocol", s, "protocol: missing"));
    let mut s = ok();
    s.protocol = Some(proto::ProxyProtocol { kind: None });
    cases.push(("no kind", s, "protocol.kind: missing"));
    let mut s = ok();
    s.authorizations[0].authentication = None;
    cases.push((
        "no authentication",
        s,
        "authorizations[0].authentication: missing",
    ));
    let mut s = ok();
    s.authorizations[0].authentication = Some(proto::Authn { permit: None });
    cases.push((
        "no permit",
        s,
        "authorizations[0].authentication.permit: missing",
    ));
    let s = server(
        "s",
        opaque(),
        vec![authz(
            "a",
            everywhere(),
            authn::Permit::MeshTls(authn::PermitMeshTls { clients: None }),
        )],
    );
    cases.push((
        "no clients",
        s,
        "authorizations[0].authentication.meshTLS.clients: missing",
    ));
    let s = server(
        "s",
        opaque(),
        vec![authz(
            "a",
            vec![
                network("0.0.0.0/0", &[]),
                proto::Network {
                    net: None,
                    except: vec![],
                },
            ],
            unauthenticated(),
        )],
    );
    cases.push(("no net", s, "authorizations[0].networks[1].net: missing"));
    let mut too_long = network("10.0.0.0/8", &[]);
    too_long.net.as_mut().expect("set").prefix_len = 33;
    let s = server(
        "s",
        opaque(),
        vec![authz("a", vec![too_long], unauthenticated())],
    );
    cases.push((
        "prefix too long",
        s,
        "authorizations[0].networks[0].net: invalid network",
    ));
    let mut except = network("10.0.0.0/8", &["10.1.0.0/16"]);
    except.except[0].ip = None;
    let s = server(
        "s",
        opaque(),
        vec![authz("a", vec![except], unauthenticated())],
    );
    cases.push((
        "except without an address",
        s,
        "authorizations[0].networks[0].except[0]: invalid network",
    ));
    let s = server(
        "s",
        opaque(),
        vec![authz("a", everywhere(), mesh(&["web..shop"], &[]))],
    );
    cases.push(("bad identity", s, "authorizations[0].authentication.meshTLS.identities.identities[0].name: invalid identity \"web..shop\""));
    let mut bad_suffix = mesh(&[], &[]);
    if let authn::Permit::MeshTls(m) = &mut bad_suffix
        && let Some(authn::permit_mesh_tls::Clients::Identities(ids)) = &mut m.clients
    {
        ids.suffixes.push(proto::IdentitySuffix {
            parts: vec!["cluster".into(), String::new()],
        });
    }
    let s = server("s", opaque(), vec![authz("a", everywhere(), bad_suffix)]);
    cases.push((
        "empty suffix label",
        s,
        "suffixes[0].parts: invalid suffix label \"\"",
    ));
    let mut r = http_route("r", vec![], vec![], vec![]);
    r.rules.clear();
    cases.push((
        "route without rules",
        bad_route(r),
        "protocol.detect.http_routes[0].rules: invalid rules \"[]\"",
    ));
    let regex = route::HttpRouteMatch {
        path: Some(route::PathMatch {
            kind: Some(route::path_match::Kind::Regex("/(".into())),
        }),
        ..Default::default()
    };
    cases.push((
        "bad regex",
        bad_route(http_route("r", vec![regex], vec![], vec![])),
        "protocol.detect.http_routes[0].rules[0].matches[0].path: invalid regex \"/(\"",
    ));
    let filter = proto::http_route::Filter {
        kind: Some(proto::http_route::filter::Kind::RequestHeaderModifier(
            route::RequestHeaderModifier {
                add: None,
                set: Some(http_types::Headers {
                    headers: vec![http_types::headers::Header {
                        name: "bad name".into(),
                        value: b"v".to_vec(),
                    }],
                }),
                remove: vec![],
            },
        )),
    };
    cases.push((
        "bad filter",
        bad_route(http_route("r", vec![prefix("/")], vec![filter], vec![])),
        "protocol.detect.http_routes[0].rules[0].filters[0].request_header_modifier.set.headers[0].name",
    ));
    let filter = proto::http_route::Filter { kind: None };
    cases.push((
        "filter without kind",
        bad_route(http_route("r", vec![prefix("/")], vec![filter], vec![])),
        "protocol.detect.http_routes[0].rules[0].filters[0].kind: missing",
    ));
    let mut r = http_route(
        "r",
        vec![prefix("/")],
        vec![],
        vec![authz("a", everywhere(), unauthenticated())],
    );
    r.authorizations[0].authentication = None;
    cases.push((
        "route authz",
        bad_route(r),
        "protocol.detect.http_routes[0].authorizations[0].authentication: missing",
    ));
    let mut negative = detect(Vec::new());
    if let proxy_protocol::Kind::Detect(d) = &mut negative
        && let Some(t) = d.timeout.as_mut()
    {
        t.seconds = -1;
    }
    let s = server("s", negative, vec![]);
    cases.push((
        "negative timeout",
        s,
        "protocol.detect.timeout: invalid duration",
    ));

    for (what, server, expected) in cases {
        let err = InboundPolicy::try_from(server).expect_err(what).to_string();
        assert!(
            err.contains(expected),
            "{what}: {err:?} does not contain {expected:?}"
        );
    }
}
