//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! Each manager owns a set of leaf paths. An apply by manager M sets the fields in its applied
//! configuration, removes fields M applied before but no longer applies (unless another manager
//! owns them), and conflicts (409) when it would change a field another manager owns, unless
//! forced, in which case ownership moves to M. Other writes (create, update, patch) give their
//! manager the fields they changed. Lists and scalars are leaves; maps are walked.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, Cause};

type Path = Vec<String>;

const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Leaf paths of an object's user-owned fields.
pub fn leaf_paths(obj: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    if let Some(o) = obj.as_object() {
        for (k, v) in o {
            if matches!(k.as_str(), "apiVersion" | "kind" | "status") {
                continue;
            }
            if k == "metadata" {
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if !SERVER_META.contains(&mk.as_str()) {
                        walk(mv, vec!["metadata".into(), mk.clone()], &mut out);
                    }
                }
                continue;
            }
            walk(v, vec![k.clone()], &mut out);
        }
    }
    out
}

fn walk(v: &Value, path: Path, out: &mut BTreeSet<Path>) {
    match v.as_object() {
        Some(m) if !m.is_empty() => {
            for (k, child) in m {
                let mut p = path.clone();
                p.push(k.clone());
                walk(child, p, out);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

fn get<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

fn set(obj: &mut Value, path: &[String], value: Value) {
    let mut cur = obj;
    for k in &path[..path.len() - 1] {
        if !cur[k.as_str()].is_object() {
            cur[k.as_str()] = json!({});
        }
        cur = &mut cur[k.as_str()];
    }
    cur[path[path.len() - 1].as_str()] = value;
}

fn remove(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// `fieldsV1` encoding of a path set.
pub fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            let entry = cur.entry(format!("f:{k}")).or_insert_with(|| json!({}));
            cur = entry.as_object_mut().expect("fieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

/// Decodes `fieldsV1` into leaf paths.
pub fn from_fields_v1(v: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    fn rec(v: &Value, path: Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = v
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !path.is_empty() {
                out.insert(path);
            }
            return;
        }
        for (k, child) in children {
            let mut p = path.clone();
            p.push(k[2..].to_string());
            rec(child, p, out);
        }
    }
    rec(v, Vec::new(), &mut out);
    out
}

#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    fields: BTreeSet<Path>,
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().into(),
            operation: e["operation"].as_str().unwrap_or("Update").into(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
            time: e["time"].as_str().unwrap_or_default().into(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn write_entries(obj: &mut Value, list: &[Entry]) {
    let v: Vec<Value> = list
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            json!({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version, "time": e.time,
                "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.fields)})
        })
        .collect();
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["managedFields"] = json!(v);
}

fn dotted(p: &[String]) -> String {
    format!(".{}", p.join("."))
}

/// Records a non-apply write by `manager`: it now owns the fields it set or changed.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, api_version: &str, time: &str) {
    let mut list = old.map(entries).unwrap_or_default();
    let new_paths = leaf_paths(new);
    let changed: BTreeSet<Path> = new_paths
        .iter()
        .filter(|p| old.is_none_or(|o| get(o, p) != get(new, p)))
        .cloned()
        .collect();
    for e in &mut list {
        e.fields.retain(|p| new_paths.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        match list
            .iter_mut()
            .find(|e| e.manager == manager && e.operation == "Update")
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = time.into();
            }
            None => list.push(Entry {
                manager: manager.into(),
                operation: "Update".into(),
                api_version: api_version.into(),
                time: time.into(),
                fields: changed,
            }),
        }
    }
    write_entries(new, &list);
}

/// Server-side apply of `applied` by `manager` onto `current` (absent: create).
pub fn apply(
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    time: &str,
) -> Result<Value, ApiError> {
    let mut list = current.map(entries).unwrap_or_default();
    let base = current.cloned().unwrap_or_else(|| json!({}));
    let applied_paths = leaf_paths(applied);
    let mut conflicts = Vec::new();
    for e in list.iter().filter(|e| e.manager != manager) {
        for p in applied_paths.intersection(&e.fields) {
            if get(&base, p) != get(applied, p) {
                conflicts.push((e.manager.clone(), e.api_version.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let causes: Vec<Cause> = conflicts
            .iter()
            .map(|(m, v, p)| {
                Cause::new(
                    "FieldManagerConflict",
                    dotted(p),
                    format!("conflict with \"{m}\" using {v}"),
                )
            })
            .collect();
        let detail: Vec<String> = conflicts
            .iter()
            .map(|(m, v, p)| format!("conflict with \"{m}\" using {v}: {}", dotted(p)))
            .collect();
        let n = conflicts.len();
        let mut err = ApiError::conflict_because("", "", "");
        err.message = format!(
            "Apply failed with {n} conflict{}: {}",
            if n == 1 { "" } else { "s" },
            detail.join("\n")
        );
        err.details = None;
        err.causes = causes;
        return Err(err);
    }
    let previously: BTreeSet<Path> = list
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let owned_by_others: BTreeSet<Path> = list
        .iter()
        .filter(|e| e.manager != manager)
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut result = base;
    for p in previously.difference(&applied_paths) {
        if !owned_by_others.contains(p) {
            remove(&mut result, p);
        }
    }
    for p in &applied_paths {
        if let Some(v) = get(applied, p) {
            set(&mut result, p, v.clone());
        }
    }
    for key in ["apiVersion", "kind"] {
        if let Some(v) = applied.get(key) {
            result[key] = v.clone();
        }
    }
    for f in ["name", "namespace", "generateName"] {
        if let Some(v) = applied.pointer(&format!("/metadata/{f}")) {
            set(&mut result, &["metadata".to_string(), f.to_string()], v.clone());
        }
    }
    // Forced conflicts move ownership; equal values stay shared, as in Kubernetes.
    let taken: BTreeSet<&Path> = conflicts.iter().map(|(_, _, p)| p).collect();
    for e in &mut list {
        if e.manager != manager {
            e.fields.retain(|p| !taken.contains(p));
        }
    }
    list.retain(|e| !(e.manager == manager && e.operation == "Apply"));
    list.push(Entry {
        manager: manager.into(),
        operation: "Apply".into(),
        api_version: api_version.into(),
        time: time.into(),
        fields: applied_paths,
    });
    write_entries(&mut result, &list);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trips() {
        let obj = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"replicas": 1, "ports": [1, 2]}});
        let paths = leaf_paths(&obj);
        let f = to_fields_v1(&paths);
        assert_eq!(
            f,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:ports": {}, "f:replicas": {}}})
        );
        assert_eq!(from_fields_v1(&f), paths);
    }

    #[test]
    fn apply_conflicts_with_another_owner_unless_forced() {
        let created = apply(
            None,
            &json!({"spec": {"holder": "a", "ttl": 10}}),
            "mgr-a",
            false,
            "v1",
            "t",
        )
        .expect("create");
        assert_eq!(created["spec"], json!({"holder": "a", "ttl": 10}));
        let err = apply(
            Some(&created),
            &json!({"spec": {"holder": "b"}}),
            "mgr-b",
            false,
            "v1",
            "t",
        )
        .expect_err("conflict");
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"mgr-a\" using v1: .spec.holder"
        );
        assert_eq!(err.causes[0].reason, "FieldManagerConflict");
        // Same value: shared ownership, no conflict.
        assert!(
            apply(
                Some(&created),
                &json!({"spec": {"holder": "a"}}),
                "mgr-b",
                false,
                "v1",
                "t"
            )
            .is_ok()
        );
        let forced = apply(
            Some(&created),
            &json!({"spec": {"holder": "b"}}),
            "mgr-b",
            true,
            "v1",
            "t",
        )
        .expect("forced");
        assert_eq!(forced["spec"], json!({"holder": "b", "ttl": 10}));
        let owners: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .expect("mf")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(owners, vec!["mgr-a", "mgr-b"]);
        assert!(
            apply(
                Some(&forced),
                &json!({"spec": {"holder": "a"}}),
                "mgr-a",
                false,
                "v1",
                "t"
            )
            .is_err(),
            "ownership moved"
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_others_own_them() {
        let v1 = apply(None, &json!({"spec": {"a": 1, "b": 2}}), "m", false, "v1", "t").expect("apply");
        let v2 = apply(Some(&v1), &json!({"spec": {"a": 1}}), "m", false, "v1", "t").expect("apply");
        assert_eq!(v2["spec"], json!({"a": 1}));
        let mut v3 = v2.clone();
        v3["spec"]["c"] = json!(3);
        record_update(Some(&v2), &mut v3, "kubectl-edit", "v1", "t");
        let v4 = apply(
            Some(&v3),
            &json!({"spec": {"a": 1, "c": 3}}),
            "m",
            false,
            "v1",
            "t",
        )
        .expect("shared");
        let v5 = apply(Some(&v4), &json!({"spec": {"a": 1}}), "m", false, "v1", "t").expect("apply");
        assert_eq!(
            v5["spec"],
            json!({"a": 1, "c": 3}),
            "c is still owned by kubectl-edit"
        );
    }

    #[test]
    fn updates_take_ownership_of_what_they_change() {
        let applied = apply(None, &json!({"spec": {"x": 1}}), "ssa", false, "v1", "t").expect("apply");
        let mut updated = applied.clone();
        updated["spec"]["x"] = json!(2);
        record_update(Some(&applied), &mut updated, "editor", "v1", "t");
        assert!(
            apply(
                Some(&updated),
                &json!({"spec": {"x": 3}}),
                "ssa",
                false,
                "v1",
                "t"
            )
            .is_err(),
            "editor owns x now"
        );
    }
}
