//! A controller-manager stand-in for one sandbox cluster: Deployments, ReplicaSets,
//! StatefulSets and DaemonSets created with kubectl get their pods (which the kubelet stand-in
//! runs) and their status, so `kubectl rollout status`, `get -o wide` and `describe` read as on
//! a real cluster. Simplified where a sandbox does not need more: a Deployment rolls out by
//! surging its new ReplicaSet to full size before scaling the old ones to zero; a pod whose
//! process ended stays, unready, and is not replaced (as a crash-looping pod would stay);
//! no ControllerRevisions, no minReadySeconds.
//!
//! The workloads of Submariner's own components (in `submariner-operator`) are left alone: the
//! sandbox runs those components itself and registers their pods.
//!
//! What to create, delete, scale or report is [`plan`], a pure function of the objects; the
//! I/O is in [`run`].

mod replicas;
pub mod run;
mod sets;

use serde_json::{Map, Value, json};

/// The API resource an action is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    Pods,
    ReplicaSets,
    Deployments,
    StatefulSets,
    DaemonSets,
}

impl Resource {
    /// (group, version, kind, plural).
    pub fn gvk(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Self::Pods => ("", "v1", "Pod", "pods"),
            Self::ReplicaSets => ("apps", "v1", "ReplicaSet", "replicasets"),
            Self::Deployments => ("apps", "v1", "Deployment", "deployments"),
            Self::StatefulSets => ("apps", "v1", "StatefulSet", "statefulsets"),
            Self::DaemonSets => ("apps", "v1", "DaemonSet", "daemonsets"),
        }
    }
}

/// One change to make.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create an object (namespace in its metadata; a pod may have only a generateName).
    Create(Resource, Value),
    Delete(Resource, String, String),
    /// Set a ReplicaSet's `spec.replicas`.
    Scale(String, String, i64),
    /// Merge-patch the status of an object whose status differs (removed fields as null).
    Status(Resource, String, String, Value),
}

/// What the plan decides from.
pub struct World<'a> {
    pub deployments: &'a [Value],
    pub replicasets: &'a [Value],
    pub statefulsets: &'a [Value],
    pub daemonsets: &'a [Value],
    pub pods: &'a [Value],
    pub nodes: &'a [Value],
    /// RFC 3339, for conditions that change now.
    pub now: &'a str,
}

/// The namespace whose workloads the sandbox runs itself.
pub const SANDBOX_RUN: &str = "submariner-operator";

/// Every change that brings the cluster's workloads and their status in line.
pub fn plan(w: &World) -> Vec<Action> {
    let mut out = Vec::new();
    let ours = |o: &&Value| str_at(o, "/metadata/namespace") != SANDBOX_RUN && !deleting(o);
    for d in w.deployments.iter().filter(ours) {
        out.extend(replicas::deployment(d, w));
    }
    for rs in w.replicasets.iter().filter(ours) {
        out.extend(replicas::replica_set(rs, w));
    }
    for s in w.statefulsets.iter().filter(ours) {
        out.extend(sets::stateful_set(s, w));
    }
    for ds in w.daemonsets.iter().filter(ours) {
        out.extend(sets::daemon_set(ds, w));
    }
    out
}

pub(crate) fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

pub(crate) fn int_at(v: &Value, p: &str, default: i64) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(default)
}

pub(crate) fn deleting(o: &Value) -> bool {
    !str_at(o, "/metadata/deletionTimestamp").is_empty()
}

/// Whether a pod counts as ready (and, without minReadySeconds, available).
pub(crate) fn ready(pod: &Value) -> bool {
    !deleting(pod)
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// The objects of `all` that `owner` controls, by owner uid.
pub(crate) fn owned<'a>(all: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    let uid = str_at(owner, "/metadata/uid");
    all.iter()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid && r["controller"] == true))
        })
        .collect()
}

pub(crate) fn owner_ref(owner: &Value, kind: &str) -> Value {
    json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

/// A template's hash, spelled as Kubernetes spells `pod-template-hash` (its decimal digits
/// mapped into the consonant-and-digit alphabet that cannot form words).
pub(crate) fn template_hash(template: &Value) -> String {
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    for b in serde_json::to_string(template).unwrap_or_default().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|d| SAFE[usize::from(d) % SAFE.len()] as char)
        .collect()
}

/// A pod of `template` in `ns`, with extra labels, owned by `owner_refs`.
pub(crate) fn pod_from(
    template: &Value,
    ns: &str,
    name: Option<&str>,
    generate_name: &str,
    extra_labels: &[(&str, String)],
    owner_refs: Value,
) -> Value {
    let mut labels: Map<String, Value> = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), json!(v));
    }
    let mut meta = json!({"namespace": ns, "labels": labels, "ownerReferences": owner_refs});
    match name {
        Some(n) => meta["name"] = json!(n),
        None => meta["generateName"] = json!(generate_name),
    }
    if let Some(a) = template["metadata"]["annotations"].as_object() {
        meta["annotations"] = Value::Object(a.clone());
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"].clone()})
}

/// The conditions of `want` (type, status, reason, message), keeping the transition time of a
/// condition that did not change, so an unchanged status compares equal and is not rewritten.
pub(crate) fn conditions(previous: &Value, want: &[(&str, bool, &str, String)], now: &str) -> Value {
    let before = previous["conditions"].as_array().cloned().unwrap_or_default();
    let out: Vec<Value> = want
        .iter()
        .map(|(ty, ok, reason, message)| {
            let status = if *ok { "True" } else { "False" };
            let old = before.iter().find(|c| c["type"] == *ty);
            let same = |f: &str, v: &str| old.is_some_and(|c| c[f] == v);
            let transition = match old {
                Some(c) if same("status", status) => c["lastTransitionTime"].clone(),
                _ => json!(now),
            };
            let update = match old {
                Some(c) if same("status", status) && same("reason", reason) && same("message", message) => {
                    c["lastUpdateTime"].clone()
                }
                _ => json!(now),
            };
            json!({"type": ty, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": transition, "lastUpdateTime": update})
        })
        .collect();
    json!(out)
}

/// A status write if `status` differs from what `obj` has: a merge patch, so fields the new
/// status lacks are written as null (removed).
pub(crate) fn status_if_changed(resource: Resource, obj: &Value, status: Value) -> Option<Action> {
    if obj["status"] == status {
        return None;
    }
    let mut patch = status;
    if let (Some(old), Some(new)) = (obj["status"].as_object(), patch.as_object_mut()) {
        for k in old.keys() {
            new.entry(k.clone()).or_insert(Value::Null);
        }
    }
    Some(Action::Status(
        resource,
        str_at(obj, "/metadata/namespace").into(),
        str_at(obj, "/metadata/name").into(),
        patch,
    ))
}

#[cfg(test)]
mod tests;
