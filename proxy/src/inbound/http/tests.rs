//! `AuthorizeHttp` in front of a recording service: what reaches the app, what is refused, the
//! headers, the counters, and policy updates on an open connection.

use super::*;
use crate::{
    http::PROXY_ERROR,
    inbound::{
        ClientTls, InboundPolicy,
        tests::{
            ADMIN, WEB, authz, conn, detect, everywhere, http_route, mesh, meshed, policy, prefix,
            server, unauthenticated,
        },
    },
    metrics::Metrics,
};
use std::{convert::Infallible, sync::Mutex};
use tokio::sync::watch;
use tower::{Service, ServiceExt};
use weft_proto::{http_route as route, http_types, inbound as proto};

/// What the app received: the requests' paths and `weft-client-id` headers.
type Seen = Arc<Mutex<Vec<(String, Option<String>, HeaderMap)>>>;

use http::HeaderMap;

fn app(
    seen: Seen,
) -> impl Service<Request<()>, Response = Response<ProxyBody>, Error = Infallible> + Clone {
    tower::service_fn(move |req: Request<()>| {
        let seen = seen.clone();
        async move {
            let id = req
                .headers()
                .get(&CLIENT_ID)
                .map(|v| v.to_str().unwrap_or("?").to_string());
            seen.lock()
                .unwrap()
                .push((req.uri().path().to_string(), id, req.headers().clone()));
            Ok::<_, Infallible>(Response::new(http_body_util::Either::Right(Full::new(
                Bytes::from_static(b"app"),
            ))))
        }
    })
}

struct Harness {
    metrics: Arc<Metrics>,
    seen: Seen,
    tx: watch::Sender<Option<Arc<InboundPolicy>>>,
}

impl Harness {
    /// A port whose current policy is `p`.
    fn new(p: InboundPolicy) -> Self {
        let (tx, _) = watch::channel(Some(Arc::new(p)));
        Self {
            metrics: Metrics::new(),
            seen: Seen::default(),
            tx,
        }
    }

    fn service(
        &self,
        tls: ClientTls,
    ) -> AuthorizeHttp<
        impl Service<Request<()>, Response = Response<ProxyBody>, Error = Infallible> + Clone,
    > {
        let deny_all = Arc::new(crate::inbound::DefaultPolicy::Deny.policy(&[]));
        let port = PortPolicy::new(Some(self.tx.subscribe()), deny_all, self.metrics.clone());
        port.authorize_http(conn("10.1.0.1:4000", tls), app(self.seen.clone()))
    }

    fn seen(&self) -> Vec<(String, Option<String>, HeaderMap)> {
        self.seen.lock().unwrap().clone()
    }

    fn has_line(&self, line: &str) -> bool {
        self.metrics.encode().lines().any(|l| l == line)
    }
}

async fn send<S>(svc: &mut S, path: &str, headers: &[(&str, &str)]) -> Response<ProxyBody>
where
    S: Service<Request<()>, Response = Response<ProxyBody>, Error = Infallible>,
{
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(()).expect("a request");
    svc.ready()
        .await
        .expect("ready")
        .call(req)
        .await
        .expect("infallible")
}

fn proxy_error(rsp: &Response<ProxyBody>) -> String {
    rsp.headers()
        .get(PROXY_ERROR)
        .map(|v| v.to_str().expect("ASCII").to_string())
        .unwrap_or_default()
}

fn open_server() -> InboundPolicy {
    policy(server(
        "web-http",
        detect(vec![]),
        vec![authz("anyone", everywhere(), unauthenticated())],
    ))
}

#[tokio::test]
async fn a_plaintext_client_cannot_forge_the_client_id() {
    let h = Harness::new(open_server());
    let mut svc = h.service(ClientTls::None);
    let rsp = send(&mut svc, "/", &[("weft-client-id", ADMIN)]).await;
    assert_eq!(rsp.status(), StatusCode::OK);
    assert_eq!(h.seen(), vec![("/".to_string(), None, HeaderMap::new())]);
    assert!(h.has_line(r#"inbound_http_authz_allow_total{srv_name="web-http",route_name="default",authz_name="anyone",tls="false"} 1"#));
}

#[tokio::test]
async fn a_meshed_client_s_identity_replaces_any_sent() {
    let h = Harness::new(open_server());
    let mut svc = h.service(meshed(WEB));
    send(
        &mut svc,
        "/",
        &[("weft-client-id", ADMIN), ("weft-client-id", "x")],
    )
    .await;
    let seen = h.seen();
    assert_eq!(seen[0].1.as_deref(), Some(WEB));
    assert_eq!(seen[0].2.get_all(&CLIENT_ID).iter().count(), 1);
    assert!(h.has_line(r#"inbound_http_authz_allow_total{srv_name="web-http",route_name="default",authz_name="anyone",tls="true"} 1"#));
}

#[tokio::test]
async fn a_denied_grpc_request_gets_permission_denied_in_grpc_terms() {
    let h = Harness::new(policy(server(
        "web-grpc",
        detect(vec![]),
        vec![authz("meshed", everywhere(), mesh(&[WEB], &[]))],
    )));
    let mut svc = h.service(ClientTls::None);
    let rsp = send(
        &mut svc,
        "/shop.Web/Get",
        &[("content-type", "application/grpc+proto")],
    )
    .await;
    assert_eq!(
        rsp.status(),
        StatusCode::OK,
        "gRPC errors travel in grpc-status"
    );
    assert_eq!(rsp.headers()["grpc-status"], "7");
    assert!(
        rsp.headers()["grpc-message"]
            .to_str()
            .expect("ASCII")
            .starts_with("unauthorized: no authorization of server web-grpc")
    );
    assert!(proxy_error(&rsp).starts_with("unauthorized:"));
    assert!(h.seen().is_empty(), "the app saw a denied request");
}

#[tokio::test]
async fn a_denied_request_is_403_and_never_forwarded() {
    let h = Harness::new(policy(server(
        "web-http",
        detect(vec![]),
        vec![authz("meshed", everywhere(), mesh(&[WEB], &[]))],
    )));
    let mut svc = h.service(ClientTls::None);
    let rsp = send(&mut svc, "/", &[]).await;
    assert_eq!(rsp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        proxy_error(&rsp),
        "unauthorized: no authorization of server web-http permits an unauthenticated client from 10.1.0.1"
    );
    assert!(h.seen().is_empty(), "the app saw a denied request");
    assert!(h.has_line(
        r#"inbound_http_authz_deny_total{srv_name="web-http",route_name="default",tls="false"} 1"#
    ));
}

fn routed() -> InboundPolicy {
    let set_header = proto::http_route::Filter {
        kind: Some(proto::http_route::filter::Kind::RequestHeaderModifier(
            route::RequestHeaderModifier {
                add: None,
                set: Some(http_types::Headers {
                    headers: vec![http_types::headers::Header {
                        name: "x-route".into(),
                        value: b"public".to_vec(),
                    }],
                }),
                remove: vec![],
            },
        )),
    };
    let redirect = proto::http_route::Filter {
        kind: Some(proto::http_route::filter::Kind::Redirect(
            route::RequestRedirect {
                scheme: None,
                host: "docs.example.com".into(),
                path: None,
                port: 0,
                status: 302,
            },
        )),
    };
    policy(server(
        "web-http",
        detect(vec![
            http_route(
                "public",
                vec![prefix("/public")],
                vec![set_header],
                vec![authz("anyone", everywhere(), unauthenticated())],
            ),
            http_route(
                "admin",
                vec![prefix("/admin")],
                vec![],
                vec![authz("admins", everywhere(), mesh(&[ADMIN], &[]))],
            ),
            http_route(
                "docs",
                vec![prefix("/docs")],
                vec![redirect],
                vec![authz("anyone", everywhere(), unauthenticated())],
            ),
        ]),
        vec![authz("server-wide", everywhere(), unauthenticated())],
    ))
}

#[tokio::test]
async fn requests_are_authorized_by_their_route() {
    let h = Harness::new(routed());
    let mut plain = h.service(ClientTls::None);
    let mut admin = h.service(meshed(ADMIN));

    let rsp = send(&mut plain, "/nothing-here", &[]).await;
    assert_eq!(
        (rsp.status(), proxy_error(&rsp).as_str()),
        (StatusCode::NOT_FOUND, "no route")
    );

    let rsp = send(&mut plain, "/admin/users", &[]).await;
    assert_eq!(rsp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        proxy_error(&rsp),
        "unauthorized: no authorization of route admin on server web-http permits an unauthenticated client from 10.1.0.1"
    );
    assert!(h.seen().is_empty());

    assert_eq!(
        send(&mut admin, "/admin/users", &[]).await.status(),
        StatusCode::OK
    );
    let rsp = send(&mut plain, "/public/x", &[]).await;
    assert_eq!(rsp.status(), StatusCode::OK);
    let seen = h.seen();
    assert_eq!(
        seen.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["/admin/users", "/public/x"]
    );
    assert_eq!(seen[0].1.as_deref(), Some(ADMIN));
    assert_eq!(
        seen[1].2.get("x-route").map(|v| v.as_bytes()),
        Some(&b"public"[..]),
        "the route's filter applies"
    );

    // A redirect filter answers without forwarding.
    let rsp = send(&mut plain, "/docs/intro", &[]).await;
    assert_eq!(rsp.status(), StatusCode::FOUND);
    assert_eq!(
        rsp.headers()["location"],
        "http://docs.example.com/docs/intro"
    );
    assert_eq!(h.seen().len(), 2);

    for line in [
        r#"inbound_http_authz_deny_total{srv_name="web-http",route_name="admin",tls="false"} 1"#,
        r#"inbound_http_authz_allow_total{srv_name="web-http",route_name="admin",authz_name="admins",tls="true"} 1"#,
        r#"inbound_http_authz_allow_total{srv_name="web-http",route_name="public",authz_name="anyone",tls="false"} 1"#,
    ] {
        assert!(h.has_line(line), "missing {line}\n{}", h.metrics.encode());
    }
}

#[tokio::test]
async fn each_request_follows_the_latest_policy() {
    let h = Harness::new(open_server());
    let mut svc = h.service(ClientTls::None);
    assert_eq!(send(&mut svc, "/", &[]).await.status(), StatusCode::OK);

    h.tx.send_replace(Some(Arc::new(policy(server(
        "web-http",
        detect(vec![]),
        vec![],
    )))));
    assert_eq!(
        send(&mut svc, "/", &[]).await.status(),
        StatusCode::FORBIDDEN
    );

    // Before the controller's first answer, the port's default applies (here: deny).
    h.tx.send_replace(None);
    assert_eq!(
        send(&mut svc, "/", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    h.tx.send_replace(Some(Arc::new(open_server())));
    assert_eq!(send(&mut svc, "/", &[]).await.status(), StatusCode::OK);
    assert_eq!(h.seen().len(), 2);
}

#[tokio::test]
async fn check_tcp_counts_decisions() {
    let h = Harness::new(open_server());
    let port = PortPolicy::new(
        Some(h.tx.subscribe()),
        Arc::new(open_server()),
        h.metrics.clone(),
    );
    assert!(port.check_tcp(&conn("10.1.0.1:1", meshed(WEB))).is_ok());
    h.tx.send_replace(Some(Arc::new(policy(server(
        "locked",
        detect(vec![]),
        vec![],
    )))));
    assert!(
        port.check_tcp(&conn("10.1.0.1:1", ClientTls::None))
            .is_err()
    );
    assert!(h.has_line(r#"inbound_tcp_authz_allow_total{srv_name="web-http",tls="true"} 1"#));
    assert!(h.has_line(r#"inbound_tcp_authz_deny_total{srv_name="locked",tls="false"} 1"#));
}
