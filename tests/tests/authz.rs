//! Authorization end to end: a real controller reading `policy.weft.dev` Servers,
//! AuthorizationPolicies and authentications from the files source, and real sidecars enforcing
//! them on `web-v1`, called by a meshed `client`, a meshed `ops` and an unmeshed pod.
//!
//! Every call is a fresh connection to `web-v1` alone (no split, no pooled connection from an
//! earlier policy). In the example's matrix every caller dials `web-v1`'s pod IP, as apps do
//! behind a headless Service: the controller's policy for a pod IP names the pod's identity, so
//! meshed callers' sidecars still use mTLS and `web-v1` sees their identities; the unmeshed
//! pod has no sidecar and arrives in plaintext. The default-policy tests dial the `web-v1`
//! Service (one endpoint, `web-v1`), the balanced path, to cover it too.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};
use weft_cli_local::{
    LocalIdentity, Pod, Sidecar, manifests, metric_sum,
    shop::{self, CLIENT_ID, NAMESPACE, Options, PORT, Shop},
    traffic::{self, Request},
};
use weft_e2e::{assert_eventually, shop};

/// How long a change in the files source may take to reach the sidecars.
const PROPAGATION: Duration = Duration::from_secs(5);

const DEFAULT_POLICY: &str = "weft.dev/default-inbound-policy";

/// What meshed callers dial to reach `web-v1` outside the matrix test (see the top of the file).
const MESHED_TO_V1: Ipv4Addr = shop::WEB_V1_IP;

/// A meshed pod running as ServiceAccount `sa`, known to the controller (its Pod in
/// `<name>.yaml`, annotated as the injector would), with `extra` in its sidecar's environment.
fn meshed_caller(shop: &Shop, name: &str, sa: &str, extra: &[(&str, &str)]) -> Sidecar {
    let pod = shop.net.pod(name).expect("pod");
    let doc = manifests::pod(&manifests::PodSpec {
        namespace: NAMESPACE,
        name,
        ip: IpAddr::V4(pod.ip),
        service_account: sa,
        app: name,
        version: "v1",
    });
    shop.write_manifest(&format!("{name}.yaml"), &doc)
        .expect("write pod manifest");
    let identity = shop.identity.as_ref().expect("mTLS is on");
    let mut env =
        shop::identity_env(identity, &shop.controller, NAMESPACE, sa, name).expect("identity env");
    env.push((
        "WEFT_PROXY_CONTROLLER_ADDR".into(),
        shop.controller.addr().to_string(),
    ));
    env.push(("WEFT_PROXY_WORKLOAD".into(), format!("{NAMESPACE}/{name}")));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
    Sidecar::inject(&pod, &[], &env).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn identity(sa: &str) -> String {
    LocalIdentity::identity(NAMESPACE, sa).expect("identity name")
}

/// What one request got.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    /// A 2xx from the app, which saw this `weft-client-id` (`-`: none).
    App(String),
    /// Another status, with its `weft-proxy-error` (empty if none).
    Status(u16, String),
    /// No HTTP response: the connection failed or was closed.
    Closed(String),
}

impl Got {
    /// 200 for the app's answer, the status otherwise, 0 for no response.
    fn code(&self) -> u16 {
        match self {
            Self::App(_) => 200,
            Self::Status(code, _) => *code,
            Self::Closed(_) => 0,
        }
    }
}

/// `method path` on `ip:8080` from `pod`, on a new connection.
fn call(pod: &Pod, method: &str, ip: Ipv4Addr, path: &str) -> Got {
    let method = http::Method::from_bytes(method.as_bytes()).expect("method");
    let req = Request::get(format!("http://{ip}:{PORT}{path}"), CLIENT_ID).method(method);
    let tally = traffic::tally(pod, &req, 1, 1);
    if let Some(seen) = tally.by_value.keys().next() {
        return Got::App(seen.clone());
    }
    let error = tally.errors.first().cloned().unwrap_or_default();
    // `status 403 Forbidden: <weft-proxy-error>`, as `traffic` reports a refusal.
    match error.strip_prefix("status ") {
        Some(rest) => Got::Status(
            rest.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0),
            rest.split_once(": ")
                .map(|(_, why)| why.to_string())
                .unwrap_or_default(),
        ),
        None => Got::Closed(error),
    }
}

/// `deploy/examples/authz.yaml` without its Namespace: the shop's cluster manifests already
/// hold namespace `shop`, and a second copy would only be reported as a duplicate.
fn authz_example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples/authz.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let docs: Vec<&str> = text
        .split("\n---\n")
        .filter(|doc| {
            let value: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(doc).unwrap_or_else(|e| panic!("{path}: {e}\n{doc}"));
            value.get("kind").and_then(|k| k.as_str()) != Some("Namespace")
        })
        .collect();
    assert!(
        docs.len() >= 6,
        "{path}: expected the Server, two HTTPRoutes, a MeshTLSAuthentication and two policies"
    );
    docs.join("\n---\n")
}

/// The example's truth table for `web-v1`. The Server denies by default and has two routes:
/// `web-get` (GET, any path under `/`) for `client` and `web-admin` (POST under `/admin`) for
/// `ops`. So GET of any path is `client`'s alone, POST `/admin` is `ops`'s alone, and a request
/// no route matches (POST `/`) is 404 for everyone, before authorization.
const REQUESTS: [(&str, &str); 5] = [
    ("GET", "/"),
    ("POST", "/admin"),
    ("GET", "/admin"),
    ("POST", "/"),
    ("GET", "/other"),
];
const EXPECTED: [(&str, [u16; 5]); 3] = [
    ("client", [200, 403, 200, 404, 200]),
    ("ops", [403, 200, 403, 404, 403]),
    ("unmeshed", [403, 403, 403, 404, 403]),
];

#[test]
fn the_authz_example_admits_exactly_what_it_says() {
    let Some((_guard, shop)) = shop("authz_example", Options::default()) else {
        return;
    };
    let ops = meshed_caller(&shop, "ops", "ops", &[]);
    let unmeshed = shop.net.pod("unmeshed").expect("pod");
    shop.write_manifest("authz.yaml", &authz_example())
        .expect("write the example");
    let pod_ip = shop.v1.pod.ip;
    // Only the example's routes answer 404; the default policy would let this through.
    let mut last: Got;
    assert_eventually!(
        {
            last = call(&unmeshed, "POST", pod_ip, "/");
            last.code() == 404
        },
        PROPAGATION,
        "web-v1 never followed the example's Server: {last:?}\n{}",
        shop.controller.log()
    );

    let log = shop.controller.log();
    assert!(
        !log.contains("invalid document"),
        "the example is valid as it stands:\n{log}"
    );

    let before = shop.v1.metrics();
    // Everyone dials the pod IP: the meshed callers' identities reaching the app (and the
    // `tls="true"` counts below) prove that pod-IP calls between sidecars are mTLS.
    let callers: [(&str, &Pod, Ipv4Addr, Option<String>); 3] = [
        ("client", &shop.client.pod, pod_ip, Some(identity("client"))),
        ("ops", &ops.pod, pod_ip, Some(identity("ops"))),
        ("unmeshed", &unmeshed, pod_ip, None),
    ];
    let mut table = Vec::new();
    for (name, pod, addr, id) in &callers {
        let mut row = [0; 5];
        for (cell, (method, path)) in row.iter_mut().zip(REQUESTS) {
            let got = call(pod, method, *addr, path);
            match &got {
                Got::App(seen) => assert_eq!(
                    seen,
                    id.as_deref().unwrap_or("-"),
                    "{name} {method} {path}: the app sees the caller's identity"
                ),
                Got::Status(403, why) => assert!(
                    why.starts_with("unauthorized: ") && why.contains("server web-http"),
                    "{name} {method} {path}: a 403 says why: {got:?}"
                ),
                Got::Status(404, why) => {
                    assert_eq!(why, "no route", "{name} {method} {path}: {got:?}")
                }
                other => eprintln!("{name} {method} {path}: {other:?}"),
            }
            *cell = got.code();
        }
        table.push((*name, row));
    }
    assert_eq!(
        table,
        EXPECTED,
        "statuses by caller for {REQUESTS:?}\n--- web-v1's proxy ---\n{}",
        shop.v1.process.log()
    );

    // Every refusal was counted by route and TLS; every admission by its policy.
    let after = shop.v1.metrics();
    let delta = |metric: &str, labels: &[&str]| {
        let mut labels = labels.to_vec();
        labels.push("srv_name=\"web-http\"");
        metric_sum(&after, metric, &labels) - metric_sum(&before, metric, &labels)
    };
    let deny = "inbound_http_authz_deny_total";
    let allow = "inbound_http_authz_allow_total";
    let counted = [
        delta(deny, &["route_name=\"web-get\"", "tls=\"true\""]),
        delta(deny, &["route_name=\"web-get\"", "tls=\"false\""]),
        delta(deny, &["route_name=\"web-admin\"", "tls=\"true\""]),
        delta(deny, &["route_name=\"web-admin\"", "tls=\"false\""]),
        delta(
            allow,
            &["route_name=\"web-get\"", "authz_name=\"client-get\""],
        ),
        delta(
            allow,
            &["route_name=\"web-admin\"", "authz_name=\"ops-admin\""],
        ),
    ];
    assert_eq!(
        counted,
        [3.0, 3.0, 1.0, 1.0, 3.0, 1.0],
        "deny web-get (mesh, plain), deny web-admin (mesh, plain), allow client-get, ops-admin\n{after}"
    );
}

/// What a caller should get under a default policy.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The app answers.
    Allowed,
    /// 403 from the default policy of this name.
    DeniedBy(&'static str),
}

fn as_expected(got: &Got, expect: Expect, id: Option<&str>) -> bool {
    match (expect, got) {
        (Expect::Allowed, Got::App(seen)) => seen == id.unwrap_or("-"),
        (Expect::DeniedBy(policy), Got::Status(403, why)) => {
            why.starts_with("unauthorized: ") && why.contains(&format!("server {policy} "))
        }
        _ => false,
    }
}

#[test]
fn each_default_policy_behaves_as_named_and_follows_the_annotations_live() {
    let Some((_guard, shop)) = shop("default_policies", Options::default()) else {
        return;
    };
    let unmeshed = shop.net.pod("unmeshed").expect("pod");
    let client_id = identity("client");
    let cluster = shop.dir.join("cluster.yaml");
    let original = std::fs::read_to_string(&cluster).expect("cluster.yaml");
    let plain_ns = manifests::namespace(NAMESPACE);
    let v1_spec = manifests::PodSpec {
        namespace: NAMESPACE,
        name: "web-v1",
        ip: IpAddr::V4(shop.v1.pod.ip),
        service_account: "web",
        app: "web",
        version: "v1",
    };
    let plain_v1 = manifests::pod(&v1_spec);
    assert!(
        original.contains(&plain_ns) && original.contains(&plain_v1),
        "cluster.yaml holds the namespace and web-v1 as manifests.rs writes them:\n{original}"
    );
    // Rewrites the namespace's and web-v1's annotations in the shop's own cluster.yaml.
    let annotate = |ns: Option<&'static str>, pod: Option<&'static str>| {
        let ann = |p: Option<&'static str>| -> Vec<(&str, &str)> {
            p.map(|p| vec![(DEFAULT_POLICY, p)]).unwrap_or_default()
        };
        let ns_doc = manifests::namespace_with_annotations(NAMESPACE, &ann(ns));
        let v1_doc = manifests::pod_with_annotations(&v1_spec, &ann(pod));
        let text = original
            .replacen(&plain_ns, &ns_doc, 1)
            .replacen(&plain_v1, &v1_doc, 1);
        shop.write_manifest("cluster.yaml", &text)
            .expect("rewrite cluster.yaml");
    };

    use Expect::{Allowed, DeniedBy};
    // (namespace annotation, web-v1's annotation, meshed client, unmeshed pod). No Server
    // selects web-v1:8080, so its default applies: the pod's, else the namespace's, else the
    // controller's (all-unauthenticated). Local pods are in 10.42.0.0/24, a cluster network.
    let steps: [(Option<&'static str>, Option<&'static str>, Expect, Expect); 6] = [
        (None, None, Allowed, Allowed),
        (
            Some("all-authenticated"),
            None,
            Allowed,
            DeniedBy("all-authenticated"),
        ),
        (
            Some("cluster-authenticated"),
            None,
            Allowed,
            DeniedBy("cluster-authenticated"),
        ),
        (Some("deny"), None, DeniedBy("deny"), DeniedBy("deny")),
        (Some("deny"), Some("all-unauthenticated"), Allowed, Allowed),
        (
            Some("all-unauthenticated"),
            Some("deny"),
            DeniedBy("deny"),
            DeniedBy("deny"),
        ),
    ];
    let pod_ip = shop.v1.pod.ip;
    for (ns, pod, client, outsider) in steps {
        annotate(ns, pod);
        let observe = || {
            [
                call(&shop.client.pod, "GET", MESHED_TO_V1, "/"),
                call(&unmeshed, "GET", pod_ip, "/"),
            ]
        };
        let holds = |got: &[Got; 2]| {
            as_expected(&got[0], client, Some(&client_id)) && as_expected(&got[1], outsider, None)
        };
        let mut last: [Got; 2];
        assert_eventually!(
            {
                last = observe();
                holds(&last)
            },
            PROPAGATION,
            "namespace {ns:?}, web-v1 {pod:?}: expected client {client:?}, unmeshed {outsider:?}; got {last:?}"
        );
        // Not a passing moment: the same answer again.
        let again = observe();
        assert!(
            holds(&again),
            "namespace {ns:?}, web-v1 {pod:?}: flapped to {again:?}"
        );
    }
    // The pod's annotation is the pod's alone: web-v2 follows the namespace.
    annotate(Some("deny"), Some("all-unauthenticated"));
    let mut last: Got;
    assert_eventually!(
        {
            last = call(&shop.client.pod, "GET", shop::WEB_V2_IP, "/");
            as_expected(&last, DeniedBy("deny"), None)
        },
        PROPAGATION,
        "web-v2 must follow the namespace's deny: {last:?}"
    );
    assert!(
        as_expected(
            &call(&shop.client.pod, "GET", MESHED_TO_V1, "/"),
            Allowed,
            Some(&client_id)
        ),
        "web-v1 keeps its own all-unauthenticated"
    );
    for sidecar in [&shop.client, &shop.v1, &shop.v2] {
        assert!(
            sidecar.process.try_wait().is_none(),
            "{}: no proxy restarted",
            sidecar.pod.name
        );
    }
}

const OPAQUE_SERVER: &str = "apiVersion: policy.weft.dev/v1alpha1
kind: Server
metadata:
  name: web-tcp
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  port: 8080
  proxyProtocol: opaque
  accessPolicy: deny
";

const CLIENT_MAY_CONNECT: &str = "apiVersion: policy.weft.dev/v1alpha1
kind: MeshTLSAuthentication
metadata:
  name: client
  namespace: shop
spec:
  identityRefs:
    - kind: ServiceAccount
      name: client
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: client-tcp
  namespace: shop
spec:
  targetRef:
    group: policy.weft.dev
    kind: Server
    name: web-tcp
  requiredAuthenticationRefs:
    - group: policy.weft.dev
      kind: MeshTLSAuthentication
      name: client
";

fn closed(got: &Got) -> bool {
    matches!(got, Got::Closed(why) if !why.contains("timed out"))
}

#[test]
fn an_opaque_server_closes_unauthorized_connections_and_admits_the_authorized() {
    let Some((_guard, shop)) = shop("opaque_server", Options::default()) else {
        return;
    };
    // Callers whose sidecars forward port 8080 as bytes, as they would for a TCP protocol:
    // a refusal then reaches the app as the closed connection it is.
    let opaque = [("WEFT_PROXY_OPAQUE_PORTS", "8080")];
    let tcp_client = meshed_caller(&shop, "tcp-client", "client", &opaque);
    let ops = meshed_caller(&shop, "ops", "ops", &opaque);
    let unmeshed = shop.net.pod("unmeshed").expect("pod");
    let (web, pod_ip) = (MESHED_TO_V1, shop.v1.pod.ip);
    shop.write_manifest("web-tcp.yaml", OPAQUE_SERVER)
        .expect("write the Server");
    let mut last: Got;
    assert_eventually!(
        {
            last = call(&unmeshed, "GET", pod_ip, "/");
            closed(&last)
        },
        PROPAGATION,
        "web-v1 never followed the opaque deny Server: {last:?}\n{}",
        shop.controller.log()
    );

    let tcp = |text: &str, tls: bool| {
        metric_sum(
            text,
            "inbound_tcp_authz_deny_total",
            &["srv_name=\"web-tcp\"", &format!("tls=\"{tls}\"")],
        )
    };
    let before = shop.v1.metrics();
    let got = [
        call(&tcp_client.pod, "GET", web, "/"),
        call(&ops.pod, "GET", web, "/"),
        call(&unmeshed, "GET", pod_ip, "/"),
    ];
    assert!(
        got.iter().all(closed),
        "client, ops and unmeshed are all refused by closing: {got:?}"
    );
    let after = shop.v1.metrics();
    assert_eq!(
        [
            tcp(&after, true) - tcp(&before, true),
            tcp(&after, false) - tcp(&before, false)
        ],
        [2.0, 1.0],
        "one denial per connection, mesh TLS (client, ops) and plain (unmeshed)\n{after}"
    );

    // The shop's own client has the same identity, but its sidecar speaks HTTP to web-v1 (the
    // Server's protocol does not reach callers' sidecars): the closed connection becomes its
    // sidecar's 502.
    let got = call(&shop.client.pod, "GET", web, "/");
    assert!(
        // Closed or reset, depending on whether the close or the request wins the race.
        matches!(&got, Got::Status(502, why) if why.contains("closed") || why.contains("reset")),
        "{got:?}"
    );

    shop.write_manifest("web-tcp-authz.yaml", CLIENT_MAY_CONNECT)
        .expect("write the policy");
    let mut last: Got;
    // Opaque: the proxy never reads the request, so it adds no `weft-client-id`.
    assert_eventually!(
        {
            last = call(&tcp_client.pod, "GET", web, "/");
            last == Got::App("-".into())
        },
        PROPAGATION,
        "the client's MeshTLSAuthentication never let it through: {last:?}"
    );
    let allowed_before = metric_sum(
        &shop.v1.metrics(),
        "inbound_tcp_authz_allow_total",
        &["srv_name=\"web-tcp\"", "tls=\"true\""],
    );
    let got = [
        call(&tcp_client.pod, "GET", web, "/"),
        call(&ops.pod, "GET", web, "/"),
        call(&unmeshed, "GET", pod_ip, "/"),
    ];
    assert!(
        got[0] == Got::App("-".into()) && closed(&got[1]) && closed(&got[2]),
        "only the client is let through: {got:?}"
    );
    let allowed = metric_sum(
        &shop.v1.metrics(),
        "inbound_tcp_authz_allow_total",
        &["srv_name=\"web-tcp\"", "tls=\"true\""],
    );
    assert_eq!(allowed - allowed_before, 1.0, "one admission counted");

    // The shop's own client, whose sidecar speaks HTTP: the same identity, let in too.
    let got = call(&shop.client.pod, "GET", web, "/");
    assert_eq!(got, Got::App("-".into()), "{}", shop.client.process.log());
}

/// web:8080 declared HTTP/1, open to every network.
const OPEN_HTTP_SERVER: &str = "apiVersion: policy.weft.dev/v1alpha1
kind: Server
metadata: {name: web-http1, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: 8080
  proxyProtocol: HTTP/1
  accessPolicy: deny
---
apiVersion: policy.weft.dev/v1alpha1
kind: NetworkAuthentication
metadata: {name: anywhere, namespace: shop}
spec:
  networks: [{cidr: 0.0.0.0/0}]
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-from-anywhere, namespace: shop}
spec:
  targetRef: {group: policy.weft.dev, kind: Server, name: web-http1}
  requiredAuthenticationRefs:
    - {group: policy.weft.dev, kind: NetworkAuthentication, name: anywhere}
";

/// What a raw client got after sending `first`, pausing, then sending `rest`.
fn raw_exchange(
    pod: &Pod,
    ip: Ipv4Addr,
    first: &'static str,
    pause: Duration,
    rest: &'static str,
) -> String {
    pod.run(move || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut tcp) = tokio::net::TcpStream::connect((ip, PORT)).await else {
            return "connect failed".to_string();
        };
        let _ = tcp.write_all(first.as_bytes()).await;
        tokio::time::sleep(pause).await;
        let _ = tcp.write_all(rest.as_bytes()).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).to_string()
    })
}

#[test]
fn bytes_that_never_become_http_get_nowhere_on_an_http_server() {
    let Some((_guard, shop)) = shop("bytes_that_never_become_http", Options::default()) else {
        return;
    };
    shop.write_manifest("web-http1.yaml", OPEN_HTTP_SERVER)
        .expect("write the policy");
    let raw = shop.net.pod("raw").expect("pod");
    let v1 = shop.v1.pod.ip;
    let forged = "\r\nHost: web\r\nweft-client-id: admin.shop.serviceaccount.identity.cluster.local\r\nConnection: close\r\n\r\n";
    // A request sent in one go is served (the policy admits everyone) ...
    assert_eventually!(
        raw_exchange(&raw, v1, "GET / HTTP/1.1", Duration::ZERO, forged)
            .starts_with("HTTP/1.1 200"),
        PROPAGATION,
        "the open HTTP server must serve a plain request"
    );
    // ... and the app never sees a client id the proxy did not set.
    let answer = raw_exchange(&raw, v1, "GET / HTTP/1.1", Duration::ZERO, forged);
    assert!(
        answer.to_lowercase().contains(&format!("{CLIENT_ID}: -")),
        "the forged weft-client-id is stripped: {answer}"
    );
    // The same request held back past the detect timeout is not HTTP to detection: on a server
    // that only speaks HTTP it is closed, never copied to the app with its forged header.
    let stalled = raw_exchange(
        &raw,
        v1,
        "GET / HTTP/1.1",
        Duration::from_millis(1500),
        forged,
    );
    assert!(
        stalled.is_empty(),
        "a stalled request must not reach the app as raw bytes: {stalled}"
    );
}
