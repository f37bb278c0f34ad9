//! What the injection reads of a pod, from its JSON, each field checked for its type so a
//! malformed pod is reported with the place that is wrong.

use crate::{
    Annotations,
    patch::{PodError, describe, pointer},
};
use serde_json::Value;

/// The parts of a pod (or pod template) the decision and the patch depend on.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodView {
    pub annotations: Annotations,
    pub host_network: bool,
    /// Names of the app containers, in order.
    pub containers: Vec<String>,
    pub init_containers: Vec<String>,
    pub volumes: Vec<String>,
}

impl PodView {
    pub fn read(pod: &Value) -> Result<Self, PodError> {
        if !pod.is_object() {
            return Err(error(
                "",
                format!("is {}, expected a pod (a map)", describe(pod)),
            ));
        }
        let spec = match pod.get("spec") {
            Some(spec @ Value::Object(_)) => spec,
            None | Some(Value::Null) => return Err(error("/spec", "is missing".to_string())),
            Some(other) => {
                return Err(error(
                    "/spec",
                    format!("is {}, expected a map", describe(other)),
                ));
            }
        };
        let containers = names(spec, "containers")?;
        if containers.is_empty() {
            return Err(error(
                "/spec/containers",
                "has no container; a pod needs at least one".to_string(),
            ));
        }
        let host_network = match spec.get("hostNetwork") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(error(
                    "/spec/hostNetwork",
                    format!("is {}, expected true or false", describe(other)),
                ));
            }
        };
        Ok(Self {
            annotations: annotations(pod)?,
            host_network,
            containers,
            init_containers: names(spec, "initContainers")?,
            volumes: names(spec, "volumes")?,
        })
    }
}

/// `metadata.annotations` as strings; missing is empty.
pub(crate) fn annotations(object: &Value) -> Result<Annotations, PodError> {
    let metadata = match object.get("metadata") {
        None | Some(Value::Null) => return Ok(Annotations::new()),
        Some(m @ Value::Object(_)) => m,
        Some(other) => {
            return Err(error(
                "/metadata",
                format!("is {}, expected a map", describe(other)),
            ));
        }
    };
    match metadata.get("annotations") {
        None | Some(Value::Null) => Ok(Annotations::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(error(
                    &pointer(&["metadata", "annotations", k]),
                    format!("is {}, expected a string (quote it)", describe(other)),
                )),
            })
            .collect(),
        Some(other) => Err(error(
            "/metadata/annotations",
            format!("is {}, expected a map of strings", describe(other)),
        )),
    }
}

/// The `name` of every item of `spec[field]`; missing is none.
fn names(spec: &Value, field: &str) -> Result<Vec<String>, PodError> {
    let at = format!("/spec/{field}");
    match spec.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.get("name") {
                Some(Value::String(name)) => Ok(name.clone()),
                _ => Err(error(&format!("{at}/{i}"), "has no name".to_string())),
            })
            .collect(),
        Some(other) => Err(error(
            &at,
            format!("is {}, expected a list", describe(other)),
        )),
    }
}

fn error(at: &str, problem: String) -> PodError {
    PodError {
        at: at.to_string(),
        problem,
    }
}
