//! Local mode: a YAML file of tokens, re-read whenever it changes.
//!
//! ```yaml
//! tokens:
//!   - token: "<opaque string>"
//!     namespace: shop
//!     serviceAccount: web
//! ```

use super::{AuthError, Authenticator, ServiceAccount};
use parking_lot::Mutex;
use serde::Deserialize;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};
use subtle::ConstantTimeEq;
use weft_certs::{DEFAULT_TRUST_DOMAIN, ServiceAccountIdentity};

/// The token registry of local mode. Each [`authenticate`](Authenticator::authenticate) reads
/// the file again (it is small and Certify is rare), so an edit applies to the next request
/// without a watcher; an edit that does not parse is logged and the last good tokens stay.
#[derive(Clone, Debug)]
pub struct TokenRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The bytes last read, good or bad, so an unchanged file is neither parsed nor logged again.
    raw: Vec<u8>,
    tokens: Vec<Entry>,
}

struct Entry {
    token: Vec<u8>,
    service_account: ServiceAccount,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Entry")
            .field("service_account", &self.service_account)
            .finish_non_exhaustive()
    }
}

/// Why the registry file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file cannot be read.
    #[error("cannot read token registry {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid registry.
    #[error("token registry {}: {field}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where in the file, e.g. `tokens[2].serviceAccount`.
        field: String,
        /// What is wrong there.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// `tokens:` with nothing under it is a registry with no tokens.
    tokens: Option<Vec<FileEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileEntry {
    token: String,
    namespace: String,
    service_account: String,
}

impl TokenRegistry {
    /// Reads the registry at `path`; fails if it cannot be read or parsed, so a controller
    /// never starts with a broken registry.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let path = path.into();
        let raw = read(&path)?;
        let tokens = parse(&path, &raw)?;
        tracing::info!(path = %path.display(), tokens = tokens.len(), "token registry loaded");
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                state: Mutex::new(State { raw, tokens }),
            }),
        })
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many tokens the registry holds now.
    pub fn len(&self) -> usize {
        self.inner.state.lock().tokens.len()
    }

    /// True when the registry holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the file and, if its bytes changed and parse, replaces the tokens. A read or
    /// parse failure is logged and returned; the last good tokens stay either way.
    pub fn refresh(&self) -> Result<(), RegistryError> {
        let path = &self.inner.path;
        let raw = read(path).inspect_err(|error| {
            tracing::warn!(%error, "token registry unreadable; keeping the last good tokens");
        })?;
        let mut state = self.inner.state.lock();
        if state.raw == raw {
            return Ok(());
        }
        let parsed = parse(path, &raw);
        state.raw = raw;
        match parsed {
            Ok(tokens) => {
                tracing::info!(path = %path.display(), tokens = tokens.len(), "token registry reloaded");
                state.tokens = tokens;
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "token registry invalid; keeping the last good tokens");
                Err(error)
            }
        }
    }

    fn lookup(&self, token: &[u8]) -> Option<ServiceAccount> {
        let state = self.inner.state.lock();
        // Every entry is compared, each in constant time, so timing tells nothing about how
        // close a guess came to any token.
        let mut found = None;
        for entry in &state.tokens {
            if bool::from(entry.token.ct_eq(token)) {
                found = Some(entry.service_account.clone());
            }
        }
        found
    }
}

impl Authenticator for TokenRegistry {
    async fn authenticate(&self, token: &str) -> Result<ServiceAccount, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Empty);
        }
        // Failures are logged by `refresh`; the last good tokens still answer.
        let _ = self.refresh();
        self.lookup(token.as_bytes())
            .ok_or_else(|| AuthError::Unknown {
                path: self.inner.path.clone(),
            })
    }
}

// Reading a small local file blocks for microseconds; not worth a blocking-pool hop.
fn read(path: &Path) -> Result<Vec<u8>, RegistryError> {
    std::fs::read(path).map_err(|source| RegistryError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(path: &Path, raw: &[u8]) -> Result<Vec<Entry>, RegistryError> {
    let invalid = |field: String, message: String| RegistryError::Invalid {
        path: path.to_path_buf(),
        field,
        message,
    };
    if raw.iter().all(u8::is_ascii_whitespace) {
        // More likely a file caught mid-write than a registry meant to be empty.
        return Err(invalid(
            "(file)".into(),
            "is empty; expected `tokens:` and a list of {token, namespace, serviceAccount}".into(),
        ));
    }
    let de = serde_yaml_ng::Deserializer::from_slice(raw);
    let file: File = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        invalid(field, e.into_inner().to_string())
    })?;
    let file = file.tokens.unwrap_or_default();
    let mut tokens: Vec<Entry> = Vec::with_capacity(file.len());
    for (i, e) in file.into_iter().enumerate() {
        if e.token.is_empty() {
            return Err(invalid(format!("tokens[{i}].token"), "is empty".into()));
        }
        if let Some(j) = tokens.iter().position(|t| t.token == e.token.as_bytes()) {
            return Err(invalid(
                format!("tokens[{i}].token"),
                format!("repeats tokens[{j}].token"),
            ));
        }
        // The names must be able to form an identity; the trust domain is irrelevant here.
        ServiceAccountIdentity::new(&e.service_account, &e.namespace, DEFAULT_TRUST_DOMAIN)
            .map_err(|err| {
                let field = match err {
                    weft_certs::NameError::Label {
                        part: "namespace", ..
                    } => "namespace",
                    _ => "serviceAccount",
                };
                invalid(format!("tokens[{i}].{field}"), err.to_string())
            })?;
        tokens.push(Entry {
            token: e.token.into_bytes(),
            service_account: ServiceAccount {
                namespace: e.namespace,
                name: e.service_account,
            },
        });
    }
    Ok(tokens)
}
