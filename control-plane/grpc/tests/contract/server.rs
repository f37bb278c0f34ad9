//! Serving: shutdown ends open watch streams so the server can return.

use crate::{Fake, next, start};
use std::num::NonZeroU16;
use weft_controller_core::{ServicePort, ServiceRef};
use weft_proto::destination::{GetDestination, destination_client::DestinationClient};

#[tokio::test]
async fn shutdown_ends_open_streams_and_returns() {
    let fake = Fake::default();
    let server = start(&fake).await;
    let mut client = DestinationClient::new(server.channel().await);
    let mut updates = client
        .get(GetDestination {
            path: "web.shop.svc.cluster.local:80".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    next(&mut updates).await;

    server.stop().await.expect("server failed");
    let end = crate::within(Box::pin(updates.message())).await;
    assert!(
        matches!(end, Ok(None) | Err(_)),
        "stream still open: {end:?}"
    );

    // The index outlives the server; nothing it publishes now goes anywhere, or blocks.
    let web = ServicePort::new(ServiceRef::new("shop", "web"), NonZeroU16::new(80).unwrap());
    fake.set_endpoints(&web, Default::default());
}
