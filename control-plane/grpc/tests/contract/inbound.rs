//! `InboundServerPolicies.WatchPort`/`GetPort`: both workload forms, bad specs, changes; the
//! conversion of every protocol, route and authorization is in `inbound/convert.rs`.

mod convert;

use crate::{Fake, next, start};
use ipnet::IpNet;
use std::time::Duration;
use weft_controller_core::{
    Authentication, Authorization, InboundProtocol, InboundRoute, InboundServer,
    outbound::ResourceRef,
};
use weft_proto::{
    http_route as route,
    inbound::{
        PortSpec, Server, authn, inbound_server_policies_client::InboundServerPoliciesClient,
        proxy_protocol,
    },
    meta::{self, metadata},
    net::IpNetwork,
};

fn server(protocol: InboundProtocol, name: &str) -> InboundServer {
    let authorizations = vec![
        Authorization {
            resource: ResourceRef::Default("from-cluster".into()),
            networks: vec!["10.0.0.0/8".parse::<IpNet>().unwrap().into()],
            authentication: Authentication::MeshTls {
                identities: vec!["api.shop.serviceaccount.identity.cluster.local".into()],
                suffixes: vec![vec!["cluster".into(), "local".into()]],
            },
        },
        Authorization {
            resource: ResourceRef::Default("probes".into()),
            networks: vec!["0.0.0.0/0".parse::<IpNet>().unwrap().into()],
            authentication: Authentication::Unauthenticated,
        },
    ];
    InboundServer {
        protocol,
        http_routes: vec![InboundRoute::any_path(authorizations.clone())],
        authorizations,
        labels: vec![
            ("kind".into(), "server".into()),
            ("name".into(), name.into()),
        ],
    }
}

fn spec(workload: &str, port: u32) -> PortSpec {
    PortSpec {
        workload: workload.to_string(),
        port,
    }
}

fn name_label(s: &Server) -> &str {
    s.labels.get("name").map(String::as_str).unwrap_or_default()
}

#[tokio::test]
async fn both_workload_forms_watch_the_same_port() {
    let fake = Fake::default();
    let detect = InboundProtocol::Detect {
        timeout: Duration::from_secs(3),
    };
    fake.set_inbound("shop", "web-1", 8080, server(detect, "web-http"));
    let server_ = start(&fake).await;
    let mut client = InboundServerPoliciesClient::new(server_.channel().await);

    let mut plain = client
        .watch_port(spec("shop/web-1", 8080))
        .await
        .unwrap()
        .into_inner();
    let json = r#"{"ns":"shop","pod":"web-1"}"#;
    let mut json = client
        .watch_port(spec(json, 8080))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut plain).await;
    assert_eq!(first, next(&mut json).await);
    assert_eq!(name_label(&first), "web-http");
    assert_eq!(first.server_ips, vec![]);

    let Some(proxy_protocol::Kind::Detect(d)) = first.protocol.clone().and_then(|p| p.kind) else {
        panic!("expected detect: {first:?}");
    };
    assert_eq!(d.timeout, Some(Duration::from_secs(3).try_into().unwrap()));
    let [route] = d.http_routes.as_slice() else {
        panic!("one default route: {d:?}")
    };
    assert_eq!(
        route.metadata,
        Some(meta::Metadata {
            kind: Some(metadata::Kind::Default("default".into()))
        })
    );
    assert_eq!(
        route.rules[0].matches[0].path,
        Some(route::PathMatch {
            kind: Some(route::path_match::Kind::Prefix("/".into()))
        })
    );
    assert_eq!(
        route.authorizations, first.authorizations,
        "the route carries the server's authorizations"
    );

    let [mtls, probes] = first.authorizations.as_slice() else {
        panic!("two authorizations")
    };
    let net: IpNet = "10.0.0.0/8".parse().unwrap();
    assert_eq!(mtls.networks[0].net, Some(IpNetwork::from(net)));
    assert_eq!(
        mtls.metadata,
        Some(meta::Metadata {
            kind: Some(metadata::Kind::Default("from-cluster".into()))
        })
    );
    let Some(authn::Permit::MeshTls(authn::PermitMeshTls {
        clients: Some(authn::permit_mesh_tls::Clients::Identities(ids)),
    })) = mtls.authentication.clone().and_then(|a| a.permit)
    else {
        panic!("expected mesh TLS: {mtls:?}");
    };
    assert_eq!(
        ids.identities[0].name,
        "api.shop.serviceaccount.identity.cluster.local"
    );
    assert_eq!(
        ids.suffixes[0].parts,
        vec!["cluster".to_string(), "local".to_string()]
    );
    assert_eq!(
        probes.authentication.clone().and_then(|a| a.permit),
        Some(authn::Permit::Unauthenticated(
            authn::PermitUnauthenticated {}
        ))
    );

    // A change reaches both watchers.
    fake.set_inbound(
        "shop",
        "web-1",
        8080,
        server(InboundProtocol::Opaque, "web-tcp"),
    );
    for watch in [&mut plain, &mut json] {
        let changed = next(watch).await;
        assert_eq!(name_label(&changed), "web-tcp");
        assert_eq!(
            changed.protocol.and_then(|p| p.kind),
            Some(proxy_protocol::Kind::Opaque(proxy_protocol::Opaque {}))
        );
    }

    let unary = client
        .get_port(spec("shop:web-1", 8080))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(name_label(&unary), "web-tcp", "Linkerd's older ns:pod form");
}

#[tokio::test]
async fn bad_workloads_and_ports_are_invalid_arguments() {
    let fake = Fake::default();
    let server = start(&fake).await;
    let mut client = InboundServerPoliciesClient::new(server.channel().await);
    for (what, spec, expect) in [
        ("garbage", spec("web-1", 80), "<namespace>/<pod>"),
        ("bad json", spec(r#"{"ns":"shop"}"#, 80), "no \"pod\""),
        ("port 0", spec("shop/web-1", 0), "1-65535"),
        ("port 65536", spec("shop/web-1", 65_536), "1-65535"),
    ] {
        let err = client.watch_port(spec.clone()).await.expect_err(what);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}");
        assert!(err.message().contains(expect), "{what}: {}", err.message());
        let err = client.get_port(spec).await.expect_err(what);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}");
    }
}
