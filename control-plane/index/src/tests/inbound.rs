//! `DiscoverInboundServer`: the default inbound policy from the pod, its namespace or the install.

use super::*;
use ipnet::IpNet;
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;
use weft_controller_core::{
    Authentication, Authorization, DefaultPolicy, InboundProtocol, InboundRoute, InboundServer,
    Network, outbound::ResourceRef,
};

fn policy(value: &str) -> Value {
    json!({ "weft.dev/default-inbound-policy": value })
}

/// What `policy` gives a port under the default config, as the core crate defines it.
fn server(policy: DefaultPolicy, opaque: bool) -> InboundServer {
    let c = Config::default();
    policy.server(
        opaque,
        c.detect_timeout,
        &c.cluster_networks,
        &c.trust_domain,
    )
}

fn changed(rx: &watch::Receiver<Arc<InboundServer>>) -> bool {
    rx.has_changed().expect("the inbound channel stays open")
}

fn current(rx: &mut watch::Receiver<Arc<InboundServer>>) -> InboundServer {
    (**rx.borrow_and_update()).clone()
}

#[test]
fn the_install_default_is_all_unauthenticated() {
    let index = new_index();
    let all: Vec<Network> = ["0.0.0.0/0", "::/0"]
        .map(|n| n.parse::<IpNet>().expect("valid net").into())
        .into();
    let authorizations = vec![Authorization {
        resource: ResourceRef::Default("all-unauthenticated".to_string()),
        networks: all,
        authentication: Authentication::Unauthenticated,
    }];
    let expected = InboundServer {
        protocol: InboundProtocol::Detect {
            timeout: Duration::from_secs(10),
        },
        authorizations: authorizations.clone(),
        http_routes: vec![InboundRoute::any_path(authorizations)],
        labels: vec![
            ("kind".to_string(), "default".to_string()),
            ("name".to_string(), "all-unauthenticated".to_string()),
        ],
    };
    // A pod not indexed yet, then the same pod indexed without annotations.
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    assert_eq!(current(&mut rx), expected);
    apply(&index, pod("web-1", "web", meshed()));
    assert!(!changed(&rx));
    assert_eq!(current(&mut rx), expected);

    let config = Config {
        default_policy: DefaultPolicy::Deny,
        ..Config::default()
    };
    let deny = SharedIndex::new(config).inbound_server(NS, "web-1", 8080);
    assert!(deny.borrow().authorizations.is_empty());
}

#[test]
fn a_namespace_annotation_sets_the_default_and_delete_or_reset_reverts_it() {
    let index = new_index();
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    let mut other = index.inbound_server("billing", "pay-1", 8080);

    let shop = namespace(NS, policy("deny"));
    apply(&index, shop.clone());
    assert!(changed(&rx));
    let deny = current(&mut rx);
    assert!(deny.authorizations.is_empty(), "{deny:?}");
    assert_eq!(deny, server(DefaultPolicy::Deny, false));
    assert!(!changed(&other), "another namespace is not touched");

    apply(&index, shop.clone());
    assert!(!changed(&rx), "the same namespace again changes nothing");

    delete::<Namespace>(&index, "", NS);
    assert!(changed(&rx));
    assert_eq!(
        current(&mut rx),
        server(DefaultPolicy::AllUnauthenticated, false)
    );

    apply(&index, shop);
    assert_eq!(current(&mut rx), server(DefaultPolicy::Deny, false));
    reset(
        &index,
        vec![namespace("billing", policy("all-authenticated"))],
    );
    assert!(changed(&rx) && changed(&other));
    assert_eq!(
        current(&mut rx),
        server(DefaultPolicy::AllUnauthenticated, false)
    );
    assert_eq!(
        current(&mut other),
        server(DefaultPolicy::AllAuthenticated, false)
    );
}

#[test]
fn a_pod_annotation_overrides_its_namespace() {
    let index = new_index();
    apply(&index, namespace(NS, policy("deny")));
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    let mut sibling = index.inbound_server(NS, "web-2", 8080);
    assert_eq!(current(&mut rx), server(DefaultPolicy::Deny, false));

    apply(&index, pod("web-1", "web", policy("all-authenticated")));
    apply(&index, pod("web-2", "web", json!({})));
    assert!(changed(&rx));
    assert!(
        !changed(&sibling),
        "a pod without the annotation keeps its namespace's"
    );
    let authenticated = current(&mut rx);
    assert_eq!(authenticated.authorizations.len(), 1);
    assert_eq!(
        authenticated.authorizations[0].authentication,
        Authentication::MeshTls {
            identities: vec![],
            suffixes: vec![vec!["cluster".to_string(), "local".to_string()]],
        }
    );
    assert_eq!(
        authenticated,
        server(DefaultPolicy::AllAuthenticated, false)
    );

    apply(&index, pod("web-2", "web", policy("cluster-authenticated")));
    let cluster = current(&mut sibling);
    assert_eq!(cluster, server(DefaultPolicy::ClusterAuthenticated, false));
    let networks: Vec<IpNet> = cluster.authorizations[0]
        .networks
        .iter()
        .map(|n| n.net)
        .collect();
    assert_eq!(networks, Config::default().cluster_networks);

    delete::<Pod>(&index, NS, "web-1");
    assert!(changed(&rx));
    assert_eq!(current(&mut rx), server(DefaultPolicy::Deny, false));
    reset::<Pod>(&index, vec![]);
    assert!(changed(&sibling));
    assert_eq!(current(&mut sibling), server(DefaultPolicy::Deny, false));
}

#[test]
fn an_invalid_annotation_is_ignored() {
    let index = new_index();
    apply(&index, namespace(NS, policy("deny-all")));
    let mut rx = index.inbound_server(NS, "web-1", 8080);
    assert_eq!(
        current(&mut rx),
        server(DefaultPolicy::AllUnauthenticated, false),
        "an unknown namespace value falls back to the install default"
    );

    apply(&index, namespace(NS, policy("deny")));
    apply(&index, pod("web-1", "web", policy("Deny")));
    assert_eq!(
        current(&mut rx),
        server(DefaultPolicy::Deny, false),
        "an unknown pod value falls back to the namespace"
    );
}

#[test]
fn pod_opaque_ports_make_only_those_ports_opaque() {
    let index = new_index();
    let mut http = index.inbound_server(NS, "web-1", 8080);
    let mut db = index.inbound_server(NS, "web-1", 3306);
    let mut ranged = index.inbound_server(NS, "web-1", 5050);
    let annotations = json!({ "weft.dev/opaque-ports": "3306, 5000-5100, bogus" });
    apply(&index, pod("web-1", "web", annotations));

    assert!(!changed(&http));
    let detect = InboundProtocol::Detect {
        timeout: Duration::from_secs(10),
    };
    assert_eq!(current(&mut http).protocol, detect);
    assert!(changed(&db) && changed(&ranged));
    assert_eq!(current(&mut db).protocol, InboundProtocol::Opaque);
    assert_eq!(
        current(&mut ranged),
        server(DefaultPolicy::AllUnauthenticated, true)
    );

    apply(&index, pod("web-1", "web", json!({})));
    assert!(changed(&db));
    assert_eq!(current(&mut db).protocol, detect);
}
