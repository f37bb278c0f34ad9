//! The `policy.weft.dev` kinds in files: parsed, checked like the CRD schemas would, and
//! applied to the index with partial reloads.

use super::parse;
use crate::files::{Cache, load_with};
use std::path::Path;
use weft_controller_core::{Authentication, DiscoverInboundServer, InboundServer};
use weft_controller_index::IndexResource;
use weft_controller_index::{Config, SharedIndex};

const POLICIES: &str = "apiVersion: policy.weft.dev/v1alpha1
kind: Server
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}, matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}
  port: http
  proxyProtocol: HTTP/1
---
apiVersion: policy.weft.dev/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: client, namespace: shop}
spec: {identityRefs: [{kind: ServiceAccount, name: client}]}
---
apiVersion: policy.weft.dev/v1alpha1
kind: NetworkAuthentication
metadata: {name: cluster, namespace: shop}
spec: {networks: [{cidr: 10.0.0.0/8, except: [10.9.0.0/16]}]}
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: client, namespace: shop}
spec:
  targetRef: {group: policy.weft.dev, kind: Server, name: web-http}
  requiredAuthenticationRefs:
    - {group: policy.weft.dev, kind: MeshTLSAuthentication, name: client}
    - {group: policy.weft.dev, kind: NetworkAuthentication, name: cluster}
";

const POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]}
";

#[test]
fn parses_every_policy_kind() {
    let o = parse(POLICIES);
    assert_eq!(o.errors, vec![]);
    assert_eq!(
        (
            o.servers.len(),
            o.mesh_tls_authentications.len(),
            o.network_authentications.len(),
            o.authorization_policies.len()
        ),
        (1, 1, 1, 1)
    );
    let keys: Vec<&str> = o.keys.iter().map(|(k, _)| k.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Server",
            "MeshTLSAuthentication",
            "NetworkAuthentication",
            "AuthorizationPolicy"
        ]
    );
    let refs = &o.authorization_policies[0]
        .spec
        .required_authentication_refs;
    assert_eq!(refs[1].kind, "NetworkAuthentication");
}

/// The one error `text` (a spec under `kind`'s header) gives.
fn error_of(kind: &str, spec: &str) -> String {
    let text = format!(
        "apiVersion: policy.weft.dev/v1alpha1\nkind: {kind}\nmetadata: {{name: x, namespace: shop}}\nspec: {spec}\n"
    );
    let o = parse(&text);
    assert_eq!(o.errors.len(), 1, "{kind} {spec}: {:?}", o.errors);
    let kept = o.servers.len()
        + o.authorization_policies.len()
        + o.mesh_tls_authentications.len()
        + o.network_authentications.len();
    assert_eq!(kept, 0, "an invalid {kind} is not kept");
    o.errors[0].reason.clone()
}

#[test]
fn each_invalid_policy_document_says_where_and_why() {
    let server = "podSelector: {}, port: 8080";
    for (kind, spec, expected) in [
        ("Server", "{port: 8080}".to_string(), "invalid Server at spec: missing field `podSelector`"),
        ("Server", "{podSelector: {}, port: 70000}".to_string(), "invalid Server at spec.port: 70000 is not a port number (1-65535)"),
        ("Server", format!("{{{server}, proxyProtocol: HTTP/3}}"), "invalid Server at spec.proxyProtocol: unknown variant `HTTP/3`"),
        ("Server", format!("{{{server}, accessPolicy: allow}}"), "invalid Server at spec.accessPolicy: unknown default inbound policy \"allow\""),
        ("Server", "{podSelector: {matchExpressions: [{key: app, operator: In}]}, port: 80}".to_string(), "invalid Server at spec.podSelector.matchExpressions[0].values: In needs at least one value"),
        ("AuthorizationPolicy", "{targetRef: {kind: Service, name: web}}".to_string(), "invalid AuthorizationPolicy at spec.targetRef: kind Service in group \"\" is not Server"),
        ("AuthorizationPolicy", "{targetRef: {kind: Namespace, name: billing}}".to_string(), "invalid AuthorizationPolicy at spec.targetRef: a policy in namespace shop can only target objects in shop"),
        ("AuthorizationPolicy", "{targetRef: {group: policy.weft.dev, kind: Server, name: web}, requiredAuthenticationRefs: [{kind: MeshTLSAuthentication, name: c}]}".to_string(), "invalid AuthorizationPolicy at spec.requiredAuthenticationRefs[0]: kind MeshTLSAuthentication in group \"\" is not"),
        ("AuthorizationPolicy", "{requiredAuthenticationRefs: []}".to_string(), "invalid AuthorizationPolicy at spec: missing field `targetRef`"),
        ("MeshTLSAuthentication", "{identities: []}".to_string(), "invalid MeshTLSAuthentication at spec: needs identities or identityRefs"),
        ("MeshTLSAuthentication", "{identities: ['web.*.cluster.local']}".to_string(), "invalid MeshTLSAuthentication at spec.identities[0]: \"web.*.cluster.local\" is not"),
        ("MeshTLSAuthentication", "{identityRefs: [{kind: Group, name: ops}]}".to_string(), "invalid MeshTLSAuthentication at spec.identityRefs[0]: kind Group"),
        ("NetworkAuthentication", "{networks: []}".to_string(), "invalid NetworkAuthentication at spec.networks: needs at least one network"),
        ("NetworkAuthentication", "{networks: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2/16]}]}".to_string(), "invalid NetworkAuthentication at spec.networks[0].except[1]: \"10.2/16\" is not a CIDR"),
    ] {
        let reason = error_of(kind, &spec);
        assert!(reason.starts_with(expected), "{kind} {spec}:\n  got {reason}\n  expected {expected}");
    }
}

#[test]
fn the_authz_example_in_deploy_does_what_it_says() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/authz.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let o = parse(&text);
    assert_eq!(o.errors, vec![]);
    let index = SharedIndex::new(Config::default());
    index.write().batch(|index| {
        o.servers.into_iter().for_each(|x| index.apply(x));
        o.authorization_policies
            .into_iter()
            .for_each(|x| index.apply(x));
        o.mesh_tls_authentications
            .into_iter()
            .for_each(|x| index.apply(x));
        o.http_routes.into_iter().for_each(|x| index.apply(x));
        let pod = POD.replace(
            "name: http, containerPort: 8080",
            "name: web, containerPort: 8080",
        );
        parse(&pod).pods.into_iter().for_each(|x| index.apply(x));
    });
    let s = server_of(&index);
    assert_eq!(s.authorizations, vec![], "deny outside the routes");
    let only = |id: &str| {
        vec![Authentication::MeshTls {
            identities: vec![format!("{id}.shop.serviceaccount.identity.cluster.local")],
            suffixes: vec![],
        }]
    };
    // Without creation times (files), routes are in name order: web-admin, web-get.
    let routes: Vec<(String, Vec<Authentication>)> = s
        .http_routes
        .iter()
        .map(|r| {
            let name = format!("{:?}", r.rules[0].matches[0].method);
            (
                name,
                r.authorizations
                    .iter()
                    .map(|a| a.authentication.clone())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("Some(\"POST\")".to_string(), only("ops")),
            ("Some(\"GET\")".to_string(), only("client")),
        ]
    );
}

fn server_of(index: &SharedIndex) -> InboundServer {
    (**index.inbound_server("shop", "web-1", 8080).borrow()).clone()
}

#[test]
fn policies_in_files_reach_the_index_and_follow_edits() {
    let dir = std::env::temp_dir().join(format!("weft-files-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pod.yaml"), POD).unwrap();
    std::fs::write(dir.join("policy.yaml"), POLICIES).unwrap();
    let index = SharedIndex::new(Config::default());
    let mut cache = Cache::default();
    let report = load_with(&mut cache, &dir, &index).unwrap();
    assert_eq!((report.documents, report.errors.len()), (5, 0));
    let s = server_of(&index);
    assert_eq!(s.labels[1], ("name".to_string(), "web-http".to_string()));
    let [a] = s.authorizations.as_slice() else {
        panic!("one authorization: {s:?}");
    };
    assert_eq!(a.name(), "client");
    assert_eq!(a.networks[0].except, vec!["10.9.0.0/16".parse().unwrap()]);
    assert_eq!(
        a.authentication,
        Authentication::MeshTls {
            identities: vec!["client.shop.serviceaccount.identity.cluster.local".into()],
            suffixes: vec![],
        }
    );

    // The MeshTLSAuthentication goes: the policy fails closed.
    let without = POLICIES.replace(
        "kind: MeshTLSAuthentication\nmetadata: {name: client",
        "kind: MeshTLSAuthentication\nmetadata: {name: other",
    );
    std::fs::write(dir.join("policy.yaml"), without).unwrap();
    load_with(&mut cache, &dir, &index).unwrap();
    assert_eq!(server_of(&index).authorizations, vec![]);
    assert_eq!(index.write().counts()["meshtlsauthentications"], 1);

    // Everything goes: the port is back to the default policy.
    std::fs::remove_file(dir.join("policy.yaml")).unwrap();
    load_with(&mut cache, &dir, &index).unwrap();
    assert_eq!(
        server_of(&index).labels[0],
        ("kind".to_string(), "default".to_string())
    );
    let counts = index.write().counts();
    assert_eq!(
        (
            counts["servers"],
            counts["authorizationpolicies"],
            counts["networkauthentications"]
        ),
        (0, 0, 0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
