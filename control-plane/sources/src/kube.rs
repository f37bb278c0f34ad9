//! The `kube` source: one kube-runtime watcher per kind, cluster-wide, feeding the index.
//!
//! Each kind (Namespace, Service, EndpointSlice, Pod, TrafficSplit, HTTPRoute, GRPCRoute, and
//! the `policy.weft.dev` Server, AuthorizationPolicy, MeshTLSAuthentication and
//! NetworkAuthentication) gets its own [`watch`] task. Events go through [`apply_event`]: `Apply`/`Delete` update the index
//! one object at a time, and the objects of a (re)list (`Init`, `InitApply`…, `InitDone`) are
//! collected and handed to `reset` in one call, so a relist after a desync (410 Gone) replaces
//! the kind's objects atomically and drops the ones deleted while the watch was down.
//!
//! Errors never stop a watcher: they are logged with the kind and the stream is retried with
//! kube's default backoff. A kind the API server does not serve (an optional CRD that is not
//! installed answers 404) is logged once and listed again less and less often (kube's backoff
//! starts over at each list attempt, so on its own it would list every second or so), and it
//! does not hold back the other kinds.
//!
//! # Watcher configuration
//!
//! Every kind uses kube's default `watcher::Config`, on purpose:
//! - list-then-watch, not streaming lists: the `WatchList` feature is not on in every cluster
//!   we support, and a paginated list works everywhere;
//! - most-recent list semantics (a quorum read, no `resourceVersion=0`): a relist follows a
//!   desync, when a possibly stale apiserver cache is exactly what we do not want. It is also
//!   what kube sends anyway with a page size, which drops `resourceVersion=0`;
//! - pages of 500 objects, so a relist of a large cluster is not one huge response;
//! - bookmarks on, so a quiet watch restarts from a recent version instead of relisting;
//! - no label or field selectors: the index needs every pod (identities and labels of
//!   endpoints, inbound policy) and every service, and a metadata-only watch is not possible
//!   since the index reads specs.
//!
//! Objects buffered during a relist are kept whole until `InitDone`; their `managedFields`
//! (often the largest part of an object, and never read by the index) are dropped first.

mod apply;
#[cfg(test)]
mod tests;

pub use apply::{InitBuffer, apply_event};

use futures::StreamExt;
use gateway_api::apis::{experimental::httproutes::HttpRoute, standard::grpcroutes::GrpcRoute};
use k8s_openapi::api::{
    core::v1::{Namespace, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, Resource,
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;
use std::{collections::HashMap, fmt::Debug, future::Future, pin::pin, time::Duration};
use tokio::task::JoinSet;
use weft_controller_index::{
    Index, IndexResource, SharedIndex,
    crds::{
        AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server, TrafficSplit,
    },
};

/// Why the kube source stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A watcher's event stream ended. kube's watcher streams never end, so this is a bug in
    /// kube or here; the caller should exit and be restarted.
    #[error("the {kind} watch stream ended unexpectedly")]
    StreamEnded {
        /// The kind whose stream ended (`Service`).
        kind: String,
    },
    /// A watcher task panicked or was cancelled.
    #[error("the {kind} watcher task failed: {source}")]
    Task {
        /// The kind the task watched.
        kind: String,
        /// Why it failed.
        source: tokio::task::JoinError,
    },
}

/// How long to wait, at most, before listing a kind the API server does not serve again. kube's
/// default backoff starts over on every list attempt, so without this a missing CRD would be
/// listed about once a second forever.
const MISSING_MAX_DELAY: Duration = Duration::from_secs(60);
/// The first extra wait after a kind turns out not to be served.
const MISSING_FIRST_DELAY: Duration = Duration::from_secs(2);

/// Watches every kind the index reads, cluster-wide, until one watcher stops, which only
/// happens on a bug (see [`Error`]). Dropping the future stops every watcher.
pub async fn run(client: Client, index: SharedIndex) -> Result<(), Error> {
    let mut tasks = JoinSet::new();
    let mut kinds = HashMap::new();
    spawn::<Namespace>(&mut tasks, &mut kinds, &client, &index);
    spawn::<Service>(&mut tasks, &mut kinds, &client, &index);
    spawn::<EndpointSlice>(&mut tasks, &mut kinds, &client, &index);
    spawn::<Pod>(&mut tasks, &mut kinds, &client, &index);
    spawn::<TrafficSplit>(&mut tasks, &mut kinds, &client, &index);
    spawn::<HttpRoute>(&mut tasks, &mut kinds, &client, &index);
    spawn::<GrpcRoute>(&mut tasks, &mut kinds, &client, &index);
    spawn::<Server>(&mut tasks, &mut kinds, &client, &index);
    spawn::<AuthorizationPolicy>(&mut tasks, &mut kinds, &client, &index);
    spawn::<MeshTLSAuthentication>(&mut tasks, &mut kinds, &client, &index);
    spawn::<NetworkAuthentication>(&mut tasks, &mut kinds, &client, &index);

    match tasks.join_next_with_id().await {
        Some(Ok((_, error))) => Err(error),
        Some(Err(source)) => Err(Error::Task {
            kind: kinds.remove(&source.id()).unwrap_or_default(),
            source,
        }),
        // Cannot happen: tasks were spawned above and none ends without an error.
        None => Ok(()),
    }
}

/// Starts the cluster-wide watcher of `K` in `tasks`, remembering its kind by task id.
fn spawn<K>(
    tasks: &mut JoinSet<Error>,
    kinds: &mut HashMap<tokio::task::Id, String>,
    client: &Client,
    index: &SharedIndex,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    Index: IndexResource<K>,
{
    let task = tasks.spawn(watch(Api::<K>::all(client.clone()), index.clone()));
    kinds.insert(task.id(), kind::<K>());
}

/// Watches one kind through `api` and feeds every event to `index`. Resolves only if the watch
/// stream ends, which kube's watcher never does; errors are logged and retried with backoff.
pub fn watch<K>(api: Api<K>, index: SharedIndex) -> impl Future<Output = Error> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    Index: IndexResource<K>,
{
    let mut log = Log::new::<K>();
    let events = watcher(api, watcher_config()).default_backoff();
    async move {
        let mut events = pin!(events);
        let mut buffer = InitBuffer::default();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    if let Some(objects) = apply_event(&mut *index.write(), &mut buffer, event) {
                        log.listed(objects);
                    }
                }
                Err(error) => {
                    if let Some(delay) = log.failed(&error) {
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        Error::StreamEnded { kind: log.kind }
    }
}

/// What one watcher logs, and how long it waits on top of kube's backoff.
#[derive(Debug)]
struct Log {
    /// `Service`.
    kind: String,
    /// `services`, `trafficsplits.split.smi-spec.io`.
    resource: String,
    /// Set while the API server answers 404 for the kind: the last extra wait.
    missing: Option<Duration>,
}

impl Log {
    fn new<K: Resource<DynamicType = ()>>() -> Self {
        Self {
            kind: kind::<K>(),
            resource: resource_name::<K>(),
            missing: None,
        }
    }

    /// A (re)list of `objects` objects completed.
    fn listed(&mut self, objects: usize) {
        let (kind, resource) = (&self.kind, &self.resource);
        if self.missing.take().is_some() {
            tracing::info!(%kind, %resource, "now served by the API server");
        }
        tracing::info!(%kind, objects, "listed");
    }

    /// Logs `error` and returns how long to wait before polling the watcher again, if longer
    /// than kube's backoff. A kind that is not served is reported once, then listed less and
    /// less often, up to every [`MISSING_MAX_DELAY`].
    fn failed(&mut self, error: &watcher::Error) -> Option<Duration> {
        let (kind, resource) = (&self.kind, &self.resource);
        if is_not_found(error) {
            let delay = match self.missing {
                None => {
                    tracing::warn!(%kind, %resource, "not served by the API server (is the CRD installed?); the index has none of these until it is; retrying");
                    MISSING_FIRST_DELAY
                }
                Some(delay) => {
                    tracing::debug!(%kind, %resource, "still not served by the API server");
                    (delay * 2).min(MISSING_MAX_DELAY)
                }
            };
            self.missing = Some(delay);
            return Some(delay);
        }
        if is_gone(error) {
            // Routine: the watch fell out of the API server's history window.
            tracing::info!(%kind, "resource version expired; relisting");
        } else {
            tracing::warn!(%kind, %error, "watch failed; retrying with backoff");
        }
        None
    }
}

/// The watcher settings every kind uses; see the module documentation for why.
fn watcher_config() -> watcher::Config {
    watcher::Config::default()
}

/// `Service`, `TrafficSplit`, for logs and errors.
fn kind<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).into_owned()
}

/// What a CRD would be called: `trafficsplits.split.smi-spec.io`; `services` for core kinds.
fn resource_name<K: Resource<DynamicType = ()>>() -> String {
    let group = K::group(&());
    if group.is_empty() {
        K::plural(&()).into_owned()
    } else {
        format!("{}.{group}", K::plural(&()))
    }
}

/// The API server does not serve the kind at all (a list or watch answered 404).
fn is_not_found(error: &watcher::Error) -> bool {
    matches!(
        error,
        watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s))
            if s.is_not_found()
    )
}

/// The watch's resource version is too old; kube's watcher relists.
fn is_gone(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(s) if s.code == 410)
}
