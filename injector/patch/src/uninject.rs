//! Taking the injection out again: the patch that removes what [`Injector::inject`] added.
//!
//! [`Injector::inject`]: crate::Injector::inject

use crate::{
    annotations::PROXY_VERSION,
    patch::{CONTAINER_NAMES, PodError, VOLUME_NAMES},
    pod::PodView,
};
use json_patch::{Patch, PatchOperation, RemoveOperation, jsonptr::PointerBuf};
use serde_json::Value;

/// The RFC 6902 patch that removes the Weft containers, volumes and `weft.dev/proxy-version`
/// from `pod` (a Pod or pod template); empty if it has none. A list or map left empty by the
/// removal is removed whole, as the injection created it. (`kubectl.kubernetes.io/
/// default-container`, set when the proxy runs as a regular container, stays: it still names
/// the app.)
pub fn uninject(pod: &Value) -> Result<Patch, PodError> {
    let view = PodView::read(pod)?;
    let mut ops = Vec::new();
    let annotations = &view.annotations;
    if annotations.contains_key(PROXY_VERSION) {
        let metadata_len = pod["metadata"].as_object().map_or(0, |m| m.len());
        if annotations.len() == 1 && metadata_len == 1 {
            // A template whose metadata the injection created.
            remove(&mut ops, &["metadata"]);
        } else if annotations.len() == 1 {
            remove(&mut ops, &["metadata", "annotations"]);
        } else {
            remove(&mut ops, &["metadata", "annotations", PROXY_VERSION]);
        }
    }
    remove_items(
        &mut ops,
        "initContainers",
        &view.init_containers,
        &CONTAINER_NAMES,
    );
    remove_items(
        &mut ops,
        "containers",
        &view.containers,
        &CONTAINER_NAMES[..1],
    );
    remove_items(&mut ops, "volumes", &view.volumes, &VOLUME_NAMES);
    Ok(Patch(ops))
}

/// Removes the items of `spec[field]` named in `ours`, last first so indices stay right.
fn remove_items(ops: &mut Vec<PatchOperation>, field: &str, names: &[String], ours: &[&str]) {
    let found: Vec<usize> = (0..names.len())
        .filter(|i| ours.contains(&names[*i].as_str()))
        .collect();
    if found.is_empty() {
        return;
    }
    // A pod's containers are never removed whole: a pod with only Weft containers keeps
    // them rather than becoming no pod at all.
    if found.len() == names.len() && field != "containers" {
        remove(ops, &["spec", field]);
        return;
    }
    for i in found.iter().rev() {
        remove(ops, &["spec", field, &i.to_string()]);
    }
}

fn remove(ops: &mut Vec<PatchOperation>, tokens: &[&str]) {
    ops.push(PatchOperation::Remove(RemoveOperation {
        path: PointerBuf::from_tokens(tokens.iter().copied()),
    }));
}
