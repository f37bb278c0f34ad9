//! AuthorizationPolicies on a Server: each authentication kind, combinations, namespace
//! targets, and failing closed on what is missing or unusable.

use super::*;
use ipnet::IpNet;
use weft_controller_core::{Authentication, Authorization, InboundServer, Network};

fn net(s: &str) -> IpNet {
    s.parse().expect("test networks parse")
}

fn tls(identities: &[&str], suffixes: &[&[&str]]) -> Authentication {
    Authentication::MeshTls {
        identities: identities.iter().map(|s| s.to_string()).collect(),
        suffixes: suffixes
            .iter()
            .map(|s| s.iter().map(|p| p.to_string()).collect())
            .collect(),
    }
}

/// An index with pod `web-1` behind the Server `web-http` (port 8080, `accessPolicy`
/// all-unauthenticated, so a fallback to it would be visible), and a watch on that port.
fn setup() -> (
    SharedIndex,
    tokio::sync::watch::Receiver<std::sync::Arc<InboundServer>>,
) {
    let index = new_index();
    apply(&index, app_pod("web-1", "web", json!([])));
    let spec = json!({ "podSelector": { "matchLabels": { "app": "web" } }, "port": 8080,
                       "accessPolicy": "all-unauthenticated" });
    apply(&index, policy_obj::<Server>("Server", "web-http", spec));
    let rx = index.inbound_server(NS, "web-1", 8080);
    (index, rx)
}

fn on_server(name: &str, refs: Value) -> AuthorizationPolicy {
    authz_policy(name, weft_ref("Server", "web-http"), refs)
}

/// The server's authorizations, checking the default route carries the same.
fn authorizations(
    rx: &mut tokio::sync::watch::Receiver<std::sync::Arc<InboundServer>>,
) -> Vec<Authorization> {
    let s = inbound_now(rx);
    assert_eq!(s.http_routes[0].authorizations, s.authorizations);
    s.authorizations
}

#[test]
fn a_policy_without_refs_allows_anyone_and_replaces_the_default() {
    let (index, mut rx) = setup();
    assert_eq!(authorizations(&mut rx)[0].name(), "all-unauthenticated");
    apply(&index, on_server("anyone", json!([])));
    assert_eq!(
        authorizations(&mut rx),
        vec![policy_authorization(
            "anyone",
            Network::all(),
            Authentication::Unauthenticated
        )]
    );
    delete::<AuthorizationPolicy>(&index, NS, "anyone");
    assert_eq!(authorizations(&mut rx)[0].name(), "all-unauthenticated");
}

#[test]
fn mesh_tls_identities_suffixes_and_identity_refs() {
    let (index, mut rx) = setup();
    apply(
        &index,
        mesh_tls(
            "clients",
            json!({
                "identities": ["api.shop.serviceaccount.identity.cluster.local", "*.billing.serviceaccount.identity.cluster.local", "*"],
                "identityRefs": [
                    { "kind": "ServiceAccount", "name": "cron" },
                    { "kind": "ServiceAccount", "name": "ui", "namespace": "front" },
                    { "kind": "Namespace", "name": "ops" },
                ],
            }),
        ),
    );
    apply(
        &index,
        on_server(
            "mtls",
            json!([weft_ref("MeshTLSAuthentication", "clients")]),
        ),
    );
    let expected = tls(
        &[
            "api.shop.serviceaccount.identity.cluster.local",
            "cron.shop.serviceaccount.identity.cluster.local",
            "ui.front.serviceaccount.identity.cluster.local",
        ],
        &[
            &["billing", "serviceaccount", "identity", "cluster", "local"],
            &[],
            &["ops", "serviceaccount", "identity", "cluster", "local"],
        ],
    );
    assert_eq!(
        authorizations(&mut rx),
        vec![policy_authorization("mtls", Network::all(), expected)]
    );
}

#[test]
fn network_authentication_with_exceptions_and_single_addresses() {
    let (index, mut rx) = setup();
    apply(
        &index,
        network_authn(
            "office",
            json!([
                { "cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.2.3.4"] },
                { "cidr": "fd00::1" },
            ]),
        ),
    );
    apply(
        &index,
        on_server(
            "from-office",
            json!([weft_ref("NetworkAuthentication", "office")]),
        ),
    );
    let networks = vec![
        Network {
            net: net("10.0.0.0/8"),
            except: vec![net("10.1.0.0/16"), net("10.2.3.4/32")],
        },
        Network {
            net: net("fd00::1/128"),
            except: vec![],
        },
    ];
    assert_eq!(
        authorizations(&mut rx),
        vec![policy_authorization(
            "from-office",
            networks,
            Authentication::Unauthenticated
        )]
    );
}

#[test]
fn every_ref_must_hold_networks_and_identities_together() {
    let (index, mut rx) = setup();
    apply(
        &index,
        network_authn("cluster", json!([{ "cidr": "10.0.0.0/8" }])),
    );
    apply(
        &index,
        mesh_tls(
            "shop",
            json!({ "identityRefs": [{ "kind": "Namespace", "name": "shop" }] }),
        ),
    );
    let sa = |name: &str| json!({ "group": "", "kind": "ServiceAccount", "name": name });
    apply(
        &index,
        on_server(
            "both",
            json!([
                weft_ref("NetworkAuthentication", "cluster"),
                weft_ref("MeshTLSAuthentication", "shop"),
            ]),
        ),
    );
    // ServiceAccounts: any of them; with a MeshTLSAuthentication, only those it allows too.
    apply(
        &index,
        on_server("accounts", json!([sa("api"), sa("cron")])),
    );
    apply(
        &index,
        on_server(
            "narrowed",
            json!([sa("api"), { "kind": "ServiceAccount", "name": "ui", "namespace": "front" },
                                                weft_ref("MeshTLSAuthentication", "shop")]),
        ),
    );
    let shop = &["shop", "serviceaccount", "identity", "cluster", "local"][..];
    let api = "api.shop.serviceaccount.identity.cluster.local";
    assert_eq!(
        authorizations(&mut rx),
        vec![
            policy_authorization(
                "accounts",
                Network::all(),
                tls(
                    &[api, "cron.shop.serviceaccount.identity.cluster.local"],
                    &[]
                )
            ),
            policy_authorization(
                "both",
                vec![Network::from(net("10.0.0.0/8"))],
                tls(&[], &[shop])
            ),
            policy_authorization("narrowed", Network::all(), tls(&[api], &[])),
        ]
    );
}

#[test]
fn a_missing_or_unusable_ref_fails_closed_until_it_is_fixed() {
    let (index, mut rx) = setup();
    apply(
        &index,
        on_server(
            "mtls",
            json!([weft_ref("MeshTLSAuthentication", "clients")]),
        ),
    );
    assert!(inbound_changed(&rx));
    assert_eq!(
        authorizations(&mut rx),
        vec![],
        "no fallback to all-unauthenticated"
    );

    apply(&index, mesh_tls("clients", json!({ "identities": ["*"] })));
    assert!(
        inbound_changed(&rx),
        "the policy applies once its authentication exists"
    );
    assert_eq!(
        authorizations(&mut rx),
        vec![policy_authorization(
            "mtls",
            Network::all(),
            tls(&[], &[&[]])
        )]
    );

    for unusable in [
        json!({ "identities": ["api.*.cluster.local"] }),
        json!({}),
        json!({ "identityRefs": [{ "kind": "Group", "name": "admins" }] }),
    ] {
        apply(&index, mesh_tls("clients", unusable.clone()));
        assert_eq!(authorizations(&mut rx), vec![], "{unusable}");
    }
    delete::<MeshTLSAuthentication>(&index, NS, "clients");
    assert!(!inbound_changed(&rx), "still nothing allowed");

    apply(
        &index,
        network_authn("bad", json!([{ "cidr": "10.0.0.0/33" }])),
    );
    apply(
        &index,
        network_authn("good", json!([{ "cidr": "10.0.0.0/8" }])),
    );
    apply(
        &index,
        network_authn("good2", json!([{ "cidr": "10.0.0.0/8" }])),
    );
    for refs in [
        json!([weft_ref("NetworkAuthentication", "bad")]),
        json!([
            weft_ref("NetworkAuthentication", "good"),
            weft_ref("NetworkAuthentication", "good2")
        ]),
        json!([{ "group": "policy.weft.dev", "kind": "JWTAuthentication", "name": "good" }]),
    ] {
        apply(&index, on_server("mtls", refs.clone()));
        assert_eq!(authorizations(&mut rx), vec![], "{refs}");
    }
}

#[test]
fn a_namespace_target_applies_to_every_server_in_it() {
    let (index, mut rx) = setup();
    apply(&index, app_pod("api-1", "api", json!([])));
    apply(&index, server("api-http", "api", json!(8080)));
    let mut api = index.inbound_server(NS, "api-1", 8080);
    assert_eq!(inbound_now(&mut api).authorizations, vec![]);

    let ns_target = |name: &str| json!({ "group": "", "kind": "Namespace", "name": name });
    apply(&index, authz_policy("everyone", ns_target(NS), json!([])));
    let everyone =
        policy_authorization("everyone", Network::all(), Authentication::Unauthenticated);
    assert_eq!(authorizations(&mut rx), vec![everyone.clone()]);
    assert_eq!(inbound_now(&mut api).authorizations, vec![everyone]);

    // Another namespace cannot be targeted: the policy applies to nothing.
    apply(
        &index,
        authz_policy("everyone", ns_target("billing"), json!([])),
    );
    assert_eq!(authorizations(&mut rx)[0].name(), "all-unauthenticated");
    assert_eq!(inbound_now(&mut api).authorizations, vec![]);
}

#[test]
fn an_authentication_in_another_namespace_republishes_its_users() {
    let (index, mut rx) = setup();
    let mut shared = network_authn("corp", json!([{ "cidr": "192.168.0.0/16" }]));
    shared.metadata.namespace = Some("security".to_string());
    let corp = json!([{ "group": "policy.weft.dev", "kind": "NetworkAuthentication", "name": "corp", "namespace": "security" }]);
    apply(&index, on_server("corp", corp));
    assert_eq!(authorizations(&mut rx), vec![]);
    apply(&index, shared.clone());
    let networks = authorizations(&mut rx)[0].networks.clone();
    assert_eq!(networks, vec![Network::from(net("192.168.0.0/16"))]);
    delete::<NetworkAuthentication>(&index, "security", "corp");
    assert!(inbound_changed(&rx));
    assert_eq!(authorizations(&mut rx), vec![]);
}
