//! `authorize` and `check_tcp`: networks, identities, defaults, and routes' own authorizations.

use super::*;
use crate::inbound::{DefaultPolicy, Permit, authorize, check_tcp};
use http::{HeaderMap, Method, Uri};

/// The name of the authorization that admits `conn`, or the denial's message.
fn decide(p: &InboundPolicy, conn: &ConnMeta) -> Result<String, String> {
    authorize(p, &p.authorizations, conn)
        .map(|a| a.name.to_string())
        .map_err(|d| d.to_string())
}

#[test]
fn networks_with_exceptions() {
    let p = policy(server(
        "db",
        opaque(),
        vec![authz(
            "pods",
            vec![
                network("10.0.0.0/8", &["10.9.0.0/16", "10.1.2.3/32"]),
                network("fd00::/8", &[]),
            ],
            unauthenticated(),
        )],
    ));
    assert_eq!(
        decide(&p, &conn("10.1.2.4:5000", ClientTls::None)),
        Ok("pods".into())
    );
    assert_eq!(
        decide(&p, &conn("[fd00::7]:5000", ClientTls::None)),
        Ok("pods".into())
    );
    // An IPv4 client seen through an IPv6 socket is still an IPv4 client.
    assert_eq!(
        decide(&p, &conn("[::ffff:10.1.2.4]:5000", ClientTls::None)),
        Ok("pods".into())
    );
    for outside in [
        "10.9.0.1:5000",
        "10.1.2.3:5000",
        "192.168.1.1:5000",
        "[fe80::1]:5000",
    ] {
        let denied = decide(&p, &conn(outside, ClientTls::None)).expect_err(outside);
        let ip = outside
            .rsplit_once(':')
            .map(|(ip, _)| ip.trim_matches(['[', ']']))
            .unwrap_or_default();
        assert_eq!(
            denied,
            format!(
                "unauthorized: no authorization of server db permits an unauthenticated client from {ip}"
            )
        );
    }
}

#[test]
fn identities_exact_suffix_and_any() {
    let p = policy(server(
        "web",
        opaque(),
        vec![
            authz("exact", everywhere(), mesh(&[WEB], &[])),
            authz(
                "ops",
                everywhere(),
                mesh(&[], &["ops.serviceaccount.identity.cluster.local"]),
            ),
        ],
    ));
    let from = |id: &str| decide(&p, &conn("10.1.0.1:4000", meshed(id)));
    assert_eq!(from(WEB), Ok("exact".into()));
    assert_eq!(
        from(&WEB.to_uppercase()),
        Ok("exact".into()),
        "DNS names ignore case"
    );
    assert_eq!(
        from(&format!("{WEB}.")),
        Ok("exact".into()),
        "a trailing dot is the same name"
    );
    assert_eq!(from(ADMIN), Ok("ops".into()));
    assert_eq!(
        from("ops.serviceaccount.identity.cluster.local"),
        Ok("ops".into())
    );
    // Suffixes match whole labels only.
    let err =
        from("evilops.serviceaccount.identity.cluster.local").expect_err("not a label boundary");
    assert!(err.contains("client evilops.serviceaccount"), "{err}");
    assert!(from("db.shop.serviceaccount.identity.cluster.local").is_err());
    assert!(from("web.shop.serviceaccount.identity.cluster.local.evil").is_err());
    // Mesh TLS is required: a plaintext client has no identity to show.
    assert!(decide(&p, &conn("10.1.0.1:4000", ClientTls::None)).is_err());

    let any = policy(server(
        "web",
        opaque(),
        vec![authz("any", everywhere(), mesh(&[], &[""]))],
    ));
    assert_eq!(
        decide(&any, &conn("10.1.0.1:4000", meshed("anyone.example"))),
        Ok("any".into())
    );
    assert!(decide(&any, &conn("10.1.0.1:4000", ClientTls::None)).is_err());
}

#[test]
fn unauthenticated_admits_plaintext_and_meshed_clients_and_the_first_match_wins() {
    let p = policy(server(
        "web",
        opaque(),
        vec![
            authz("mesh-first", everywhere(), mesh(&[WEB], &[])),
            authz("anyone", everywhere(), unauthenticated()),
        ],
    ));
    assert_eq!(
        decide(&p, &conn("10.1.0.1:4000", ClientTls::None)),
        Ok("anyone".into())
    );
    assert_eq!(
        decide(&p, &conn("10.1.0.1:4000", meshed(ADMIN))),
        Ok("anyone".into())
    );
    assert_eq!(
        decide(&p, &conn("10.1.0.1:4000", meshed(WEB))),
        Ok("mesh-first".into())
    );
}

#[test]
fn no_authorizations_deny_everyone() {
    let p = policy(server("locked", opaque(), vec![]));
    let denied = check_tcp(&p, &conn("10.1.0.1:4000", meshed(WEB))).expect_err("deny");
    assert_eq!(&*denied.server, "locked");
    assert_eq!(denied.route, None);
    assert_eq!(denied.peer.to_string(), "10.1.0.1");
    assert_eq!(
        denied.to_string(),
        format!(
            "unauthorized: no authorization of server locked permits client {WEB} from 10.1.0.1"
        )
    );
}

#[test]
fn check_tcp_names_the_server_and_authorization() {
    let p = policy(server(
        "web",
        opaque(),
        vec![authz("anyone", everywhere(), unauthenticated())],
    ));
    assert_eq!(
        check_tcp(&p, &conn("10.1.0.1:4000", ClientTls::None)),
        Ok(Permit {
            server: "web".into(),
            authz: "anyone".into()
        })
    );
}

#[test]
fn default_policies() {
    let cluster: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("a CIDR")];
    let decide_default = |d: DefaultPolicy, peer: &str, tls: ClientTls| {
        let p = d.policy(&cluster);
        assert_eq!(&*p.name, d.as_str());
        assert!(p.http_routes.is_empty() && !p.protocol.is_opaque());
        check_tcp(&p, &conn(peer, tls)).is_ok()
    };
    use DefaultPolicy::*;
    for (default, peer, tls, allowed) in [
        (AllUnauthenticated, "192.0.2.1:1", ClientTls::None, true),
        (AllUnauthenticated, "[2001:db8::1]:1", ClientTls::None, true),
        (AllAuthenticated, "192.0.2.1:1", ClientTls::None, false),
        (AllAuthenticated, "[2001:db8::1]:1", meshed(WEB), true),
        (ClusterAuthenticated, "10.3.0.1:1", meshed(WEB), true),
        (ClusterAuthenticated, "10.3.0.1:1", ClientTls::None, false),
        (ClusterAuthenticated, "192.0.2.1:1", meshed(WEB), false),
        (Deny, "10.3.0.1:1", meshed(WEB), false),
        (Deny, "10.3.0.1:1", ClientTls::None, false),
    ] {
        assert_eq!(
            decide_default(default, peer, tls.clone()),
            allowed,
            "{default} {peer} {tls:?}"
        );
    }
    assert_eq!("cluster-authenticated".parse(), Ok(ClusterAuthenticated));
    assert!("allow".parse::<DefaultPolicy>().is_err());
}

#[test]
fn requests_take_the_best_route_and_its_authorizations() {
    let p = policy(server(
        "web-http",
        detect(vec![
            http_route(
                "public",
                vec![prefix("/")],
                vec![],
                vec![authz("anyone", everywhere(), unauthenticated())],
            ),
            http_route(
                "admin",
                vec![prefix("/admin")],
                vec![],
                vec![authz("admins", everywhere(), mesh(&[ADMIN], &[]))],
            ),
        ]),
        // The server's own authorizations do not apply to requests on its routes.
        vec![authz("server-wide", everywhere(), unauthenticated())],
    ));
    let route = |path: &str| {
        let uri: Uri = path.parse().expect("a path");
        let m = p
            .http_routes
            .select(&Method::GET, &uri, &HeaderMap::new())
            .expect("a route");
        (m.name.to_string(), m.authorizations)
    };
    let (name, authzs) = route("/admin/users");
    assert_eq!(name, "admin");
    let plain = conn("10.1.0.1:4000", ClientTls::None);
    assert!(authorize(&p, authzs, &plain).is_err());
    let admin = conn("10.1.0.1:4000", meshed(ADMIN));
    assert_eq!(
        &*authorize(&p, authzs, &admin).expect("admin").name,
        "admins"
    );

    let (name, authzs) = route("/administrator");
    assert_eq!(name, "public", "prefixes match whole segments");
    assert_eq!(
        &*authorize(&p, authzs, &plain).expect("anyone").name,
        "anyone"
    );
    assert_eq!(p.http_routes.iter().count(), 2);
}
