//! The webhook's TLS: a certificate and key read from files (a mounted Secret) and read again
//! when they change, so a renewed certificate is served without a restart. A file that does
//! not load keeps the last good certificate in service and is logged.

use parking_lot::RwLock;
use rustls::{
    ServerConfig,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};
use weft_certs::{CertError, ServerCredentials};

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The files are not a usable certificate and key.
    #[error("{cert} and {key}: {source}")]
    Cert {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong with them.
        source: CertError,
    },
    /// rustls refused the key.
    #[error("{key}: {source}")]
    Rustls {
        /// The key file.
        key: PathBuf,
        /// rustls' complaint.
        source: rustls::Error,
    },
}

/// The certificate files and the certificate they hold now.
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    last: RwLock<(Vec<u8>, Vec<u8>)>,
    current: Arc<Resolver>,
}

/// Presents the current certificate to every client.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

impl CertFiles {
    /// Loads `cert` (PEM chain) and `key` (PKCS#8 PEM); fails if they are not a valid pair.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let (cert_bytes, key_bytes) = (read(cert)?, read(key)?);
        let certified = certified(cert, key, &cert_bytes, &key_bytes)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            last: RwLock::new((cert_bytes, key_bytes)),
            current: Arc::new(Resolver(RwLock::new(certified))),
        })
    }

    /// A TLS 1.2/1.3 server configuration (HTTP/2 and HTTP/1.1) that always presents the
    /// current certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // The ring provider supports the default protocol versions.
        let builder = match ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(builder) => builder,
            Err(_) => ServerConfig::builder(),
        };
        let mut config = builder
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Reads the files again; if they changed and load, serves them from now on. Returns
    /// whether the certificate changed.
    pub fn poll(&self) -> Result<bool, TlsError> {
        let (cert_bytes, key_bytes) = (read(&self.cert)?, read(&self.key)?);
        {
            let last = self.last.read();
            if last.0 == cert_bytes && last.1 == key_bytes {
                return Ok(false);
            }
        }
        let certified = certified(&self.cert, &self.key, &cert_bytes, &key_bytes)?;
        *self.current.0.write() = certified;
        *self.last.write() = (cert_bytes, key_bytes);
        Ok(true)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn certified(
    cert: &Path,
    key: &Path,
    cert_bytes: &[u8],
    key_bytes: &[u8],
) -> Result<Arc<CertifiedKey>, TlsError> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let credentials =
        ServerCredentials::from_pem(&text(cert_bytes), &text(key_bytes)).map_err(|source| {
            TlsError::Cert {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                source,
            }
        })?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(credentials.key)
        .map_err(|source| TlsError::Rustls {
            key: key.to_path_buf(),
            source,
        })?;
    Ok(Arc::new(CertifiedKey::new(credentials.chain, signing)))
}
