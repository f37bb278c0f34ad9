//! The injection of one pod (or pod template) as an RFC 6902 JSON patch. Every operation
//! adds: existing containers, init containers, volumes and annotations are kept as they are,
//! and a list or map the pod lacks is created whole.

use crate::{
    Annotations, Config, Overrides,
    annotations::{DEFAULT_CONTAINER, PROXY_VERSION},
    config::{INIT_CONTAINER, PROXY_CONTAINER, TOKEN_VOLUME, XTABLES_VOLUME},
    containers,
    decide::{Skip, decide},
    pod::PodView,
};
use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use serde_json::{Map, Value};

/// Why a document cannot be read as a pod.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct PodError {
    /// Where in the pod, as a JSON pointer (`/spec/containers`).
    pub at: String,
    /// What was wrong there and what is expected.
    pub problem: String,
}

/// What became of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The patch adds the proxy.
    Injected,
    /// The pod is left as it is.
    Skipped(Skip),
}

/// The result of [`Injector::inject`]: the patch (empty unless injected), what became of the
/// pod, and warnings for the person who created it.
#[derive(Clone, Debug, PartialEq)]
pub struct Injection {
    /// The RFC 6902 patch; empty when the pod is skipped.
    pub patch: Patch,
    /// Injected or why not.
    pub outcome: Outcome,
    /// Ignored annotations and skipped pods worth knowing about.
    pub warnings: Vec<String>,
}

/// Injects pods as `config` says.
#[derive(Clone, Debug)]
pub struct Injector {
    config: Config,
}

impl Injector {
    /// An injector with `config`.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The patch that meshes `pod` (a Pod, or a workload's pod template: `metadata` and
    /// `spec`) in a namespace with `namespace` annotations, or an empty one and the reason
    /// it is left alone. Fails only on a pod that is not one (no containers, a list that
    /// is not a list, ...).
    pub fn inject(&self, pod: &Value, namespace: &Annotations) -> Result<Injection, PodError> {
        let view = PodView::read(pod)?;
        let mut warnings = Vec::new();
        if let Err(skip) = decide(&view, namespace, &mut warnings) {
            return Ok(Injection {
                patch: Patch(Vec::new()),
                outcome: Outcome::Skipped(skip),
                warnings,
            });
        }
        let config = &self.config;
        let overrides = Overrides::read(
            &view.annotations,
            namespace,
            &config.proxy_resources,
            &mut warnings,
        );
        let mut ops = Ops {
            pod,
            ops: Vec::new(),
        };

        let mut annotations = vec![(PROXY_VERSION, config.proxy_version.clone())];
        if !config.native_sidecars
            && !view.annotations.contains_key(DEFAULT_CONTAINER)
            && let Some(app) = view.containers.first()
        {
            annotations.push((DEFAULT_CONTAINER, app.clone()));
        }
        ops.add_entries(&["metadata", "annotations"], annotations)?;

        let mut volumes = Vec::new();
        if config.trust_anchors.is_some() {
            volumes.push(to_value(containers::token_volume()));
        }
        let init = (!config.cni).then(|| to_value(containers::init_container(config, &overrides)));
        if init.is_some() {
            volumes.push(to_value(containers::xtables_volume()));
        }
        ops.insert(&["spec", "volumes"], At::End, volumes)?;

        let proxy = to_value(containers::proxy_container(config, &overrides));
        if config.native_sidecars {
            // weft-init, then the proxy, then the pod's own init containers: they already
            // run redirected, so the proxy must be there for them.
            let front = init.into_iter().chain([proxy]).collect();
            ops.insert(&["spec", "initContainers"], At::Front, front)?;
        } else {
            // Without a native sidecar nothing serves the redirect before the app
            // containers, so weft-init runs last and the pod's init containers go direct.
            ops.insert(
                &["spec", "initContainers"],
                At::End,
                init.into_iter().collect(),
            )?;
            ops.insert(&["spec", "containers"], At::Front, vec![proxy])?;
        }
        Ok(Injection {
            patch: Patch(ops.ops),
            outcome: Outcome::Injected,
            warnings,
        })
    }
}

/// The names the injection adds, which a pod must not have already.
pub(crate) const CONTAINER_NAMES: [&str; 2] = [PROXY_CONTAINER, INIT_CONTAINER];
/// The volumes the injection adds.
pub(crate) const VOLUME_NAMES: [&str; 2] = [TOKEN_VOLUME, XTABLES_VOLUME];

fn to_value<T: serde::Serialize>(t: T) -> Value {
    // k8s-openapi types serialize to JSON objects infallibly (string keys, no floats).
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Where new items go in a list.
#[derive(Clone, Copy)]
enum At {
    Front,
    End,
}

/// The operations being built against `pod`.
struct Ops<'a> {
    pod: &'a Value,
    ops: Vec<PatchOperation>,
}

impl Ops<'_> {
    /// Adds `entries` to the map at `path`, creating it (and any missing parent) if need be.
    fn add_entries(&mut self, path: &[&str], entries: Vec<(&str, String)>) -> Result<(), PodError> {
        match self.missing_from(path, "a map", Value::is_object)? {
            None => {
                for (key, value) in entries {
                    let tokens = path.iter().copied().chain([key]);
                    self.add(PointerBuf::from_tokens(tokens), Value::String(value));
                }
            }
            Some(missing) => {
                let map: Map<String, Value> = entries
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v)))
                    .collect();
                self.create(path, missing, Value::Object(map));
            }
        }
        Ok(())
    }

    /// Inserts `items` at the front or the end of the list at `path`, creating it if need be.
    fn insert(&mut self, path: &[&str], at: At, items: Vec<Value>) -> Result<(), PodError> {
        if items.is_empty() {
            return Ok(());
        }
        match self.missing_from(path, "a list", Value::is_array)? {
            None => {
                for (i, item) in items.into_iter().enumerate() {
                    let index = match at {
                        At::Front => i.to_string(),
                        At::End => "-".to_string(),
                    };
                    let tokens = path.iter().copied().chain([index.as_str()]);
                    self.add(PointerBuf::from_tokens(tokens), item);
                }
            }
            Some(missing) => self.create(path, missing, Value::Array(items)),
        }
        Ok(())
    }

    /// `None` if `path` holds a value `is_kind` accepts; else how many of its last tokens do
    /// not exist. A present value of another kind (or a parent that is not a map) is an error.
    fn missing_from(
        &self,
        path: &[&str],
        kind: &str,
        is_kind: fn(&Value) -> bool,
    ) -> Result<Option<usize>, PodError> {
        let mut node = self.pod;
        for (depth, token) in path.iter().enumerate() {
            let at = pointer(&path[..depth]);
            let Some(map) = node.as_object() else {
                return Err(PodError {
                    at,
                    problem: format!("is {}, expected a map", describe(node)),
                });
            };
            match map.get(*token) {
                Some(Value::Null) | None => return Ok(Some(path.len() - depth)),
                Some(child) => node = child,
            }
        }
        if is_kind(node) {
            Ok(None)
        } else {
            Err(PodError {
                at: pointer(path),
                problem: format!("is {}, expected {kind}", describe(node)),
            })
        }
    }

    /// Adds `value` at `path`, of which the last `missing` tokens do not exist yet.
    fn create(&mut self, path: &[&str], missing: usize, value: Value) {
        let exists = path.len() - missing;
        let mut value = value;
        for token in path[exists + 1..].iter().rev() {
            let mut map = Map::new();
            map.insert(token.to_string(), value);
            value = Value::Object(map);
        }
        self.add(
            PointerBuf::from_tokens(path[..=exists].iter().copied()),
            value,
        );
    }

    fn add(&mut self, path: PointerBuf, value: Value) {
        self.ops
            .push(PatchOperation::Add(AddOperation { path, value }));
    }
}

/// `/a/b` of tokens, escaped.
pub(crate) fn pointer(tokens: &[&str]) -> String {
    PointerBuf::from_tokens(tokens.iter().copied()).to_string()
}

/// What a JSON value is, for messages.
pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}
