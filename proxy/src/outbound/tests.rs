//! Backend choice for opaque connections and FirstAvailable routes.

use super::*;
use crate::{metrics::Metrics, policy::Backend};
use std::time::Duration;

#[tokio::test]
async fn an_opaque_forward_to_a_meshed_pod_must_prove_its_identity() {
    let discovery = Discovery::new(
        "127.0.0.1:1",
        "shop/client".into(),
        Duration::from_millis(50),
        Metrics::new(),
    )
    .expect("valid address");
    let addr: SocketAddr = "10.0.0.7:8080".parse().expect("addr");
    let id = "web.shop.serviceaccount.identity.weft.cluster.local";
    let meshed = OpaqueRoutes::forward(Arc::new(Backend {
        name: addr.to_string().into(),
        kind: BackendKind::Forward {
            addr,
            identity: Some(id.into()),
        },
    }));
    let target = opaque_target(&discovery, &meshed).await.expect("a target");
    assert_eq!(target.addr, addr);
    assert_eq!(target.server_id.as_deref(), Some(id));
    assert!(target.guard.is_none());

    let plain = OpaqueRoutes::forward(Arc::new(Backend::forward(addr)));
    let target = opaque_target(&discovery, &plain).await.expect("a target");
    assert_eq!(target.addr, addr);
    assert_eq!(target.server_id, None);
}

#[tokio::test]
async fn first_available_skips_a_balancer_without_endpoints() {
    // Nothing listens on port 1: the balancer never resolves within the 50 ms timeout.
    let discovery = Discovery::new(
        "127.0.0.1:1",
        "shop/client".into(),
        Duration::from_millis(50),
        Metrics::new(),
    )
    .expect("valid address");
    let balancer = RouteBackend::new(Arc::new(Backend {
        name: "shop/web-v2:8080".into(),
        kind: BackendKind::Balancer {
            path: "web-v2.shop.svc.cluster.local:8080".into(),
            default_rtt: Duration::from_millis(30),
            decay: Duration::from_secs(10),
            queue: crate::policy::Queue::default(),
        },
    }));
    let forward = RouteBackend::new(Arc::new(Backend::forward(
        "10.0.0.1:80".parse().expect("addr"),
    )));
    let list = [balancer.clone(), forward.clone()];
    let picked = first_available(&*discovery, &list)
        .await
        .expect("a backend");
    assert_eq!(picked.backend, forward.backend);
    // With nothing available, the first is used and its failure reaches the client.
    let only = [balancer.clone()];
    assert_eq!(
        first_available(&*discovery, &only)
            .await
            .expect("a backend")
            .backend,
        balancer.backend
    );
    assert!(first_available(&*discovery, &[]).await.is_none());
}
