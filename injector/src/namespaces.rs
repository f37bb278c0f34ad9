//! Namespace annotations for the injection: read from a kube-runtime reflector of Namespace
//! metadata, so an admission costs no API call. A namespace the reflector has not seen yet
//! (created a moment before its first pod) is read once from the API server.

use futures::{StreamExt, future::BoxFuture};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    core::PartialObjectMeta,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use weft_injector_patch::Annotations;

/// How long an admission waits for the API server when its namespace is not in the cache.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a namespace's annotations could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The API server answered with an error.
    #[error("the API server: {0}")]
    Api(#[from] kube::Error),
    /// The API server did not answer in time.
    #[error("the API server did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where the injection gets a namespace's annotations.
pub trait Namespaces: Send + Sync {
    /// The annotations of namespace `name`; none for a namespace that does not exist.
    fn annotations<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Annotations, LookupError>>;

    /// Whether lookups are answered from a complete view (the first list is done).
    fn ready(&self) -> bool;
}

/// Fixed annotations by namespace: for `weft inject`, tests and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct StaticNamespaces(pub BTreeMap<String, Annotations>);

impl Namespaces for StaticNamespaces {
    fn annotations<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Annotations, LookupError>> {
        let found = self.0.get(name).cloned().unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }

    fn ready(&self) -> bool {
        true
    }
}

/// The reflector's cache, with the API for the namespaces it has not seen yet.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<PartialObjectMeta<Namespace>>,
    api: Api<PartialObjectMeta<Namespace>>,
    ready: Arc<AtomicBool>,
}

impl NamespaceCache {
    /// The cache, and the task that fills it: list and watch Namespace metadata, cluster-wide,
    /// until the task is dropped. Errors are logged and the watch retried with backoff.
    pub fn start(client: Client) -> (Self, BoxFuture<'static, ()>) {
        let api = Api::<PartialObjectMeta<Namespace>>::all(client);
        let (store, writer) = reflector::store();
        let ready = Arc::new(AtomicBool::new(false));
        let stream = watcher(api.clone(), watcher::Config::default()).default_backoff();
        let mark = ready.clone();
        let waiting = store.clone();
        let task = async move {
            let watch = reflector::reflector(writer, stream).for_each(|event| async move {
                if let Err(e) = event {
                    tracing::warn!("watching namespaces: {e}");
                }
            });
            let synced = async move {
                if waiting.wait_until_ready().await.is_ok() {
                    tracing::info!("namespaces listed; answering admissions from the cache");
                    mark.store(true, Ordering::Release);
                }
            };
            futures::future::join(watch, synced).await;
        };
        (Self { store, api, ready }, Box::pin(task))
    }
}

impl Namespaces for NamespaceCache {
    fn annotations<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Annotations, LookupError>> {
        Box::pin(async move {
            if let Some(ns) = self.store.get(&ObjectRef::new(name)) {
                return Ok(annotations_of(&ns));
            }
            tracing::debug!(
                namespace = name,
                "not in the cache yet; asking the API server"
            );
            let found = tokio::time::timeout(LOOKUP_TIMEOUT, self.api.get_opt(name))
                .await
                .map_err(|_| LookupError::Timeout(LOOKUP_TIMEOUT))??;
            Ok(found.as_ref().map(annotations_of).unwrap_or_default())
        })
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

fn annotations_of(ns: &PartialObjectMeta<Namespace>) -> Annotations {
    ns.metadata.annotations.clone().unwrap_or_default()
}
