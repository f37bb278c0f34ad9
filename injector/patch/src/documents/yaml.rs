//! Applying a patch to a YAML document without reordering its keys: the patch is applied to
//! the JSON form with json-patch (the reference), mirrored on the YAML form, and the two are
//! compared, so the YAML written out is exactly the patched document.

use json_patch::{Patch, PatchOperation, jsonptr::Pointer};
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

/// Applies `patch` to the sub-document at `at` of both forms of a document.
pub(super) fn apply(
    yaml: &mut Yaml,
    json: &mut Value,
    at: &str,
    patch: &Patch,
) -> Result<(), String> {
    if patch.0.is_empty() {
        return Ok(());
    }
    let target = json
        .pointer_mut(at)
        .ok_or_else(|| format!("internal: {at} is gone"))?;
    json_patch::patch(target, &patch.0).map_err(|e| format!("the patch does not apply: {e}"))?;
    let root = Pointer::parse(at).map_err(|e| format!("internal: {at}: {e}"))?;
    let mut node = &mut *yaml;
    for token in root.tokens() {
        node = child(node, token.decoded().as_ref())?;
    }
    for op in &patch.0 {
        mirror(node, op)?;
    }
    match serde_json::to_value(&*yaml) {
        Ok(back) if back == *json => Ok(()),
        _ => Err("internal: the YAML and JSON forms differ after patching".to_string()),
    }
}

/// Applies one `add` or `remove` to the YAML form.
fn mirror(root: &mut Yaml, op: &PatchOperation) -> Result<(), String> {
    let path = op.path();
    let Some((parent_path, last)) = path.split_back() else {
        return Err("internal: an operation on the whole document".to_string());
    };
    let mut parent = root;
    for token in parent_path.tokens() {
        parent = child(parent, token.decoded().as_ref())?;
    }
    let key = last.decoded();
    match (op, parent) {
        (PatchOperation::Add(add), Yaml::Mapping(map)) => {
            let value = serde_yaml_ng::to_value(&add.value).map_err(|e| e.to_string())?;
            map.insert(Yaml::String(key.to_string()), value);
        }
        (PatchOperation::Add(add), Yaml::Sequence(items)) => {
            let value = serde_yaml_ng::to_value(&add.value).map_err(|e| e.to_string())?;
            match key.as_ref() {
                "-" => items.push(value),
                index => {
                    let i = index_in(index, items.len() + 1)?;
                    items.insert(i, value);
                }
            }
        }
        (PatchOperation::Remove(_), Yaml::Mapping(map)) => {
            map.shift_remove(key.as_ref());
        }
        (PatchOperation::Remove(_), Yaml::Sequence(items)) => {
            let i = index_in(key.as_ref(), items.len())?;
            items.remove(i);
        }
        _ => return Err(format!("internal: cannot mirror {op:?}")),
    }
    Ok(())
}

fn child<'a>(node: &'a mut Yaml, token: &str) -> Result<&'a mut Yaml, String> {
    let missing = || format!("internal: no {token:?} to patch");
    match node {
        Yaml::Mapping(map) => map.get_mut(token).ok_or_else(missing),
        Yaml::Sequence(items) => {
            let i = index_in(token, items.len())?;
            items.get_mut(i).ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

fn index_in(token: &str, len: usize) -> Result<usize, String> {
    token
        .parse::<usize>()
        .ok()
        .filter(|i| *i < len)
        .ok_or_else(|| format!("internal: index {token} out of range"))
}
