//! The issuer (intermediate CA) and trust anchors, read from files and re-read when they
//! change. A good new issuer replaces the old one for every later signature; a bad one is
//! logged and the old one stays.

use parking_lot::Mutex;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};
use tokio::sync::watch;
use weft_certs::{CertError, Issuer, TrustAnchors};

/// How often [`IssuerReloader::run`] checks the files by default.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

/// Where the issuer and the trust anchors are read from (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerFiles {
    /// The trust anchors (root certificates) proxies verify against.
    pub trust_anchors: PathBuf,
    /// The issuer's certificate (optionally followed by further intermediates).
    pub cert: PathBuf,
    /// The issuer's PKCS#8 private key.
    pub key: PathBuf,
}

/// A loaded issuer and the anchors it chains to.
#[derive(Debug)]
pub struct Credentials {
    /// Signs proxies' (and the controller's own) certificates.
    pub issuer: Issuer,
    /// The roots the issuer chains to; the discovery server verifies clients against them.
    pub anchors: TrustAnchors,
    /// What the admin server shows.
    pub status: IssuerStatus,
}

/// A summary of the loaded issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerStatus {
    /// The issuer certificate's subject, e.g. `CN=identity.cluster.local`.
    pub subject: String,
    /// When the issuer certificate expires; no certificate is valid past it.
    pub not_after: SystemTime,
    /// When these files were loaded.
    pub loaded_at: SystemTime,
    /// 1 for the issuer read at start, +1 for each reload.
    pub generation: u64,
}

/// Why the issuer files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// A file cannot be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// Which file: "trust anchors", "issuer certificate" or "issuer key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The files were read but do not make an issuer.
    #[error(
        "issuer {} (key {}, trust anchors {}) is unusable: {source}",
        files.cert.display(), files.key.display(), files.trust_anchors.display()
    )]
    Invalid {
        /// The files.
        files: Box<IssuerFiles>,
        /// What is wrong.
        #[source]
        source: CertError,
    },
}

/// The contents of the three files.
#[derive(Clone, PartialEq, Eq, Default)]
struct Raw {
    anchors: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// Keeps the current [`Credentials`] on a watch channel and replaces them when the files change.
pub struct IssuerReloader {
    files: IssuerFiles,
    tx: watch::Sender<Arc<Credentials>>,
    /// What was last tried, good or bad, so unchanged files are not parsed or logged again.
    tried: Raw,
    last_error: Arc<Mutex<Option<String>>>,
}

impl IssuerReloader {
    /// Loads the issuer; fails if the files do not make one, so the controller never starts
    /// without a working issuer.
    pub fn load(files: IssuerFiles) -> Result<Self, IssuerError> {
        let raw = read(&files)?;
        let credentials = parse(&files, &raw, 1)?;
        log_loaded(&credentials.status, "issuer loaded");
        let (tx, _) = watch::channel(Arc::new(credentials));
        Ok(Self {
            files,
            tx,
            tried: raw,
            last_error: Arc::default(),
        })
    }

    /// The current credentials, updated on every good reload.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Credentials>> {
        self.tx.subscribe()
    }

    /// The last reload failure, cleared by the next good reload (for the admin server).
    pub fn last_error(&self) -> Arc<Mutex<Option<String>>> {
        self.last_error.clone()
    }

    /// Checks the files once: `Ok(true)` if they changed and replaced the issuer, `Ok(false)`
    /// if they did not change, an error (also kept for [`last_error`](Self::last_error)) if
    /// they changed into something unusable. The current issuer stays on error.
    pub fn poll(&mut self) -> Result<bool, IssuerError> {
        let raw = read(&self.files).inspect_err(|e| self.failed(e))?;
        if raw == self.tried {
            return Ok(false);
        }
        let generation = self.tx.borrow().status.generation + 1;
        let parsed = parse(&self.files, &raw, generation);
        // A file rewritten halfway (the cert before the key) fails here and succeeds on the
        // poll after the second write, since the bytes differ again.
        self.tried = raw;
        let credentials = parsed.inspect_err(|e| self.failed(e))?;
        log_loaded(&credentials.status, "issuer reloaded");
        *self.last_error.lock() = None;
        self.tx.send_replace(Arc::new(credentials));
        Ok(true)
    }

    /// Polls every `every` until every subscriber is gone.
    pub async fn run(mut self, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.tx.closed() => return,
            }
            // Errors are logged by `failed`.
            let _ = self.poll();
        }
    }

    fn failed(&self, error: &IssuerError) {
        let current = &self.tx.borrow().status;
        tracing::error!(
            %error,
            keeping = %current.subject,
            generation = current.generation,
            "issuer files changed but are unusable; keeping the current issuer"
        );
        *self.last_error.lock() = Some(error.to_string());
    }
}

fn log_loaded(status: &IssuerStatus, msg: &str) {
    tracing::info!(
        subject = %status.subject,
        not_after = %crate::rfc3339(status.not_after),
        generation = status.generation,
        "{msg}"
    );
}

fn read(files: &IssuerFiles) -> Result<Raw, IssuerError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| IssuerError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
    };
    Ok(Raw {
        anchors: read("trust anchors", &files.trust_anchors)?,
        cert: read("issuer certificate", &files.cert)?,
        key: read("issuer key", &files.key)?,
    })
}

fn parse(files: &IssuerFiles, raw: &Raw, generation: u64) -> Result<Credentials, IssuerError> {
    let invalid = |source| IssuerError::Invalid {
        files: Box::new(files.clone()),
        source,
    };
    let text = |what: &Path, bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| CertError::Pem {
            what: what.display().to_string(),
            reason: "is not UTF-8 text; expected PEM".to_string(),
        })
    };
    let anchors = text(&files.trust_anchors, &raw.anchors).map_err(invalid)?;
    let cert = text(&files.cert, &raw.cert).map_err(invalid)?;
    let key = text(&files.key, &raw.key).map_err(invalid)?;
    let anchors = TrustAnchors::from_pem(&anchors).map_err(invalid)?;
    let issuer = Issuer::load(&cert, &key, &anchors).map_err(invalid)?;
    let status = IssuerStatus {
        subject: issuer
            .chain()
            .first()
            .map(|der| crate::subject_of(der))
            .unwrap_or_default(),
        not_after: issuer.not_after(),
        loaded_at: SystemTime::now(),
        generation,
    };
    Ok(Credentials {
        issuer,
        anchors,
        status,
    })
}
