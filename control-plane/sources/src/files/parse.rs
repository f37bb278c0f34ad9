//! Reads a directory of multi-document YAML into typed objects, keeping every bad document's
//! file, index and reason.

use gateway_api::apis::{experimental::httproutes::HttpRoute, standard::grpcroutes::GrpcRoute};
use k8s_openapi::api::{core::v1 as core, discovery::v1 as discovery};
use kube::{Resource, ResourceExt};
use serde::{Deserialize, de::DeserializeOwned};
use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
};
use weft_controller_index::crds::{
    AuthorizationPolicy, InvalidSpec, MeshTLSAuthentication, NetworkAuthentication, Server,
    TrafficSplit,
};

/// Everything read from a directory.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    /// Namespaces.
    pub namespaces: Vec<core::Namespace>,
    /// Services.
    pub services: Vec<core::Service>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<discovery::EndpointSlice>,
    /// Pods.
    pub pods: Vec<core::Pod>,
    /// SMI TrafficSplits.
    pub traffic_splits: Vec<TrafficSplit>,
    /// Gateway API HTTPRoutes.
    pub http_routes: Vec<HttpRoute>,
    /// Gateway API GRPCRoutes.
    pub grpc_routes: Vec<GrpcRoute>,
    /// Servers.
    pub servers: Vec<Server>,
    /// AuthorizationPolicies.
    pub authorization_policies: Vec<AuthorizationPolicy>,
    /// MeshTLSAuthentications.
    pub mesh_tls_authentications: Vec<MeshTLSAuthentication>,
    /// NetworkAuthentications.
    pub network_authentications: Vec<NetworkAuthentication>,
    /// Documents that could not be used.
    pub errors: Vec<DocumentError>,
    /// Documents read, valid or not.
    pub documents: usize,
    /// Each valid object's (kind, namespace, name) and document index, in file order.
    pub keys: Vec<(ObjectId, usize)>,
}

/// An object's kind, namespace and name.
pub type ObjectId = (String, String, String);

/// What the last read found in each file: its content hash, the objects it defined, its
/// invalid documents. With it a change to one file of a large directory is applied by parsing
/// only that file (see [`Cache::read_changes`]).
#[derive(Debug, Default)]
pub struct Cache {
    files: HashMap<PathBuf, FileState>,
}

#[derive(Debug, Clone)]
struct FileState {
    hash: u64,
    keys: Vec<(ObjectId, usize)>,
    errors: Vec<DocumentError>,
    documents: usize,
}

/// What changed in a directory since the last read.
#[derive(Debug)]
pub enum Changes {
    /// Everything, to replace what the index holds (the first read, or a change that touches
    /// objects also defined in an unchanged file).
    Full(Objects),
    /// Only these: apply `apply`, then delete `delete`.
    Partial {
        /// Objects of the changed files.
        apply: Objects,
        /// Objects no file defines any more.
        delete: Vec<ObjectId>,
        /// Invalid documents of the whole directory.
        errors: Vec<DocumentError>,
        /// Documents in the whole directory.
        documents: usize,
    },
}

fn manifests(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_manifest(p))
        .collect();
    files.sort();
    Ok(files)
}

fn hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

fn unreadable(file: &Path, e: &std::io::Error) -> DocumentError {
    DocumentError {
        file: file.to_path_buf(),
        document: None,
        reason: format!("cannot read: {e}"),
    }
}

impl Cache {
    /// Reads every manifest in `dir` and remembers what each file held.
    pub fn read_dir(&mut self, dir: &Path) -> std::io::Result<Objects> {
        self.files.clear();
        let mut objects = Objects::default();
        let mut seen: HashMap<ObjectId, (PathBuf, usize)> = HashMap::new();
        for file in manifests(dir)? {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(e) => {
                    objects.errors.push(unreadable(&file, &e));
                    continue;
                }
            };
            let mut parsed = Objects::default();
            parse_file(&file, &text, &mut parsed, &mut HashMap::new());
            merge(&file, &parsed, &mut objects, &mut seen);
            self.files.insert(
                file,
                FileState {
                    hash: hash(&text),
                    keys: parsed.keys,
                    errors: parsed.errors,
                    documents: parsed.documents,
                },
            );
        }
        // Cross-file duplicates are reported on the merged result; keep them on a full read.
        Ok(objects)
    }

    /// What changed in `dir` since the last read, parsing only files whose content changed.
    pub fn read_changes(&mut self, dir: &Path) -> std::io::Result<Changes> {
        if self.files.is_empty() {
            return self.read_dir(dir).map(Changes::Full);
        }
        let files = manifests(dir)?;
        let mut changed: Vec<(PathBuf, String)> = Vec::new();
        for file in &files {
            match std::fs::read_to_string(file) {
                Ok(text) => {
                    if self.files.get(file).is_none_or(|f| f.hash != hash(&text)) {
                        changed.push((file.clone(), text));
                    }
                }
                // Unreadable now: read everything again, which reports it.
                Err(_) => return self.read_dir(dir).map(Changes::Full),
            }
        }
        let removed: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|f| !files.contains(f))
            .cloned()
            .collect();
        let touched_files: Vec<&PathBuf> = changed.iter().map(|(f, _)| f).chain(&removed).collect();
        let old: Vec<ObjectId> = touched_files
            .iter()
            .filter_map(|f| self.files.get(*f))
            .flat_map(|s| s.keys.iter().map(|(k, _)| k.clone()))
            .collect();
        let mut apply = Objects::default();
        let mut parsed_files = Vec::new();
        for (file, text) in &changed {
            let mut parsed = Objects::default();
            parse_file(file, text, &mut parsed, &mut HashMap::new());
            parsed_files.push((file.clone(), hash(text), parsed));
        }
        let new: Vec<&ObjectId> = parsed_files
            .iter()
            .flat_map(|(_, _, p)| p.keys.iter().map(|(k, _)| k))
            .collect();
        // An object also defined by an unchanged file, or by two changed files, needs the
        // full read to decide which copy wins.
        let unchanged_keys: std::collections::HashSet<&ObjectId> = self
            .files
            .iter()
            .filter(|(f, _)| !touched_files.contains(f))
            .flat_map(|(_, s)| s.keys.iter().map(|(k, _)| k))
            .collect();
        let distinct_new: std::collections::HashSet<&ObjectId> = new.iter().copied().collect();
        if distinct_new.len() != new.len()
            || old
                .iter()
                .chain(new.iter().copied())
                .any(|k| unchanged_keys.contains(k))
        {
            return self.read_dir(dir).map(Changes::Full);
        }
        let delete = old
            .into_iter()
            .filter(|k| !distinct_new.contains(k))
            .collect();
        for f in &removed {
            self.files.remove(f);
        }
        for (file, hash, parsed) in parsed_files {
            self.files.insert(
                file.clone(),
                FileState {
                    hash,
                    keys: parsed.keys.clone(),
                    errors: parsed.errors.clone(),
                    documents: parsed.documents,
                },
            );
            merge(&file, &parsed, &mut apply, &mut HashMap::new());
        }
        let mut errors = Vec::new();
        let mut documents = 0;
        for file in &files {
            if let Some(s) = self.files.get(file) {
                errors.extend_from_slice(&s.errors);
                documents += s.documents;
            }
        }
        Ok(Changes::Partial {
            apply,
            delete,
            errors,
            documents,
        })
    }
}

/// Adds one file's objects, reporting objects another file already defined.
fn merge(
    file: &Path,
    parsed: &Objects,
    into: &mut Objects,
    seen: &mut HashMap<ObjectId, (PathBuf, usize)>,
) {
    for (key, doc) in &parsed.keys {
        if let Some((first, j)) = seen.get(key)
            && first != file
        {
            into.errors.push(DocumentError {
                file: file.to_path_buf(),
                document: Some(*doc),
                reason: format!(
                    "{} {}/{} is already defined in {} document {j}; this copy is used",
                    key.0,
                    key.1,
                    key.2,
                    first.display()
                ),
            });
        }
        seen.insert(key.clone(), (file.to_path_buf(), *doc));
    }
    into.namespaces.extend_from_slice(&parsed.namespaces);
    into.services.extend_from_slice(&parsed.services);
    into.endpoint_slices
        .extend_from_slice(&parsed.endpoint_slices);
    into.pods.extend_from_slice(&parsed.pods);
    into.traffic_splits
        .extend_from_slice(&parsed.traffic_splits);
    into.http_routes.extend_from_slice(&parsed.http_routes);
    into.grpc_routes.extend_from_slice(&parsed.grpc_routes);
    into.servers.extend_from_slice(&parsed.servers);
    into.authorization_policies
        .extend_from_slice(&parsed.authorization_policies);
    into.mesh_tls_authentications
        .extend_from_slice(&parsed.mesh_tls_authentications);
    into.network_authentications
        .extend_from_slice(&parsed.network_authentications);
    into.errors.extend_from_slice(&parsed.errors);
    into.keys.extend_from_slice(&parsed.keys);
    into.documents += parsed.documents;
}

/// A document that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// The file.
    pub file: PathBuf,
    /// The document's index in the file, from 0; `None` if the file itself failed.
    pub document: Option<usize>,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.document {
            Some(i) => write!(f, "{} document {i}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

/// The kinds this source understands, as `apiVersion kind`.
pub const SUPPORTED: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "Service"),
    ("v1", "Pod"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("split.smi-spec.io/v1alpha2", "TrafficSplit"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    (POLICY, "Server"),
    (POLICY, "AuthorizationPolicy"),
    (POLICY, "MeshTLSAuthentication"),
    (POLICY, "NetworkAuthentication"),
];

const POLICY: &str = "policy.weft.dev/v1alpha1";

/// Whether a directory entry is a manifest: `*.yaml`, `*.yml` or `*.json`, not hidden (editors'
/// swap and temporary files start with a dot).
pub fn is_manifest(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    !hidden && matches!(ext, "yaml" | "yml" | "json")
}

/// Reads every manifest directly in `dir`, in name order.
pub fn read_dir(dir: &Path) -> std::io::Result<Objects> {
    Cache::default().read_dir(dir)
}

/// Parses one file's documents into `objects`. `seen` finds the same object defined twice.
pub fn parse_file(
    file: &Path,
    text: &str,
    objects: &mut Objects,
    seen: &mut HashMap<(String, String, String), (PathBuf, usize)>,
) {
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let fail = |reason: String| DocumentError {
            file: file.to_path_buf(),
            document: Some(i),
            reason,
        };
        let value = match serde_yaml_ng::Value::deserialize(doc) {
            Ok(serde_yaml_ng::Value::Null) => continue,
            Ok(v) => v,
            Err(e) => {
                // A syntax error ends the stream: later documents of this file are not read.
                objects.errors.push(fail(format!(
                    "invalid YAML: {e} (later documents in this file are not read)"
                )));
                return;
            }
        };
        objects.documents += 1;
        match add(value, objects) {
            Ok(key) => {
                if let Some((first, j)) = seen.get(&key) {
                    objects.errors.push(fail(format!(
                        "{} {}/{} is already defined in {} document {j}; this copy is used",
                        key.0,
                        key.1,
                        key.2,
                        first.display()
                    )));
                }
                seen.insert(key.clone(), (file.to_path_buf(), i));
                objects.keys.push((key, i));
            }
            Err(reason) => objects.errors.push(fail(reason)),
        }
    }
}

/// Adds one document; returns its (kind, namespace, name).
fn add(value: serde_yaml_ng::Value, o: &mut Objects) -> Result<(String, String, String), String> {
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let api_version = field("apiVersion").ok_or("missing apiVersion")?;
    let kind = field("kind").ok_or("missing kind")?;
    let json =
        serde_json::to_value(&value).map_err(|e| format!("not representable as JSON: {e}"))?;
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => push(json, &mut o.namespaces, false),
        ("v1", "Service") => push(json, &mut o.services, true),
        ("v1", "Pod") => push(json, &mut o.pods, true),
        ("discovery.k8s.io/v1", "EndpointSlice") => push(json, &mut o.endpoint_slices, true),
        ("split.smi-spec.io/v1alpha2", "TrafficSplit") => {
            let key = push(json, &mut o.traffic_splits, true)?;
            if let Some(split) = o.traffic_splits.last()
                && let Err(e) = check_split(split)
            {
                o.traffic_splits.pop();
                return Err(e);
            }
            Ok(key)
        }
        ("gateway.networking.k8s.io/v1", "HTTPRoute") => push(json, &mut o.http_routes, true),
        ("gateway.networking.k8s.io/v1", "GRPCRoute") => push(json, &mut o.grpc_routes, true),
        (POLICY, "Server") => push_valid(json, &mut o.servers, Server::validate),
        (POLICY, "AuthorizationPolicy") => push_valid(
            json,
            &mut o.authorization_policies,
            AuthorizationPolicy::validate,
        ),
        (POLICY, "MeshTLSAuthentication") => push_valid(
            json,
            &mut o.mesh_tls_authentications,
            MeshTLSAuthentication::validate,
        ),
        (POLICY, "NetworkAuthentication") => push_valid(
            json,
            &mut o.network_authentications,
            NetworkAuthentication::validate,
        ),
        _ => Err(format!(
            "unsupported kind {kind} (apiVersion {api_version}); supported: {}",
            SUPPORTED
                .iter()
                .map(|(v, k)| format!("{k} ({v})"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Deserializes `json` as `K`, reporting the path of a bad field, and defaults the namespace.
fn push<K>(
    json: serde_json::Value,
    into: &mut Vec<K>,
    namespaced: bool,
) -> Result<(String, String, String), String>
where
    K: DeserializeOwned + Resource<DynamicType = ()>,
{
    let mut obj: K = serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("invalid {}: {}", K::kind(&()), e.inner())
        } else {
            format!("invalid {} at {path}: {}", K::kind(&()), e.inner())
        }
    })?;
    if obj.meta().name.as_deref().is_none_or(str::is_empty) {
        return Err(format!("{} has no metadata.name", K::kind(&())));
    }
    if namespaced && obj.meta().namespace.is_none() {
        obj.meta_mut().namespace = Some("default".to_string());
    }
    let key = (
        K::kind(&()).to_string(),
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
    );
    into.push(obj);
    Ok(key)
}

/// [`push`], then `validate` (what the CRD's schema would reject, checked here because files
/// skip the API server); an invalid object is not kept.
fn push_valid<K>(
    json: serde_json::Value,
    into: &mut Vec<K>,
    validate: fn(&K) -> Result<(), InvalidSpec>,
) -> Result<(String, String, String), String>
where
    K: DeserializeOwned + Resource<DynamicType = ()>,
{
    let key = push(json, into, true)?;
    if let Some(obj) = into.last()
        && let Err(e) = validate(obj)
    {
        into.pop();
        return Err(format!("invalid {} {e}", K::kind(&())));
    }
    Ok(key)
}

/// What the CRD's schema would reject, checked here because files skip the API server.
fn check_split(split: &TrafficSplit) -> Result<(), String> {
    if split.spec.service.is_empty() {
        return Err("invalid TrafficSplit at spec.service: must not be empty".to_string());
    }
    if split.spec.backends.is_empty() {
        return Err(
            "invalid TrafficSplit at spec.backends: needs at least one backend".to_string(),
        );
    }
    for (i, b) in split.spec.backends.iter().enumerate() {
        if b.weight < 0 {
            return Err(format!(
                "invalid TrafficSplit at spec.backends[{i}].weight: {} is negative",
                b.weight
            ));
        }
        if b.service.is_empty() {
            return Err(format!(
                "invalid TrafficSplit at spec.backends[{i}].service: must not be empty"
            ));
        }
    }
    Ok(())
}
