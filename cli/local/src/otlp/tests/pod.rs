//! A receiver in a pod's network namespace, reached from another pod over the bridge, as
//! proxies reach it in the demo and the end-to-end tests. Needs root; with `CI=true` a missing
//! prerequisite fails the test.

use super::{TRACE_HEX, WAIT, resource, span};
use crate::{Network, Pod, otlp::Receiver};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    trace::v1::span::SpanKind as Kind,
};
use std::net::SocketAddr;
use tonic::transport::Endpoint;

/// Exports one span from inside `pod` to `addr`.
fn export_from(pod: &Pod, addr: SocketAddr, id: u8) -> Result<(), tonic::Status> {
    pod.run(move || async move {
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("a valid endpoint");
        let mut client = TraceServiceClient::new(endpoint.connect_lazy());
        let resource_spans = vec![resource(
            "app.shop",
            vec![span(id, None, Kind::Client, 0, 10)],
        )];
        client
            .export(ExportTraceServiceRequest { resource_spans })
            .await
            .map(|_| ())
    })
}

#[test]
fn serves_on_its_pod_ip_to_other_pods() {
    if !crate::prerequisites_met("a receiver in a pod") {
        return;
    }
    let net = Network::new().expect("a network");
    let otel = net.pod("otel").expect("the collector's pod");
    let app = net.pod("app").expect("an app pod");
    let mut receiver = Receiver::start_in(&otel, 4317).expect("listens in the pod");
    let addr = receiver.addr();
    assert_eq!(addr, SocketAddr::from((otel.ip, 4317)));
    assert_eq!(receiver.endpoint(), format!("http://{}:4317", otel.ip));

    export_from(&app, addr, 1).expect("accepted from another pod");
    let spans = receiver.wait_for(|s| s.len() == 1, WAIT).expect("the span");
    assert_eq!(spans[0].trace_id, TRACE_HEX);
    assert_eq!(spans[0].service_name(), Some("app.shop"));

    receiver.stop();
    let err = export_from(&app, addr, 2).expect_err("refused while stopped");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");

    receiver.resume().expect("serves again in the pod");
    export_from(&app, addr, 3).expect("accepted after resume");
    let ids: Vec<String> = receiver.spans().into_iter().map(|s| s.span_id).collect();
    assert_eq!(ids, ["0101010101010101", "0303030303030303"]);
}
