//! Patch documents: JSON merge patch (RFC 7386), JSON patch (RFC 6902, with Kubernetes' `test`
//! semantics) and strategic merge patch for the built-in kinds served.

use serde_json::{Map, Value};

/// Why a patch could not be applied; the caller maps it to 400 or 422.
#[derive(Clone, Debug, PartialEq)]
pub enum PatchError {
    /// The patch document itself is malformed.
    Malformed(String),
    /// The patch is well formed but does not apply to this object.
    Failed(String),
}

/// RFC 7386 JSON merge patch.
pub use json_patch::merge;

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn pointer_parts(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path.strip_prefix('/').ok_or_else(|| {
        PatchError::Malformed(format!("invalid JSON pointer {path:?}: must start with '/'"))
    })?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, parts: &[String], path: &str) -> Result<&'a mut Value, PatchError> {
    let mut cur = doc;
    for p in &parts[..parts.len().saturating_sub(1)] {
        cur = match cur {
            Value::Object(m) => m.get_mut(p),
            Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError::Failed(format!("doc is missing path: \"{path}\": missing value")))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let parts = pointer_parts(path)?;
    let Some(last) = parts.last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, &parts, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                index(last, a.len() + 1, path)?
            };
            a.insert(idx, value);
        }
        _ => {
            return Err(PatchError::Failed(format!(
                "doc is missing path: \"{path}\": missing value"
            )));
        }
    }
    Ok(())
}

fn index(token: &str, bound: usize, path: &str) -> Result<usize, PatchError> {
    token.parse::<usize>().ok().filter(|i| *i < bound).ok_or_else(|| {
        PatchError::Failed(format!(
            "unable to access invalid index: {token} at path {path:?}"
        ))
    })
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let parts = pointer_parts(path)?;
    let Some(last) = parts.last() else {
        return Err(PatchError::Failed("cannot remove the whole document".into()));
    };
    let missing = || PatchError::Failed(format!("Unable to remove nonexistent key: {last}: missing value"));
    match parent_mut(doc, &parts, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = index(last, a.len(), path)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

fn get<'a>(doc: &'a Value, path: &str) -> Result<Option<&'a Value>, PatchError> {
    let parts = pointer_parts(path)?;
    Ok(parts.iter().try_fold(doc, |cur, p| match cur {
        Value::Object(m) => m.get(p),
        Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    }))
}

/// RFC 6902 JSON patch. A `test` of `null` against a missing path passes, as in the
/// evanphx/json-patch library Kubernetes uses (kube-runtime's finalizer helper depends on it).
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| PatchError::Malformed("a JSON patch must be an array of operations".into()))?;
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| PatchError::Malformed(format!("operation {name:?} has no \"path\"")))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError::Malformed(format!("operation {name:?} has no \"value\"")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| PatchError::Malformed(format!("operation {name:?} has no \"from\"")))
        };
        match name {
            "add" => add(doc, path, value()?)?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                let v = value()?;
                if get(doc, path)?.is_none() {
                    return Err(PatchError::Failed(format!(
                        "replace operation does not apply: doc is missing key: {path}: missing value"
                    )));
                }
                remove(doc, path).ok();
                add(doc, path, v)?;
            }
            "move" => {
                let v = remove(doc, from()?)?;
                add(doc, path, v)?;
            }
            "copy" => {
                let v = get(doc, from()?)?.cloned().ok_or_else(|| {
                    PatchError::Failed(format!("copy from a missing path: {}", from().unwrap_or("")))
                })?;
                add(doc, path, v)?;
            }
            "test" => {
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                let got = get(doc, path)?.cloned().unwrap_or(Value::Null);
                if got != want {
                    return Err(PatchError::Failed(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
            other => return Err(PatchError::Malformed(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(())
}

/// How a list field merges under a strategic merge patch.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ListStrategy<'a> {
    /// Items are objects matched by this key.
    Key(&'a str),
    /// Items are primitives kept as a set.
    Set,
    /// The patch replaces the list.
    Replace,
}

/// Merge keys of the list fields of the built-in kinds (from the Kubernetes Go struct tags).
fn list_strategy(field: &str) -> ListStrategy<'static> {
    match field {
        "ports" => ListStrategy::Key("port"),
        "ownerReferences" => ListStrategy::Key("uid"),
        "finalizers" => ListStrategy::Set,
        "containers" | "initContainers" | "env" | "volumes" | "volumeMounts" => ListStrategy::Key("name"),
        "conditions" => ListStrategy::Key("type"),
        "tolerations" => ListStrategy::Replace,
        _ => ListStrategy::Replace,
    }
}

/// Strategic merge patch for built-in kinds: like a merge patch, but lists listed in
/// [`list_strategy`] merge by key, and the `$patch`, `$retainKeys`, `$setElementOrder/…` and
/// `$deleteFromPrimitiveList/…` directives are honoured.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch.clone();
        strip_directives(&mut replaced);
        *target = replaced;
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(gone)) = (t.get_mut(field), v.as_array()) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Array(items) => {
                let merged = merge_list(t.remove(k), items, list_strategy(k))?;
                t.insert(k.clone(), merged);
            }
            Value::Object(o) if o.get("$patch").and_then(Value::as_str) == Some("delete") => {
                t.remove(k);
            }
            _ => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v)?,
        }
    }
    Ok(())
}

fn merge_list(current: Option<Value>, items: &[Value], strategy: ListStrategy) -> Result<Value, PatchError> {
    let mut list = match current {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    match strategy {
        ListStrategy::Replace => {
            let mut out = Value::Array(items.to_vec());
            strip_directives(&mut out);
            return Ok(out);
        }
        ListStrategy::Set => {
            for item in items {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        }
        ListStrategy::Key(key) => {
            if items
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                let mut out = Value::Array(
                    items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .cloned()
                        .collect(),
                );
                strip_directives(&mut out);
                return Ok(out);
            }
            for item in items {
                let id = item.get(key).cloned().ok_or_else(|| {
                    PatchError::Failed(format!("map: {item} does not contain declared merge key: {key}"))
                })?;
                let pos = list.iter().position(|x| x.get(key) == Some(&id));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        list.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => strategic_merge(&mut list[i], item)?,
                    (None, false) => {
                        let mut fresh = item.clone();
                        strip_directives(&mut fresh);
                        list.push(fresh);
                    }
                }
            }
        }
    }
    Ok(Value::Array(list))
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_removes_nulls_and_replaces_lists() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn finalizer_helper_patch_applies_to_object_without_finalizers() {
        let mut doc = json!({"metadata": {"name": "x"}});
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}
        ]);
        json_patch(&mut doc, &ops).expect("applies");
        assert_eq!(doc["metadata"]["finalizers"], json!(["f"]));
        let rm = json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "f"},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]);
        json_patch(&mut doc, &rm).expect("applies");
        assert_eq!(doc["metadata"]["finalizers"], json!([]));
    }

    #[test]
    fn failed_test_and_bad_paths_are_errors() {
        let mut doc = json!({"a": 1});
        let e =
            json_patch(&mut doc, &json!([{"op": "test", "path": "/a", "value": 2}])).expect_err("test fails");
        assert!(matches!(e, PatchError::Failed(_)));
        let e = json_patch(&mut doc, &json!([{"op": "remove", "path": "/zz"}])).expect_err("missing");
        assert!(matches!(e, PatchError::Failed(_)));
        let e = json_patch(&mut doc, &json!({"op": "add"})).expect_err("not array");
        assert!(matches!(e, PatchError::Malformed(_)));
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn json_patch_replace_and_append() {
        let mut doc = json!({"data": {"k": "v"}, "l": [1]});
        json_patch(
            &mut doc,
            &json!([
                {"op": "replace", "path": "/data", "value": {"n": "m"}},
                {"op": "add", "path": "/l/-", "value": 2},
                {"op": "copy", "from": "/l/0", "path": "/first"},
                {"op": "move", "from": "/first", "path": "/moved"}
            ]),
        )
        .expect("applies");
        assert_eq!(doc, json!({"data": {"n": "m"}, "l": [1, 2], "moved": 1}));
    }

    #[test]
    fn strategic_merge_service_ports_by_port() {
        let mut svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}], "selector": {"app": "a"}}});
        strategic_merge(
            &mut svc,
            &json!({"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}],
            "ports": [{"port": 443, "name": "https"}]}}),
        )
        .expect("applies");
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 80, "name": "http"}, {"port": 443, "name": "https"}])
        );
        strategic_merge(
            &mut svc,
            &json!({"spec": {"ports": [{"$patch": "delete", "port": 80}]}}),
        )
        .expect("applies");
        assert_eq!(svc["spec"]["ports"], json!([{"port": 443, "name": "https"}]));
    }

    #[test]
    fn strategic_merge_finalizers_as_set_and_delete_from_primitive_list() {
        let mut obj = json!({"metadata": {"finalizers": ["a"]}});
        strategic_merge(&mut obj, &json!({"metadata": {"finalizers": ["a", "b"]}})).expect("applies");
        assert_eq!(obj["metadata"]["finalizers"], json!(["a", "b"]));
        strategic_merge(
            &mut obj,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .expect("applies");
        assert_eq!(obj["metadata"]["finalizers"], json!(["b"]));
    }
}
