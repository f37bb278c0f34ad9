//! `Index::counts` for every kind, and collecting channels nobody holds.

use super::*;

/// Counts with `n` objects of every kind and no watches.
fn kinds(n: usize) -> BTreeMap<&'static str, usize> {
    [
        "authorizationpolicies",
        "endpointslices",
        "grpcroutes",
        "httproutes",
        "meshtlsauthentications",
        "namespaces",
        "networkauthentications",
        "pods",
        "servers",
        "services",
        "trafficsplits",
    ]
    .into_iter()
    .map(|k| (k, n))
    .chain([("watches", 0)])
    .collect()
}

/// One object of every kind, named after `s`.
#[allow(clippy::type_complexity)]
fn one_of_each(
    s: &str,
) -> (
    Namespace,
    Service,
    EndpointSlice,
    Pod,
    TrafficSplit,
    HttpRoute,
    GrpcRoute,
) {
    let route = json!({ "parentRefs": [web_parent()] });
    (
        namespace(&format!("ns-{s}"), json!({})),
        service(&format!("svc-{s}"), "10.0.0.1"),
        slice(
            &format!("slice-{s}"),
            "web",
            json!([ep("10.1.0.1", "web-1")]),
        ),
        pod(&format!("pod-{s}"), "web", json!({})),
        split(&format!("split-{s}"), &[("web", 1)]),
        http_route(&format!("http-{s}"), route.clone()),
        grpc_route(&format!("grpc-{s}"), route),
    )
}

/// One object of every `policy.weft.dev` kind, named after `s`.
fn policies_of_each(
    s: &str,
) -> (
    Server,
    AuthorizationPolicy,
    MeshTLSAuthentication,
    NetworkAuthentication,
) {
    (
        server(&format!("srv-{s}"), "web", json!(8080)),
        authz_policy(
            &format!("authz-{s}"),
            weft_ref("Server", &format!("srv-{s}")),
            json!([]),
        ),
        mesh_tls(&format!("mtls-{s}"), json!({ "identities": ["*"] })),
        network_authn(&format!("net-{s}"), json!([{ "cidr": "10.0.0.0/8" }])),
    )
}

fn apply_each(index: &SharedIndex, s: &str) {
    let (srv, authz, mtls, net) = policies_of_each(s);
    apply(index, srv);
    apply(index, authz);
    apply(index, mtls);
    apply(index, net);
    let (ns, svc, slice, pod, split, http, grpc) = one_of_each(s);
    apply(index, ns);
    apply(index, svc);
    apply(index, slice);
    apply(index, pod);
    apply(index, split);
    apply(index, http);
    apply(index, grpc);
}

fn delete_each(index: &SharedIndex, s: &str) {
    delete::<Namespace>(index, "", &format!("ns-{s}"));
    delete::<Service>(index, NS, &format!("svc-{s}"));
    delete::<EndpointSlice>(index, NS, &format!("slice-{s}"));
    delete::<Pod>(index, NS, &format!("pod-{s}"));
    delete::<TrafficSplit>(index, NS, &format!("split-{s}"));
    delete::<HttpRoute>(index, NS, &format!("http-{s}"));
    delete::<GrpcRoute>(index, NS, &format!("grpc-{s}"));
    delete::<Server>(index, NS, &format!("srv-{s}"));
    delete::<AuthorizationPolicy>(index, NS, &format!("authz-{s}"));
    delete::<MeshTLSAuthentication>(index, NS, &format!("mtls-{s}"));
    delete::<NetworkAuthentication>(index, NS, &format!("net-{s}"));
}

fn reset_each(index: &SharedIndex, names: &[&str]) {
    let all: Vec<_> = names.iter().map(|s| one_of_each(s)).collect();
    reset(index, all.iter().map(|o| o.0.clone()).collect());
    reset(index, all.iter().map(|o| o.1.clone()).collect());
    reset(index, all.iter().map(|o| o.2.clone()).collect());
    reset(index, all.iter().map(|o| o.3.clone()).collect());
    reset(index, all.iter().map(|o| o.4.clone()).collect());
    reset(index, all.iter().map(|o| o.5.clone()).collect());
    reset(index, all.iter().map(|o| o.6.clone()).collect());
    let policies: Vec<_> = names.iter().map(|s| policies_of_each(s)).collect();
    reset(index, policies.iter().map(|o| o.0.clone()).collect());
    reset(index, policies.iter().map(|o| o.1.clone()).collect());
    reset(index, policies.iter().map(|o| o.2.clone()).collect());
    reset(index, policies.iter().map(|o| o.3.clone()).collect());
}

#[test]
fn counts_follow_apply_delete_and_reset_of_every_kind() {
    let index = new_index();
    assert_eq!(counts(&index), kinds(0));
    apply_each(&index, "a");
    assert_eq!(counts(&index), kinds(1));
    apply_each(&index, "a");
    assert_eq!(counts(&index), kinds(1), "re-applying replaces");
    apply_each(&index, "b");
    assert_eq!(counts(&index), kinds(2));
    delete_each(&index, "a");
    assert_eq!(counts(&index), kinds(1));
    delete_each(&index, "a");
    assert_eq!(counts(&index), kinds(1), "deleting what is gone is a no-op");
    reset_each(&index, &["c", "d"]);
    assert_eq!(counts(&index), kinds(2), "reset drops b and adds c and d");
    delete_each(&index, "b");
    assert_eq!(
        counts(&index),
        kinds(2),
        "b was already dropped by the reset"
    );
    reset_each(&index, &[]);
    assert_eq!(counts(&index), kinds(0));
}

#[test]
fn channels_nobody_holds_are_dropped_on_the_next_change() {
    let index = new_index();
    apply(&index, service("web", "10.0.0.1"));
    let endpoints = index.endpoints(&service_port("web", 8080));
    let outbound = index.outbound_policy(&addr("10.0.0.1:8080"));
    let inbound = index.inbound_server(NS, "web-1", 8080);
    assert!(outbound.is_some());
    // Asking again shares the channel.
    let endpoints2 = index.endpoints(&service_port("web", 8080));
    assert_eq!(counts(&index)["watches"], 3);

    drop((endpoints, outbound, inbound));
    assert_eq!(
        counts(&index)["watches"],
        3,
        "nothing collects until a change"
    );
    apply(&index, service("db", "10.0.0.2"));
    assert_eq!(
        counts(&index)["watches"],
        1,
        "the endpoints watch is still held"
    );
    drop(endpoints2);
    apply(&index, service("cache", "10.0.0.3"));
    assert_eq!(counts(&index)["watches"], 0);

    // A dropped channel is made again, with the current value.
    let rx = index.endpoints(&service_port("web", 8080));
    assert!(rx.borrow().exists);
    assert_eq!(counts(&index)["watches"], 1);
}
