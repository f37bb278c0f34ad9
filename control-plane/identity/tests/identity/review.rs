//! TokenReviewer against a fake API server: a `tower_test` mock behind a real `kube::Client`
//! that checks each request and answers with the JSON a real API server sends.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use std::time::Duration;
use tower_test::mock;
use weft_controller_identity::{AuthError, Authenticator, ServiceAccount, TokenReviewer};

type Handle = mock::Handle<Request<Body>, Response<Body>>;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.payload.signature";

/// Runs `authenticate(TOKEN)` against a fake API server that checks the request and answers
/// `status` with `body`.
async fn review(status: StatusCode, body: Value) -> Result<ServiceAccount, AuthError> {
    let (service, mut handle): (_, Handle) = mock::pair();
    let reviewer = TokenReviewer::new(kube::Client::new(service, "default"));
    let server = tokio::spawn(async move {
        let (req, respond) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
            .await
            .expect("no TokenReview request")
            .expect("client gone");
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri().path(),
            "/apis/authentication.k8s.io/v1/tokenreviews"
        );
        let sent: Value =
            serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(sent["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(sent["kind"], "TokenReview");
        assert_eq!(sent["spec"]["token"], TOKEN);
        assert_eq!(sent["spec"]["audiences"], json!(["identity.weft.dev"]));
        respond.send_response(
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    });
    let result = reviewer.authenticate(TOKEN).await;
    server.await.unwrap();
    result
}

/// A reviewed TokenReview as the API server returns it (it echoes the spec).
fn reviewed(status: Value) -> Value {
    json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {"token": TOKEN, "audiences": ["identity.weft.dev"]},
        "status": status,
    })
}

fn user(username: &str) -> Value {
    json!({
        "username": username,
        "uid": "0f6c2f4e-8d6a-4b1e-9f3c-2a5b7c9d1e3f",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"],
        "extra": {
            "authentication.kubernetes.io/pod-name": ["web-7d9f8b6c5-x2x4q"],
            "authentication.kubernetes.io/pod-uid": ["5b1c6a3e-2f4d-4e8a-9c7b-1d3e5f7a9b2c"],
        },
    })
}

fn status_error(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

#[tokio::test]
async fn an_authenticated_service_account_token() {
    let sa = review(
        StatusCode::CREATED,
        reviewed(json!({
            "authenticated": true,
            "user": user("system:serviceaccount:shop:web"),
            "audiences": ["identity.weft.dev"],
        })),
    )
    .await
    .unwrap();
    assert_eq!(
        sa,
        ServiceAccount {
            namespace: "shop".into(),
            name: "web".into()
        }
    );
}

#[tokio::test]
async fn an_unauthenticated_token_says_why() {
    let err = review(
        StatusCode::CREATED,
        reviewed(json!({
            "user": {},
            "error": "[invalid bearer token, service account token has expired]",
        })),
    )
    .await
    .unwrap_err();
    match &err {
        AuthError::NotAuthenticated { reason } => assert!(reason.contains("expired"), "{err}"),
        other => panic!("{other:?}"),
    }
    assert!(!err.is_unavailable());
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_token_for_another_audience() {
    // An API server that ignores spec.audiences authenticates the token but echoes none.
    for audiences in [json!(["https://kubernetes.default.svc"]), Value::Null] {
        let err = review(
            StatusCode::CREATED,
            reviewed(json!({
                "authenticated": true,
                "user": user("system:serviceaccount:shop:web"),
                "audiences": audiences,
            })),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, AuthError::WrongAudience { expected, .. } if expected == "identity.weft.dev"),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_user_that_is_not_a_service_account() {
    for username in [
        "jane@example.com",
        "system:node:node-a",
        "system:serviceaccount:shop",
        "system:serviceaccount::web",
        "system:serviceaccount:shop:web:extra",
    ] {
        let err = review(
            StatusCode::CREATED,
            reviewed(json!({
                "authenticated": true,
                "user": user(username),
                "audiences": ["identity.weft.dev"],
            })),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, AuthError::NotServiceAccount { username: u } if u == username),
            "{username}: {err:?}"
        );
    }
}

#[tokio::test]
async fn api_errors_are_unavailable_not_refusals() {
    let cases = [
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            status_error(500, "InternalError", "etcdserver: request timed out"),
        ),
        (
            StatusCode::FORBIDDEN,
            status_error(
                403,
                "Forbidden",
                "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:weft:weft-controller\" cannot create resource \"tokenreviews\"",
            ),
        ),
    ];
    for (code, body) in cases {
        let err = review(code, body).await.unwrap_err();
        assert!(matches!(err, AuthError::Api(_)), "{code}: {err:?}");
        assert!(err.is_unavailable());
    }
}
