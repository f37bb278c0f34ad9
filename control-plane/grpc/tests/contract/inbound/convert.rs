//! The `inbound.Server` a proxy receives for each protocol, route and authorization, read
//! back over the wire with `GetPort`.

use crate::{Fake, start};
use ipnet::IpNet;
use std::time::Duration;
use weft_controller_core::{
    Authentication, Authorization, InboundProtocol, InboundRoute, InboundRule, InboundServer,
    Network,
    outbound::{HeaderMatch, HostMatch, HttpMatch, PathMatch, ResourceRef, ValueMatch},
};
use weft_proto::{
    grpc_route, http_route as route,
    http_types::{HttpMethod, http_method},
    inbound::{
        Authz, PortSpec, Server, authn,
        inbound_server_policies_client::InboundServerPoliciesClient, proxy_protocol::Kind,
    },
    meta::{Metadata, Resource, metadata},
    net::IpNetwork,
};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn resource(group: &str, kind: &str, name: &str) -> ResourceRef {
    ResourceRef::Resource {
        group: group.into(),
        kind: kind.into(),
        namespace: "shop".into(),
        name: name.into(),
    }
}

/// The AuthorizationPolicy `client-read`: the client's identity, from 10/8 except 10.1/16.
fn client_read() -> Authorization {
    Authorization {
        resource: resource("policy.weft.dev", "AuthorizationPolicy", "client-read"),
        networks: vec![Network {
            net: net("10.0.0.0/8"),
            except: vec![net("10.1.0.0/16")],
        }],
        authentication: Authentication::MeshTls {
            identities: vec!["client.shop.serviceaccount.identity.cluster.local".into()],
            suffixes: vec![vec![]],
        },
    }
}

/// `web-read` (GET /, hosts web and *.example.com) allows `client-read`; `web-admin`
/// (POST /admin with an `x-admin` header; a rule without matches) allows no one.
fn routes() -> Vec<InboundRoute> {
    let get = HttpMatch {
        path: Some(PathMatch::Prefix("/".into())),
        method: Some("GET".into()),
        ..HttpMatch::default()
    };
    let admin = HttpMatch {
        path: Some(PathMatch::Exact("/admin".into())),
        method: Some("POST".into()),
        headers: vec![HeaderMatch {
            name: "x-admin".into(),
            value: ValueMatch::Regex("yes|true".into()),
        }],
        ..HttpMatch::default()
    };
    let gateway = "gateway.networking.k8s.io";
    vec![
        InboundRoute {
            resource: resource(gateway, "HTTPRoute", "web-read"),
            hostnames: vec![
                HostMatch::Exact("web".into()),
                HostMatch::Suffix("example.com".into()),
            ],
            rules: vec![InboundRule { matches: vec![get] }],
            authorizations: vec![client_read()],
        },
        InboundRoute {
            resource: resource(gateway, "HTTPRoute", "web-admin"),
            hostnames: vec![],
            rules: vec![
                InboundRule {
                    matches: vec![admin],
                },
                InboundRule::default(),
            ],
            authorizations: vec![],
        },
    ]
}

fn server(protocol: InboundProtocol) -> InboundServer {
    InboundServer {
        protocol,
        authorizations: vec![client_read()],
        http_routes: routes(),
        labels: vec![
            ("kind".into(), "server".into()),
            ("name".into(), "web-http".into()),
        ],
    }
}

/// What `GetPort` answers for `server`.
async fn get(server: InboundServer) -> Server {
    let fake = Fake::default();
    fake.set_inbound("shop", "web-1", 8080, server);
    let running = start(&fake).await;
    let mut client = InboundServerPoliciesClient::new(running.channel().await);
    let spec = PortSpec {
        workload: "shop/web-1".into(),
        port: 8080,
    };
    let answer = client.get_port(spec).await.unwrap().into_inner();
    running.stop().await.unwrap();
    answer
}

fn resource_meta(group: &str, kind: &str, name: &str) -> Option<Metadata> {
    Some(Metadata {
        kind: Some(metadata::Kind::Resource(Resource {
            group: group.into(),
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
            ..Default::default()
        })),
    })
}

fn check_client_read(a: &Authz) {
    assert_eq!(a.networks.len(), 1);
    assert_eq!(a.networks[0].net, Some(IpNetwork::from(net("10.0.0.0/8"))));
    assert_eq!(
        a.networks[0].except,
        vec![IpNetwork::from(net("10.1.0.0/16"))]
    );
    let Some(authn::Permit::MeshTls(authn::PermitMeshTls {
        clients: Some(authn::permit_mesh_tls::Clients::Identities(ids)),
    })) = a.authentication.clone().and_then(|a| a.permit)
    else {
        panic!("expected mesh TLS identities: {a:?}");
    };
    let names: Vec<&str> = ids.identities.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["client.shop.serviceaccount.identity.cluster.local"]);
    assert_eq!(ids.suffixes.len(), 1);
    assert!(
        ids.suffixes[0].parts.is_empty(),
        "an empty suffix: any identity"
    );
    assert_eq!(
        a.metadata,
        resource_meta("policy.weft.dev", "AuthorizationPolicy", "client-read")
    );
    assert_eq!(
        a.labels.get("kind").map(String::as_str),
        Some("authorizationpolicy")
    );
    assert_eq!(
        a.labels.get("name").map(String::as_str),
        Some("client-read")
    );
}

fn method(m: http_method::Registered) -> Option<HttpMethod> {
    Some(HttpMethod {
        r#type: Some(http_method::Type::Registered(m.into())),
    })
}

fn path(kind: route::path_match::Kind) -> Option<route::PathMatch> {
    Some(route::PathMatch { kind: Some(kind) })
}

#[tokio::test]
async fn http_routes_carry_their_matches_and_authorizations() {
    let s = get(server(InboundProtocol::Detect {
        timeout: Duration::from_secs(10),
    }))
    .await;
    assert_eq!(s.labels.get("name").map(String::as_str), Some("web-http"));
    assert_eq!(s.labels.get("kind").map(String::as_str), Some("server"));
    check_client_read(&s.authorizations[0]);
    let Some(Kind::Detect(detect)) = s.protocol.and_then(|p| p.kind) else {
        panic!("expected detect");
    };
    let [read, admin] = detect.http_routes.as_slice() else {
        panic!("two routes: {:?}", detect.http_routes);
    };
    let gateway = "gateway.networking.k8s.io";
    assert_eq!(
        read.metadata,
        resource_meta(gateway, "HTTPRoute", "web-read")
    );
    assert_eq!(
        admin.metadata,
        resource_meta(gateway, "HTTPRoute", "web-admin")
    );
    let hosts: Vec<_> = read
        .hosts
        .iter()
        .filter_map(|h| h.r#match.clone())
        .collect();
    assert_eq!(
        hosts,
        [
            route::host_match::Match::Exact("web".into()),
            route::host_match::Match::Suffix(route::host_match::Suffix {
                reverse_labels: vec!["com".into(), "example".into()],
            }),
        ]
    );
    let [a] = read.authorizations.as_slice() else {
        panic!("one authorization on web-read");
    };
    check_client_read(a);
    assert_eq!(admin.authorizations, vec![], "no one may use web-admin");

    let m = &read.rules[0].matches[0];
    assert_eq!(m.method, method(http_method::Registered::Get));
    assert_eq!(m.path, path(route::path_match::Kind::Prefix("/".into())));
    let [admin_rule, any_rule] = admin.rules.as_slice() else {
        panic!("two rules on web-admin");
    };
    let m = &admin_rule.matches[0];
    assert_eq!(m.method, method(http_method::Registered::Post));
    assert_eq!(
        m.path,
        path(route::path_match::Kind::Exact("/admin".into()))
    );
    assert_eq!(m.headers[0].name, "x-admin");
    assert_eq!(
        m.headers[0].value,
        Some(route::header_match::Value::Regex("yes|true".into()))
    );
    assert_eq!(
        any_rule.matches[0].path,
        path(route::path_match::Kind::Prefix("/".into())),
        "a rule without matches is sent as one matching every path"
    );
}

#[tokio::test]
async fn each_protocol_puts_the_routes_where_the_proto_says() {
    let detect = get(server(InboundProtocol::Detect {
        timeout: Duration::from_secs(10),
    }));
    let Some(Kind::Detect(d)) = detect.await.protocol.and_then(|p| p.kind) else {
        panic!("expected detect");
    };
    for (protocol, name) in [
        (InboundProtocol::Http1, "http1"),
        (InboundProtocol::Http2, "http2"),
    ] {
        let routes = match get(server(protocol)).await.protocol.and_then(|p| p.kind) {
            Some(Kind::Http1(h)) if name == "http1" => h.routes,
            Some(Kind::Http2(h)) if name == "http2" => h.routes,
            other => panic!("expected {name}: {other:?}"),
        };
        assert_eq!(routes, d.http_routes, "{name}");
    }

    let mut grpc = server(InboundProtocol::Grpc);
    grpc.http_routes = vec![InboundRoute::any_path(vec![client_read()])];
    let Some(Kind::Grpc(g)) = get(grpc).await.protocol.and_then(|p| p.kind) else {
        panic!("expected gRPC");
    };
    let [r] = g.routes.as_slice() else {
        panic!("one gRPC route: {g:?}");
    };
    assert_eq!(
        r.metadata,
        Some(Metadata {
            kind: Some(metadata::Kind::Default("default".into()))
        })
    );
    check_client_read(&r.authorizations[0]);
    assert_eq!(
        r.rules[0].matches,
        vec![grpc_route::GrpcRouteMatch::default()],
        "one rule matching every call"
    );

    for (protocol, expected) in [
        (InboundProtocol::Opaque, Kind::Opaque(Default::default())),
        (InboundProtocol::Tls, Kind::Tls(Default::default())),
    ] {
        let mut s = server(protocol);
        s.http_routes = vec![];
        let answer = get(s).await;
        assert_eq!(answer.protocol.and_then(|p| p.kind), Some(expected));
        check_client_read(&answer.authorizations[0]);
    }
}
