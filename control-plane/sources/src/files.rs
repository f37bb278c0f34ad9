//! The `files` source: a directory of multi-document YAML holding the kinds the kube source
//! watches, re-read whenever a file in it is added, changed or removed.
//!
//! Each reload replaces every kind in the index with what the directory holds now (`reset`),
//! so deleting a document deletes the object. An invalid document is reported with its file,
//! index and reason, and skipped; the valid documents still apply.

mod parse;
#[cfg(test)]
mod tests;

pub use parse::{
    Cache, Changes, DocumentError, ObjectId, Objects, SUPPORTED, is_manifest, read_dir,
};

use notify::Watcher;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::sync::{mpsc, watch};
use weft_controller_index::{
    Index, IndexResource, ObjectKey, SharedIndex,
    crds::{
        AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server, TrafficSplit,
    },
};

/// Why the files source stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory cannot be read.
    #[error("cannot read {dir}: {source}")]
    Read {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The directory cannot be watched.
    #[error("cannot watch {dir} for changes: {source}")]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: notify::Error,
    },
}

/// The outcome of one (re)load.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// How many loads have happened, from 1.
    pub generation: u64,
    /// Documents read.
    pub documents: usize,
    /// Invalid documents.
    pub errors: Vec<DocumentError>,
}

/// How long the directory must be quiet before a reload, so an editor's write-and-rename or a
/// script writing several files causes one reload, not several.
const SETTLE: Duration = Duration::from_millis(20);

/// Makes the index hold exactly what `dir` contains, parsing only the files that changed since `cache` last read them
/// and applies only their objects, unless the change needs everything read again.
pub fn load_with(cache: &mut Cache, dir: &Path, index: &SharedIndex) -> Result<Report, Error> {
    let changes = cache.read_changes(dir).map_err(|source| Error::Read {
        dir: dir.to_path_buf(),
        source,
    })?;
    let (documents, errors) = match changes {
        Changes::Full(objects) => {
            index.write().batch(|index| {
                index.reset(objects.namespaces);
                index.reset(objects.services);
                index.reset(objects.pods);
                index.reset(objects.endpoint_slices);
                index.reset(objects.traffic_splits);
                index.reset(objects.http_routes);
                index.reset(objects.grpc_routes);
                index.reset(objects.servers);
                index.reset(objects.authorization_policies);
                index.reset(objects.mesh_tls_authentications);
                index.reset(objects.network_authentications);
            });
            (objects.documents, objects.errors)
        }
        Changes::Partial {
            apply,
            delete,
            errors,
            documents,
        } => {
            index.write().batch(|index| {
                apply_all(index, apply);
                for id in delete {
                    delete_one(index, id);
                }
            });
            (documents, errors)
        }
    };
    for e in &errors {
        tracing::warn!(file = %e.file.display(), document = ?e.document, reason = %e.reason, "invalid document skipped");
    }
    Ok(Report {
        generation: 0,
        documents,
        errors,
    })
}

fn apply_all(index: &mut Index, o: Objects) {
    o.namespaces.into_iter().for_each(|x| index.apply(x));
    o.services.into_iter().for_each(|x| index.apply(x));
    o.pods.into_iter().for_each(|x| index.apply(x));
    o.endpoint_slices.into_iter().for_each(|x| index.apply(x));
    o.traffic_splits.into_iter().for_each(|x| index.apply(x));
    o.http_routes.into_iter().for_each(|x| index.apply(x));
    o.grpc_routes.into_iter().for_each(|x| index.apply(x));
    o.servers.into_iter().for_each(|x| index.apply(x));
    o.authorization_policies
        .into_iter()
        .for_each(|x| index.apply(x));
    o.mesh_tls_authentications
        .into_iter()
        .for_each(|x| index.apply(x));
    o.network_authentications
        .into_iter()
        .for_each(|x| index.apply(x));
}

fn delete_one(index: &mut Index, (kind, namespace, name): parse::ObjectId) {
    use gateway_api::apis::{experimental::httproutes::HttpRoute, standard::grpcroutes::GrpcRoute};
    use k8s_openapi::api::{core::v1 as core, discovery::v1 as discovery};
    let key = ObjectKey::new(namespace, name);
    match kind.as_str() {
        "Namespace" => IndexResource::<core::Namespace>::delete(index, key),
        "Service" => IndexResource::<core::Service>::delete(index, key),
        "Pod" => IndexResource::<core::Pod>::delete(index, key),
        "EndpointSlice" => IndexResource::<discovery::EndpointSlice>::delete(index, key),
        "TrafficSplit" => IndexResource::<TrafficSplit>::delete(index, key),
        "HTTPRoute" => IndexResource::<HttpRoute>::delete(index, key),
        "GRPCRoute" => IndexResource::<GrpcRoute>::delete(index, key),
        "Server" => IndexResource::<Server>::delete(index, key),
        "AuthorizationPolicy" => IndexResource::<AuthorizationPolicy>::delete(index, key),
        "MeshTLSAuthentication" => IndexResource::<MeshTLSAuthentication>::delete(index, key),
        "NetworkAuthentication" => IndexResource::<NetworkAuthentication>::delete(index, key),
        other => tracing::warn!(kind = other, "cannot delete an object of an unknown kind"),
    }
}

/// Loads `dir` into the index, then reloads on every change until the directory cannot be
/// read or watched any more. Each load's report is sent on `reports`.
pub async fn run(
    dir: PathBuf,
    index: SharedIndex,
    reports: watch::Sender<Arc<Report>>,
) -> Result<(), Error> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading the directory produces access events; only changes matter (else every
        // reload would trigger the next).
        if event.as_ref().is_ok_and(|e| !is_change(&e.kind)) {
            return;
        }
        // The receiver only goes away when `run` returns.
        let _ = tx.send(event);
    })
    .map_err(|source| Error::Watch {
        dir: dir.clone(),
        source,
    })?;
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .map_err(|source| Error::Watch {
            dir: dir.clone(),
            source,
        })?;

    let mut generation = 0;
    let mut cache = Cache::default();
    loop {
        generation += 1;
        let mut report = load_with(&mut cache, &dir, &index)?;
        report.generation = generation;
        tracing::info!(dir = %dir.display(), generation, documents = report.documents, invalid = report.errors.len(), "loaded");
        reports.send_replace(Arc::new(report));

        // Wait for a change, then for the directory to settle.
        match rx.recv().await {
            Some(Err(e)) => {
                tracing::warn!(dir = %dir.display(), error = %e, "file watch error; reloading")
            }
            Some(Ok(_)) => {}
            None => return Ok(()),
        }
        while let Ok(Some(_)) = tokio::time::timeout(SETTLE, rx.recv()).await {}
    }
}

/// Whether an event changes what the directory holds.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::{EventKind, event::ModifyKind};
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Any
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
    )
}
