//! Sample apps run inside pods: HTTP/1+2, gRPC, WebSocket, opaque TCP and a
//! server-speaks-first protocol.

use crate::mesh::ports;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::{convert::Infallible, net::SocketAddr, pin::Pin, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};
use weft_proto::{destination, identity};

/// A body as the apps send it.
pub type AppBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Byte `i` of the deterministic test payload.
pub fn pattern(i: usize) -> u8 {
    ((i * 31 + 7) % 251) as u8
}

/// The test payload of `len` bytes.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

/// Every test app, until the task is dropped.
pub async fn serve_all() {
    tokio::join!(
        http(ports::HTTP),
        http(ports::SKIPPED),
        grpc(ports::GRPC),
        websocket(ports::WS),
        tcp_echo(ports::TCP),
        banner(ports::BANNER),
    );
}

async fn listen(port: u16) -> TcpListener {
    // `[::]` is dual-stack: the app is reached on IPv4 and IPv6, and on loopback.
    TcpListener::bind(SocketAddr::from(([0u16; 8], port)))
        .await
        .unwrap_or_else(|e| panic!("app cannot listen on port {port}: {e}"))
}

/// HTTP/1.1 and HTTP/2 (prior knowledge): `POST /echo` streams the body back,
/// `GET /bytes/N` streams N payload bytes, `GET /slow/MS` answers after MS milliseconds,
/// `GET /headers` lists the request headers, anything else says hello.
pub async fn http(port: u16) {
    let listener = listen(port).await;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(handle);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>) -> Result<Response<AppBody>, Infallible> {
    let path = req.uri().path().to_string();
    let body: AppBody = if path == "/echo" {
        req.into_body().map_err(Into::into).boxed()
    } else if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let chunks = (0..n).step_by(64 * 1024).map(move |start| {
            let end = (start + 64 * 1024).min(n);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(Bytes::from(
                (start..end).map(pattern).collect::<Vec<u8>>(),
            )))
        });
        BodyExt::boxed(StreamBody::new(futures_util::stream::iter(chunks)))
    } else if let Some(ms) = path
        .strip_prefix("/slow/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        full("slow done\n")
    } else if path == "/headers" {
        let mut text = String::new();
        for (k, v) in req.headers() {
            text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
        }
        full(&text)
    } else {
        full(&format!("hello {:?}\n", req.version()))
    };
    let mut rsp = Response::new(body);
    *rsp.status_mut() = StatusCode::OK;
    Ok(rsp)
}

fn full(text: &str) -> AppBody {
    Full::new(Bytes::from(text.to_string()))
        .map_err(|e| match e {})
        .boxed()
}

/// Echoes WebSocket messages.
pub async fn websocket(port: u16) {
    let listener = listen(port).await;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() || ws.send(msg).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Reads until the client half-closes, then sends everything back and closes: a protocol
/// that only works if half-close is carried end to end.
pub async fn tcp_echo(port: u16) {
    let listener = listen(port).await;
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut all = Vec::new();
            if tcp.read_to_end(&mut all).await.is_ok() {
                let _ = tcp.write_all(&all).await;
                let _ = tcp.shutdown().await;
            }
        });
    }
}

/// Greets first, like SMTP or MySQL, then answers one line.
pub async fn banner(port: u16) {
    let listener = listen(port).await;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut tcp = BufReader::new(tcp);
            if tcp
                .get_mut()
                .write_all(b"220 weft-banner ready\r\n")
                .await
                .is_err()
            {
                return;
            }
            let mut line = String::new();
            if tcp.read_line(&mut line).await.is_ok() {
                let _ = tcp
                    .get_mut()
                    .write_all(format!("250 {line}").as_bytes())
                    .await;
            }
        });
    }
}

/// gRPC: a unary call (`Identity/Certify`) and a server-streaming call (`Destination/Get`)
/// that sends three updates and ends with a non-OK status in the trailers.
pub async fn grpc(port: u16) {
    let addr = SocketAddr::from(([0u16; 8], port));
    let _ = tonic::transport::Server::builder()
        .add_service(identity::identity_server::IdentityServer::new(Grpc))
        .add_service(destination::destination_server::DestinationServer::new(
            Grpc,
        ))
        .serve(addr)
        .await;
}

struct Grpc;

type UpdateStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<destination::Update, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl identity::identity_server::Identity for Grpc {
    async fn certify(
        &self,
        req: tonic::Request<identity::CertifyRequest>,
    ) -> Result<tonic::Response<identity::CertifyResponse>, tonic::Status> {
        let req = req.into_inner();
        let mut leaf = req.certificate_signing_request;
        leaf.reverse();
        Ok(tonic::Response::new(identity::CertifyResponse {
            leaf_certificate: leaf,
            intermediate_certificates: vec![req.identity.into_bytes()],
            valid_until: None,
        }))
    }
}

#[tonic::async_trait]
impl destination::destination_server::Destination for Grpc {
    type GetStream = UpdateStream;
    type GetProfileStream = Pin<
        Box<
            dyn futures_util::Stream<Item = Result<destination::DestinationProfile, tonic::Status>>
                + Send,
        >,
    >;

    async fn get(
        &self,
        req: tonic::Request<destination::GetDestination>,
    ) -> Result<tonic::Response<UpdateStream>, tonic::Status> {
        let exists = !req.into_inner().path.is_empty();
        let updates = (0..3).map(move |_| {
            Ok(destination::Update {
                update: Some(destination::update::Update::NoEndpoints(
                    destination::NoEndpoints { exists },
                )),
            })
        });
        let end = std::iter::once(Err(tonic::Status::resource_exhausted(
            "stream finished by the test server",
        )));
        Ok(tonic::Response::new(Box::pin(futures_util::stream::iter(
            updates.chain(end),
        ))))
    }

    async fn get_profile(
        &self,
        _: tonic::Request<destination::GetDestination>,
    ) -> Result<tonic::Response<Self::GetProfileStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not used by the tests"))
    }
}
