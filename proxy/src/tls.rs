//! Mesh TLS on the data path: TLS 1.3 only, with the certificate of the proxy's identity.
//!
//! Outbound, a connection to a meshed endpoint names the endpoint's identity as SNI and
//! accepts only a certificate that chains to the trust anchors and names that identity.
//! Inbound, a ClientHello addressed to this proxy's own identity is terminated, and the client
//! must present a mesh certificate, whose identity becomes the connection's client id; TLS
//! addressed to anything else is meant for the app and passes through untouched.

use crate::{identity::Identity, io::PrefixedIo};
use bytes::{Bytes, BytesMut};
use rustls::{
    ClientConfig, ServerConfig,
    pki_types::ServerName,
    server::{Acceptor, WebPkiClientVerifier},
};
use std::{io, sync::Arc, time::Duration};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_rustls::{LazyConfigAcceptor, TlsConnector, client, server};

/// A ClientHello larger than this is refused (real ones are a few hundred bytes; post-quantum
/// key shares push them past 1 KiB).
const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// Why mesh TLS could not be set up or a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The trust anchors or the provider could not make a TLS configuration.
    #[error("cannot build the mesh TLS configuration: {0}")]
    Config(String),
    /// A peer's identity is not a DNS name.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    /// The handshake did not finish in time.
    #[error("TLS handshake did not finish within {0:?}")]
    Timeout(Duration),
    /// The handshake failed.
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The client's certificate names no mesh identity.
    #[error("the client certificate names no mesh identity: {0}")]
    ClientIdentity(String),
}

/// TLS settings of one proxy, built once from its identity; certificates are read from the
/// identity on every handshake, so renewals apply to the next connection.
#[derive(Clone)]
pub struct MeshTls {
    identity: Arc<Identity>,
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for MeshTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshTls")
            .field("identity", &self.identity.name())
            .finish_non_exhaustive()
    }
}

/// An accepted inbound connection.
#[derive(Debug)]
pub enum Inbound<I> {
    /// Mesh TLS terminated here; the client proved `client_id`.
    Mesh {
        /// The decrypted stream.
        io: Box<server::TlsStream<PrefixedIo<I>>>,
        /// The client's DNS identity.
        client_id: String,
    },
    /// TLS for someone else (the app): the bytes read so far, replayed in front.
    Passthrough(PrefixedIo<I>),
}

impl MeshTls {
    /// TLS 1.3 client and server configurations over `identity`'s trust anchors and
    /// certificate.
    pub fn new(identity: Arc<Identity>, handshake_timeout: Duration) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_root_certificates(identity.roots())
            .with_client_cert_resolver(identity.client_resolver());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(identity.roots(), provider.clone())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(identity.server_resolver());
        Ok(Self {
            identity,
            client: Arc::new(client),
            server: Arc::new(server),
            handshake_timeout,
        })
    }

    /// This proxy's identity.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Opens mesh TLS on `io` to a peer that must prove `server_id`.
    pub async fn connect<I>(&self, io: I, server_id: &str) -> Result<client::TlsStream<I>, TlsError>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(server_id.to_string())
            .map_err(|_| TlsError::ServerName(server_id.to_string()))?;
        let connect = TlsConnector::from(self.client.clone()).connect(name, io);
        tokio::time::timeout(self.handshake_timeout, connect)
            .await
            .map_err(|_| TlsError::Timeout(self.handshake_timeout))?
            .map_err(TlsError::Handshake)
    }

    /// Reads the ClientHello of a connection whose first bytes (`prefix`) looked like TLS. If
    /// it names this proxy's identity the handshake is completed here; otherwise the
    /// connection is handed back with everything read so far, to be passed through.
    pub async fn accept<I>(&self, mut io: I, prefix: Bytes) -> Result<Inbound<I>, TlsError>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let mut buf = BytesMut::from(&prefix[..]);
        let sni = match tokio::time::timeout_at(deadline, server_name(&mut io, &mut buf)).await {
            Err(_) => return Err(TlsError::Timeout(self.handshake_timeout)),
            Ok(Ok(sni)) => sni,
            // A ClientHello rustls cannot read (or an oversize one) is not for the mesh, whose
            // clients are rustls: the app may understand it, so it passes through.
            Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::debug!(error = %e, "unreadable ClientHello; passing it through");
                None
            }
            Ok(Err(e)) => return Err(TlsError::Handshake(e)),
        };
        let replay = PrefixedIo::new(buf.freeze(), io);
        if sni.as_deref() != Some(self.identity.name()) {
            return Ok(Inbound::Passthrough(replay));
        }
        let handshake = async {
            LazyConfigAcceptor::new(Acceptor::default(), replay)
                .await?
                .into_stream(self.server.clone())
                .await
        };
        let tls = tokio::time::timeout_at(deadline, handshake)
            .await
            .map_err(|_| TlsError::Timeout(self.handshake_timeout))?
            .map_err(TlsError::Handshake)?;
        let client_id = client_identity(&tls)?;
        Ok(Inbound::Mesh {
            io: Box::new(tls),
            client_id,
        })
    }
}

/// The mesh identity in a terminated connection's client certificate (already verified
/// against the trust anchors by the handshake).
fn client_identity<I>(tls: &server::TlsStream<I>) -> Result<String, TlsError> {
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or_else(|| TlsError::ClientIdentity("no certificate".into()))?;
    weft_certs::identity_of(cert)
        .map(|id| id.dns_name())
        .map_err(|e| TlsError::ClientIdentity(e.to_string()))
}

/// Reads until `buf` holds a whole ClientHello and returns its SNI.
async fn server_name<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
) -> io::Result<Option<String>> {
    let mut acceptor = Acceptor::default();
    let mut fed = 0;
    loop {
        while fed < buf.len() {
            let mut rest = &buf[fed..];
            fed += acceptor.read_tls(&mut rest)?;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                return Ok(accepted.client_hello().server_name().map(str::to_string));
            }
            Ok(None) => {}
            Err((e, _alert)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        if buf.len() >= MAX_CLIENT_HELLO {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("ClientHello longer than {MAX_CLIENT_HELLO} bytes"),
            ));
        }
        if io.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

mod conn;
pub use conn::Conn;
