//! `weft inject` and `weft uninject` on YAML: every document of a stream, with the pod
//! templates of workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! ReplicationController, Job, CronJob) and the items of Lists found and patched, everything
//! else passed through. Key order is kept; comments are not.

mod yaml;

use crate::{
    Annotations, Injector, Outcome, PodError, annotations::INJECT, pod::annotations, uninject,
};
use json_patch::Patch;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Why a YAML stream could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The text is not YAML.
    #[error("document {index}: not valid YAML: {reason}")]
    Yaml {
        /// The document's position in the stream, from 1.
        index: usize,
        /// The parser's complaint, with line and column.
        reason: String,
    },
    /// A workload's pod is malformed.
    #[error("document {index} ({object}): {source}")]
    Pod {
        /// The document's position in the stream, from 1.
        index: usize,
        /// `kind namespace/name`.
        object: String,
        /// What is wrong, where.
        #[source]
        source: PodError,
    },
}

/// What was done to each workload, for the person running the command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One line per workload: `deployment/web injected`, `pod/db skipped: ...`.
    pub lines: Vec<String>,
    /// Warnings about the workloads' annotations.
    pub warnings: Vec<String>,
}

/// Meshes every workload of the YAML stream `text`, as the webhook would in a namespace with
/// `weft.dev/inject: enabled` (a pod's `disabled` still wins). The annotations of Namespace
/// documents in the stream apply to the workloads in those namespaces.
pub fn inject_documents(
    text: &str,
    injector: &Injector,
) -> Result<(String, Report), DocumentError> {
    let docs = parse(text)?;
    let mut namespaces: BTreeMap<String, Annotations> = BTreeMap::new();
    for (_, doc) in &docs {
        if doc.json.get("kind").and_then(Value::as_str) == Some("Namespace")
            && let Some(name) = doc.json.pointer("/metadata/name").and_then(Value::as_str)
        {
            namespaces.insert(name.to_string(), annotations(&doc.json).unwrap_or_default());
        }
    }
    process(docs, |pod, namespace| {
        let mut ns = namespaces.get(namespace).cloned().unwrap_or_default();
        ns.insert(INJECT.to_string(), "enabled".to_string());
        let injection = injector.inject(pod, &ns)?;
        let line = match &injection.outcome {
            Outcome::Injected => "injected".to_string(),
            Outcome::Skipped(skip) => format!("skipped: {skip}"),
        };
        Ok((injection.patch, line, injection.warnings))
    })
}

/// Takes the Weft proxy out of every workload of the YAML stream `text`.
pub fn uninject_documents(text: &str) -> Result<(String, Report), DocumentError> {
    process(parse(text)?, |pod, _| {
        let patch = uninject(pod)?;
        let line = match patch.0.is_empty() {
            true => "unchanged: no Weft proxy".to_string(),
            false => "uninjected".to_string(),
        };
        Ok((patch, line, Vec::new()))
    })
}

/// A parsed document: the YAML (keeping key order) and the same as JSON.
struct Doc {
    yaml: serde_yaml_ng::Value,
    json: Value,
}

/// What is done to each pod: its patch, a line for the report, and warnings.
type PodResult = Result<(Patch, String, Vec<String>), PodError>;

fn parse(text: &str) -> Result<Vec<(usize, Doc)>, DocumentError> {
    let mut docs = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let yaml_error = |reason: String| DocumentError::Yaml { index, reason };
        let yaml =
            serde_yaml_ng::Value::deserialize(document).map_err(|e| yaml_error(e.to_string()))?;
        if yaml.is_null() {
            continue;
        }
        let json = serde_json::to_value(&yaml).map_err(|e| yaml_error(e.to_string()))?;
        docs.push((index, Doc { yaml, json }));
    }
    Ok(docs)
}

fn process(
    docs: Vec<(usize, Doc)>,
    mut on_pod: impl FnMut(&Value, &str) -> PodResult,
) -> Result<(String, Report), DocumentError> {
    let mut report = Report::default();
    let mut out = Vec::new();
    for (index, mut doc) in docs {
        let mut templates = Vec::new();
        templates_of(&doc.json, String::new(), "", &mut templates);
        for (at, object, namespace) in templates {
            let Some(pod) = doc.json.pointer(&at) else {
                continue;
            };
            let (patch, line, warnings) =
                on_pod(pod, &namespace).map_err(|source| DocumentError::Pod {
                    index,
                    object: object.clone(),
                    source: PodError {
                        at: format!("{at}{}", source.at),
                        problem: source.problem,
                    },
                })?;
            report.lines.push(format!("{object} {line}"));
            report
                .warnings
                .extend(warnings.into_iter().map(|w| format!("{object}: {w}")));
            yaml::apply(&mut doc.yaml, &mut doc.json, &at, &patch).map_err(|reason| {
                DocumentError::Pod {
                    index,
                    object: object.clone(),
                    source: PodError {
                        at: at.clone(),
                        problem: reason,
                    },
                }
            })?;
        }
        out.push(
            serde_yaml_ng::to_string(&doc.yaml).map_err(|e| DocumentError::Yaml {
                index,
                reason: e.to_string(),
            })?,
        );
    }
    Ok((out.join("---\n"), report))
}

/// Where the pods of `doc` are, as (JSON pointer, `kind/name` for reports, namespace).
fn templates_of(doc: &Value, at: String, namespace: &str, out: &mut Vec<(String, String, String)>) {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(namespace);
    let object = format!("{}/{name}", kind.to_lowercase());
    let template = match kind {
        "Pod" => Some(""),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    };
    if let Some(template) = template {
        out.push((format!("{at}{template}"), object, namespace.to_string()));
    } else if kind.ends_with("List")
        && let Some(items) = doc.get("items").and_then(Value::as_array)
    {
        for (i, item) in items.iter().enumerate() {
            templates_of(item, format!("{at}/items/{i}"), namespace, out);
        }
    }
}
