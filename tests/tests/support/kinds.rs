//! Built-in kinds through k8s-openapi and back, for the manifest and install tests: a field
//! that does not survive the round trip is one the type does not have (usually a misspelling
//! the API server would drop or reject).

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Numbers compare by value: the YAML's `0` and k8s-openapi's `0.0` are the same number.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| v.clone(), Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        _ => v.clone(),
    }
}

/// Where `written` has something `understood` lacks (or differs), as a JSON pointer.
fn first_difference(written: &Value, understood: &Value, at: &str) -> Option<String> {
    match (written, understood) {
        (Value::Object(w), Value::Object(u)) => w.iter().find_map(|(k, wv)| match u.get(k) {
            None => Some(format!("{at}/{k}")),
            Some(uv) => first_difference(wv, uv, &format!("{at}/{k}")),
        }),
        (Value::Array(w), Value::Array(u)) if w.len() == u.len() => w
            .iter()
            .zip(u)
            .enumerate()
            .find_map(|(i, (wv, uv))| first_difference(wv, uv, &format!("{at}/{i}"))),
        _ if written == understood => None,
        _ => Some(at.to_string()),
    }
}

/// Parses `v` as `T` and back: a field that does not survive is one `T` does not have,
/// usually a misspelling that the API server would drop or reject.
pub fn round_trip_problems<T: DeserializeOwned + Serialize>(v: &Value) -> Vec<String> {
    let typed: T = match serde_json::from_value(v.clone()) {
        Ok(typed) => typed,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let back = match serde_json::to_value(&typed) {
        Ok(back) => back,
        Err(e) => return vec![format!("does not serialize back: {e}")],
    };
    let (written, understood) = (normalize(v), normalize(&back));
    match first_difference(&written, &understood, "") {
        None => Vec::new(),
        Some(at) => vec![format!(
            "{at} is not a field of {} (misspelt?) or did not survive parsing",
            std::any::type_name::<T>()
        )],
    }
}

/// The problems of a document of a built-in kind; `None` for kinds k8s-openapi lacks here.
pub fn typed_problems(doc: &Value) -> Option<Vec<String>> {
    let api_version = doc["apiVersion"].as_str().unwrap_or("");
    let kind = doc["kind"].as_str().unwrap_or("");
    Some(match (api_version, kind) {
        ("v1", "Namespace") => round_trip_problems::<Namespace>(doc),
        ("v1", "Service") => round_trip_problems::<Service>(doc),
        ("v1", "ServiceAccount") => round_trip_problems::<ServiceAccount>(doc),
        ("v1", "ConfigMap") => round_trip_problems::<ConfigMap>(doc),
        ("v1", "Secret") => round_trip_problems::<Secret>(doc),
        ("apps/v1", "Deployment") => round_trip_problems::<Deployment>(doc),
        ("policy/v1", "PodDisruptionBudget") => round_trip_problems::<PodDisruptionBudget>(doc),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
            round_trip_problems::<MutatingWebhookConfiguration>(doc)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip_problems::<ClusterRole>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip_problems::<ClusterRoleBinding>(doc)
        }
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip_problems::<CustomResourceDefinition>(doc)
        }
        _ => return None,
    })
}
