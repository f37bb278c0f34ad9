//! The transparent data path through two sidecars: client app → client proxy (outbound) →
//! server proxy (inbound) → server app, checked through both proxies' metrics.

// Test code: the async blocks run inside `#[test]`s, where clippy cannot see it.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::Request;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};
use weft_e2e::{
    apps::{pattern, payload},
    assert_eventually,
    mesh::{Mesh, ports},
    prerequisites_met,
};
use weft_proto::{destination, identity};

const MIB: usize = 1024 * 1024;

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// `GET path` with an empty body.
fn get(path: &str) -> Request<Body> {
    Request::get(path).body(empty()).expect("valid request")
}

fn mesh(test: &str) -> Option<(Mesh, weft_cli_local::Background)> {
    if !prerequisites_met(test) {
        return None;
    }
    let mesh = Mesh::new(&[]);
    let apps = mesh.start_apps();
    Some((mesh, apps))
}

async fn h1(
    addr: SocketAddr,
) -> hyper::client::conn::http1::SendRequest<
    http_body_util::combinators::BoxBody<Bytes, std::io::Error>,
> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn.with_upgrades());
    send
}

#[test]
fn http1_streams_10_mib_both_ways_byte_exact() {
    let Some((mesh, _apps)) = mesh("http1_streams_10_mib_both_ways_byte_exact") else {
        return;
    };
    let server = SocketAddr::from((mesh.server_pod().ip, ports::HTTP));
    mesh.client_pod().run(move || async move {
        let mut send = h1(server).await;
        // GET a 10 MiB streamed response.
        let rsp = send
            .send_request(
                Request::get("/bytes/10485760")
                    .header("host", "server")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .expect("GET");
        assert_eq!(rsp.status(), 200);
        let body = rsp
            .into_body()
            .collect()
            .await
            .expect("GET body")
            .to_bytes();
        assert_eq!(body.len(), 10 * MIB);
        assert!(
            body.iter().enumerate().all(|(i, b)| *b == pattern(i)),
            "GET body differs"
        );

        // POST a 10 MiB body in 64 KiB chunks (no content-length: chunked), echoed back, on the
        // same keep-alive connection.
        send.ready().await.expect("keep-alive connection reusable");
        let chunks = (0..10 * MIB).step_by(64 * 1024).map(|start| {
            Ok::<_, std::io::Error>(Frame::data(Bytes::from(
                (start..start + 64 * 1024).map(pattern).collect::<Vec<_>>(),
            )))
        });
        let rsp = send
            .send_request(
                Request::post("/echo")
                    .header("host", "server")
                    .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
                        chunks,
                    ))))
                    .unwrap(),
            )
            .await
            .expect("POST");
        assert_eq!(rsp.status(), 200);
        let echoed = rsp
            .into_body()
            .collect()
            .await
            .expect("POST body")
            .to_bytes();
        assert!(
            echoed[..] == payload(10 * MIB)[..],
            "echoed body differs ({} bytes)",
            echoed.len()
        );
    });
    assert_eq!(
        mesh.outbound("request_total", ports::HTTP, &[]),
        2.0,
        "client proxy saw both requests"
    );
    assert_eq!(
        mesh.inbound("request_total", ports::HTTP, &[]),
        2.0,
        "server proxy saw both requests"
    );
    assert_eq!(
        mesh.outbound("tcp_open_total", ports::HTTP, &["protocol=\"http1\""]),
        1.0,
        "one keep-alive connection"
    );
    assert!(mesh.inbound("tcp_read_bytes_total", ports::HTTP, &[]) >= (10 * MIB) as f64);
    assert!(mesh.outbound("tcp_write_bytes_total", ports::HTTP, &[]) >= (20 * MIB) as f64);
    assert_eq!(
        mesh.outbound(
            "response_total",
            ports::HTTP,
            &["status_code=\"200\"", "classification=\"success\""]
        ),
        2.0
    );
}

#[test]
fn hop_by_hop_headers_stop_at_the_proxy() {
    let Some((mesh, _apps)) = mesh("hop_by_hop_headers_stop_at_the_proxy") else {
        return;
    };
    let server = SocketAddr::from((mesh.server_pod().ip, ports::HTTP));
    let seen = mesh.client_pod().run(move || async move {
        let mut send = h1(server).await;
        let req = Request::get("/headers")
            .header("host", "server.example")
            .header("connection", "x-hop")
            .header("x-hop", "must not pass")
            .header("keep-alive", "timeout=5")
            .header("x-app", "passes")
            .body(empty())
            .unwrap();
        let rsp = send.send_request(req).await.expect("GET");
        String::from_utf8(rsp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    });
    assert!(seen.contains("x-app: passes"), "{seen}");
    assert!(
        seen.contains("host: server.example"),
        "Host is kept: {seen}"
    );
    assert!(
        !seen.contains("x-hop") && !seen.contains("keep-alive"),
        "{seen}"
    );
}

#[test]
fn http2_and_grpc_unary_and_streaming_keep_trailers() {
    let Some((mesh, _apps)) = mesh("http2_and_grpc_unary_and_streaming_keep_trailers") else {
        return;
    };
    let server = SocketAddr::from((mesh.server_pod().ip, ports::HTTP));
    let grpc = format!("http://{}:{}", mesh.server_pod().ip, ports::GRPC);
    mesh.client_pod().run(move || async move {
        // Plain HTTP/2 with prior knowledge.
        let tcp = TcpStream::connect(server).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let body = Full::new(Bytes::from(payload(MIB)));
        let rsp = send
            .send_request(
                Request::post(format!("http://{server}/echo"))
                    .body(body)
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(rsp.version(), http::Version::HTTP_2);
        assert_eq!(
            rsp.into_body().collect().await.unwrap().to_bytes()[..],
            payload(MIB)[..]
        );

        // gRPC unary.
        let channel = tonic::transport::Endpoint::from_shared(grpc)
            .unwrap()
            .connect()
            .await
            .expect("grpc connect");
        let mut id = identity::identity_client::IdentityClient::new(channel.clone());
        let rsp = id
            .certify(identity::CertifyRequest {
                identity: "web.shop".into(),
                token: vec![],
                certificate_signing_request: vec![1, 2, 3],
            })
            .await
            .expect("unary call")
            .into_inner();
        assert_eq!(rsp.leaf_certificate, vec![3, 2, 1]);
        assert_eq!(rsp.intermediate_certificates, vec![b"web.shop".to_vec()]);

        // gRPC server streaming: three messages, then a status carried in trailers.
        let mut dst = destination::destination_client::DestinationClient::new(channel);
        let mut stream = dst
            .get(destination::GetDestination {
                path: "web.shop.svc.cluster.local:80".into(),
                ..Default::default()
            })
            .await
            .expect("streaming call")
            .into_inner();
        let mut got = 0;
        let status = loop {
            match stream.message().await {
                Ok(Some(_)) => got += 1,
                Ok(None) => panic!("stream ended without the test server's status"),
                Err(status) => break status,
            }
        };
        assert_eq!(got, 3);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert_eq!(status.message(), "stream finished by the test server");
    });
    assert_eq!(
        mesh.outbound("tcp_open_total", ports::GRPC, &["protocol=\"h2\""]),
        1.0
    );
    assert_eq!(mesh.inbound("request_total", ports::GRPC, &[]), 2.0);
    assert_eq!(mesh.inbound("request_total", ports::HTTP, &[]), 1.0);
    assert_eq!(
        mesh.inbound("tcp_open_total", ports::HTTP, &["protocol=\"h2\""]),
        1.0
    );
}

#[test]
fn websocket_echo_through_upgrade() {
    let Some((mesh, _apps)) = mesh("websocket_echo_through_upgrade") else {
        return;
    };
    let url = format!("ws://{}:{}/chat", mesh.server_pod().ip, ports::WS);
    mesh.client_pod().run(move || async move {
        let (mut ws, rsp) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket handshake");
        assert_eq!(rsp.status(), 101);
        for i in 0..5 {
            let msg = format!("hello {i}");
            ws.send(tokio_tungstenite::tungstenite::Message::text(msg.clone()))
                .await
                .unwrap();
            let echoed = ws.next().await.expect("echo").expect("echo ok");
            assert_eq!(echoed.into_text().unwrap().as_str(), msg);
        }
        let big = vec![7u8; 256 * 1024];
        ws.send(tokio_tungstenite::tungstenite::Message::binary(big.clone()))
            .await
            .unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().into_data()[..], big[..]);
        ws.close(None).await.unwrap();
    });
    assert_eq!(mesh.outbound("request_total", ports::WS, &[]), 1.0);
    assert_eq!(
        mesh.inbound("response_total", ports::WS, &["status_code=\"101\""]),
        1.0
    );
}

#[test]
fn opaque_tcp_keeps_half_close() {
    let Some((mesh, _apps)) = mesh("opaque_tcp_keeps_half_close") else {
        return;
    };
    let server = SocketAddr::from((mesh.server_pod().ip, ports::TCP));
    mesh.client_pod().run(move || async move {
        let mut tcp = TcpStream::connect(server).await.unwrap();
        let data: Vec<u8> = (0..300_000).map(|i| (i % 256) as u8).collect();
        tcp.write_all(&data).await.unwrap();
        // Half-close: the server answers only after it sees our EOF.
        tcp.shutdown().await.unwrap();
        let mut back = Vec::new();
        tcp.read_to_end(&mut back).await.unwrap();
        assert!(
            back == data,
            "echo after half-close differs ({} bytes)",
            back.len()
        );
    });
    assert_eq!(
        mesh.outbound("tcp_open_total", ports::TCP, &["protocol=\"opaque\""]),
        1.0
    );
    assert_eq!(
        mesh.inbound("tcp_open_total", ports::TCP, &["protocol=\"opaque\""]),
        1.0
    );
    assert_eq!(
        mesh.inbound("tcp_read_bytes_total", ports::TCP, &[]),
        300_000.0
    );
}

#[test]
fn server_speaks_first_without_detect_delay() {
    if !prerequisites_met("server_speaks_first_without_detect_delay") {
        return;
    }
    // A detect timeout far longer than the wait below: if the proxies waited for the client
    // to speak first, the banner could not arrive in time.
    let mesh = Mesh::new(&[("WEFT_PROXY_DETECT_TIMEOUT", "30s")]);
    let _apps = mesh.start_apps();
    let server = SocketAddr::from((mesh.server_pod().ip, ports::BANNER));
    mesh.client_pod().run(move || async move {
        let tcp = TcpStream::connect(server).await.unwrap();
        let mut tcp = BufReader::new(tcp);
        let mut banner = String::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_line(&mut banner))
            .await
            .expect("banner arrives without waiting for the 30 s detect timeout")
            .unwrap();
        assert_eq!(banner, "220 weft-banner ready\r\n");
        tcp.get_mut().write_all(b"HELO weft\r\n").await.unwrap();
        let mut reply = String::new();
        tcp.read_line(&mut reply).await.unwrap();
        assert_eq!(reply, "250 HELO weft\r\n");
    });
    assert_eq!(
        mesh.outbound("tcp_open_total", ports::BANNER, &["protocol=\"opaque\""]),
        1.0
    );
    assert_eq!(
        mesh.inbound("tcp_open_total", ports::BANNER, &["protocol=\"opaque\""]),
        1.0
    );
}

#[test]
fn proxy_uid_and_skipped_ports_bypass_the_proxy() {
    let Some((mesh, _apps)) = mesh("proxy_uid_and_skipped_ports_bypass_the_proxy") else {
        return;
    };
    let ip = mesh.server_pod().ip;
    // A connection made as the proxy's UID (2102) must not be redirected to the outbound proxy.
    let script = format!(
        "exec 3<>/dev/tcp/{ip}/{}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3",
        ports::HTTP
    );
    let out = mesh
        .client_pod()
        .command("setpriv")
        .args([
            "--reuid=2102",
            "--regid=2102",
            "--clear-groups",
            "bash",
            "-c",
            &script,
        ])
        .output()
        .expect("bash as uid 2102");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    assert_eq!(
        mesh.outbound("tcp_open_total", ports::HTTP, &[]),
        0.0,
        "uid 2102 bypasses the outbound proxy"
    );
    assert_eq!(
        mesh.inbound("request_total", ports::HTTP, &[]),
        1.0,
        "inbound redirect still applies"
    );

    // The skipped port bypasses both proxies.
    let server = SocketAddr::from((ip, ports::SKIPPED));
    mesh.client_pod().run(move || async move {
        let mut send = h1(server).await;
        let rsp = send.send_request(get("/")).await.unwrap();
        assert_eq!(rsp.status(), 200);
    });
    assert_eq!(mesh.outbound("tcp_open_total", ports::SKIPPED, &[]), 0.0);
    assert_eq!(mesh.inbound("tcp_open_total", ports::SKIPPED, &[]), 0.0);
    // And a plain root connection is proxied, so the zeros above are not a broken redirect.
    mesh.client_pod().run(move || async move {
        let mut send = h1(SocketAddr::from((ip, ports::HTTP))).await;
        let rsp = send.send_request(get("/")).await.unwrap();
        assert_eq!(rsp.status(), 200);
    });
    assert_eq!(mesh.outbound("tcp_open_total", ports::HTTP, &[]), 1.0);
}

#[test]
fn ipv6_goes_through_both_proxies() {
    let Some((mesh, _apps)) = mesh("ipv6_goes_through_both_proxies") else {
        return;
    };
    let server = SocketAddr::from((mesh.server_pod().ip6, ports::HTTP));
    mesh.client_pod().run(move || async move {
        let mut send = h1(server).await;
        let rsp = send
            .send_request(
                Request::get("/")
                    .header("host", "server")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(rsp.status(), 200);
    });
    let target = format!(
        "target_addr=\"[{}]:{}\"",
        mesh.server_pod().ip6,
        ports::HTTP
    );
    assert_eq!(
        weft_cli_local::metric_sum(
            &mesh.client.metrics(),
            "request_total",
            &["direction=\"outbound\"", &target]
        ),
        1.0
    );
    let inbound = format!("target_addr=\"[::1]:{}\"", ports::HTTP);
    assert_eq!(
        weft_cli_local::metric_sum(
            &mesh.server.metrics(),
            "request_total",
            &["direction=\"inbound\"", &inbound]
        ),
        1.0
    );
}

#[test]
fn sigterm_drains_an_in_flight_request() {
    if !prerequisites_met("sigterm_drains_an_in_flight_request") {
        return;
    }
    let mesh = Mesh::new(&[("WEFT_PROXY_SHUTDOWN_GRACE", "20s")]);
    let _apps = mesh.start_apps();
    let server = SocketAddr::from((mesh.server_pod().ip, ports::HTTP));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let client = mesh.client_pod().clone();
    let request = std::thread::spawn(move || {
        client.run(move || async move {
            let mut send = h1(server).await;
            let _ = started_tx.send(());
            let rsp = send
                .send_request(get("/slow/1500"))
                .await
                .expect("in-flight request is not cut");
            let status = rsp.status();
            let body = rsp
                .into_body()
                .collect()
                .await
                .expect("body is not cut")
                .to_bytes();
            (status, body)
        })
    });
    started_rx.recv().unwrap();
    // Both proxies are told to stop while the request is in flight.
    assert_eventually!(
        mesh.inbound("request_total", ports::HTTP, &[]) == 1.0,
        Duration::from_secs(5),
        "request reached the server proxy"
    );
    mesh.server
        .process
        .signal(nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    mesh.client
        .process
        .signal(nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let (status, body) = request.join().expect("request thread");
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"slow done\n");
    for p in [&mesh.client.process, &mesh.server.process] {
        let exit = p
            .wait_timeout(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{} did not exit after draining", p.name()));
        assert!(
            exit.success(),
            "{} exited with {exit}: {}",
            p.name(),
            p.log()
        );
        assert!(p.log().contains("drained"), "{}", p.log());
    }
}
