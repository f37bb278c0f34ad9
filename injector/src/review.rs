//! `admission.k8s.io/v1` AdmissionReview in, AdmissionReview out. Whatever arrives, the answer
//! is a well-formed review: a Pod to mesh gets its patch, anything malformed or unexpected
//! (not JSON, another kind or version, no uid, no object, a malformed pod) is allowed unchanged
//! with a warning saying what was wrong, and logged. The proxy is never the reason a pod is
//! refused.

use crate::Namespaces;
use k8s_openapi::ByteString;
use serde_json::{Value, json};
use weft_injector_patch::{Annotations, Injector, Outcome};

/// The only AdmissionReview version served (the webhook configuration asks for it alone).
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// What a review asks about, once it is known to be a Pod being created.
#[derive(Debug)]
struct PodRequest {
    uid: String,
    namespace: String,
    /// `name` or `generateName` for logs.
    name: String,
    object: Value,
}

/// A review that gets no patch, and why: `Err` carries the uid (if any) and a warning.
type Parsed = Result<PodRequest, (String, String)>;

/// Answers one AdmissionReview `body`: a review (JSON) that allows the pod, with the patch
/// that meshes it when it should be.
pub async fn review(body: &[u8], namespaces: &dyn Namespaces, injector: &Injector) -> Vec<u8> {
    let request = match parse(body) {
        Ok(request) => request,
        Err((uid, warning)) => {
            tracing::warn!(%uid, "{warning}");
            return response(
                &uid,
                None,
                vec![format!(
                    "weft-injector: {warning}; the pod is admitted without the Weft proxy"
                )],
            );
        }
    };
    let PodRequest {
        uid,
        namespace,
        name,
        object,
    } = request;
    let mut warnings = Vec::new();
    let annotations = match namespaces.annotations(&namespace).await {
        Ok(annotations) => annotations,
        Err(e) => {
            tracing::warn!(%uid, %namespace, pod = %name, "cannot read the namespace's annotations: {e}");
            warnings.push(format!(
                "weft-injector: cannot read the annotations of namespace {namespace} ({e}); only the pod's own are used"
            ));
            Annotations::new()
        }
    };
    match injector.inject(&object, &annotations) {
        Ok(injection) => {
            match &injection.outcome {
                Outcome::Injected => tracing::info!(%uid, %namespace, pod = %name, "injected"),
                Outcome::Skipped(skip) => {
                    tracing::debug!(%uid, %namespace, pod = %name, "not injected: {skip}")
                }
            }
            warnings.extend(injection.warnings);
            let patch = (!injection.patch.0.is_empty()).then_some(&injection.patch);
            response(
                &uid,
                patch.map(|p| serde_json::to_vec(p).unwrap_or_default()),
                warnings,
            )
        }
        Err(e) => {
            tracing::warn!(%uid, %namespace, pod = %name, "malformed pod: {e}");
            warnings.push(format!(
                "weft-injector: the pod is malformed at {e}; it is admitted without the Weft proxy"
            ));
            response(&uid, None, warnings)
        }
    }
}

/// Checks the review is a v1 AdmissionReview about creating a Pod, and takes it apart.
fn parse(body: &[u8]) -> Parsed {
    let mut review: Value = serde_json::from_slice(body).map_err(|e| {
        (
            String::new(),
            format!("the AdmissionReview is not JSON: {e}"),
        )
    })?;
    let uid = review
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let fail = |why: String| Err((uid.clone(), why));
    let (api_version, kind) = (str_at(&review, "/apiVersion"), str_at(&review, "/kind"));
    if (api_version, kind) != (API_VERSION, "AdmissionReview") {
        return fail(format!(
            "expected an {API_VERSION} AdmissionReview, got apiVersion {api_version:?} kind {kind:?}"
        ));
    }
    let Some(request) = review.get("request").filter(|r| r.is_object()) else {
        return fail("the AdmissionReview has no request".to_string());
    };
    if uid.is_empty() {
        return fail("the AdmissionReview's request has no uid".to_string());
    }
    let gvk = (
        str_at(request, "/kind/group"),
        str_at(request, "/kind/version"),
        str_at(request, "/kind/kind"),
    );
    if gvk != ("", "v1", "Pod") {
        return fail(format!(
            "the request is about {gvk:?} (group, version, kind), not a v1 Pod"
        ));
    }
    let operation = str_at(request, "/operation");
    if operation != "CREATE" {
        return fail(format!("the request is a {operation:?}, not a CREATE"));
    }
    let sub_resource = str_at(request, "/subResource");
    if !sub_resource.is_empty() {
        return fail(format!("the request is for subresource {sub_resource:?}"));
    }
    let request_namespace = str_at(request, "/namespace").to_string();
    // The pod is most of the review: move it out rather than copy it.
    let Some(object) = review
        .pointer_mut("/request/object")
        .map(Value::take)
        .filter(Value::is_object)
    else {
        return fail("the request has no object".to_string());
    };
    let namespace = [
        request_namespace.as_str(),
        str_at(&object, "/metadata/namespace"),
    ]
    .into_iter()
    .find(|ns| !ns.is_empty())
    .unwrap_or_default()
    .to_string();
    if namespace.is_empty() {
        return fail("the request names no namespace".to_string());
    }
    let name = [
        str_at(&object, "/metadata/name"),
        str_at(&object, "/metadata/generateName"),
    ]
    .into_iter()
    .find(|n| !n.is_empty())
    .unwrap_or_default()
    .to_string();
    Ok(PodRequest {
        uid,
        namespace,
        name,
        object,
    })
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// An AdmissionReview response that allows the object, with `patch` (JSON) if any.
fn response(uid: &str, patch: Option<Vec<u8>>, warnings: Vec<String>) -> Vec<u8> {
    let mut response = json!({ "uid": uid, "allowed": true });
    if let Some(patch) = patch {
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(ByteString(patch));
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    let review = json!({
        "apiVersion": API_VERSION,
        "kind": "AdmissionReview",
        "response": response,
    });
    // A tree of strings, booleans and arrays serializes.
    serde_json::to_vec(&review).unwrap_or_default()
}
