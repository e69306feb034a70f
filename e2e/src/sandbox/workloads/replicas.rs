//! Deployments (a ReplicaSet per pod template) and ReplicaSets (a number of like pods).

use serde_json::{Value, json};

use super::*;

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

fn revision(rs: &Value) -> i64 {
    str_at(
        rs,
        &format!("/metadata/annotations/{}", REVISION.replace('/', "~1")),
    )
    .parse()
    .unwrap_or(0)
}

/// The ReplicaSet a Deployment's current template wants.
fn new_replica_set(d: &Value, hash: &str, revision: i64) -> Value {
    let name = format!("{}-{hash}", str_at(d, "/metadata/name"));
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"][HASH] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"][HASH] = json!(hash);
    let labels = template["metadata"]["labels"].clone();
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": d["metadata"]["namespace"], "labels": labels,
            "annotations": {REVISION: revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": int_at(d, "/spec/replicas", 1).to_string()},
            "ownerReferences": owner_ref(d, "Deployment")},
        "spec": {"replicas": int_at(d, "/spec/replicas", 1), "selector": selector, "template": template}})
}

pub(super) fn deployment(d: &Value, w: &World) -> Vec<Action> {
    let mut out = Vec::new();
    let want = int_at(d, "/spec/replicas", 1);
    let hash = template_hash(&d["spec"]["template"]);
    let sets = owned(w.replicasets, d);
    let current = sets
        .iter()
        .find(|rs| str_at(rs, &format!("/metadata/labels/{HASH}")) == hash)
        .copied();
    let count = |f: &str| -> i64 { sets.iter().map(|rs| int_at(rs, &format!("/status/{f}"), 0)).sum() };
    let new_name = format!("{}-{hash}", str_at(d, "/metadata/name"));
    match current {
        None => {
            let next = sets.iter().map(|rs| revision(rs)).max().unwrap_or(0) + 1;
            out.push(Action::Create(
                Resource::ReplicaSets,
                new_replica_set(d, &hash, next),
            ));
        }
        Some(rs) => {
            if int_at(rs, "/spec/replicas", 1) != want {
                out.push(Action::Scale(
                    str_at(rs, "/metadata/namespace").into(),
                    new_name.clone(),
                    want,
                ));
            }
            // The old sets go once the new one is fully available: a 100 % surge.
            if int_at(rs, "/status/availableReplicas", 0) >= want {
                for old in sets
                    .iter()
                    .filter(|o| o["metadata"]["uid"] != rs["metadata"]["uid"])
                {
                    if int_at(old, "/spec/replicas", 1) != 0 {
                        out.push(Action::Scale(
                            str_at(old, "/metadata/namespace").into(),
                            str_at(old, "/metadata/name").into(),
                            0,
                        ));
                    }
                }
            }
        }
    }
    let updated = current.map(|rs| int_at(rs, "/status/replicas", 0)).unwrap_or(0);
    let available = count("availableReplicas");
    let complete = updated >= want && count("replicas") == updated && available >= updated;
    let progressing = if complete {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet {new_name:?} has successfully progressed."),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet {new_name:?} is progressing."),
        )
    };
    let available_cond = if available >= want {
        ("MinimumReplicasAvailable", "Deployment has minimum availability.")
    } else {
        (
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let mut status = json!({
        "observedGeneration": int_at(d, "/metadata/generation", 1),
        "replicas": count("replicas"),
        "updatedReplicas": updated,
        "readyReplicas": count("readyReplicas"),
        "availableReplicas": available,
        "conditions": conditions(&d["status"], &[
            ("Available", available >= want, available_cond.0, available_cond.1.to_string()),
            ("Progressing", true, progressing.0, progressing.1),
        ], w.now),
    });
    if want > available {
        status["unavailableReplicas"] = json!(want - available);
    }
    out.extend(status_if_changed(Resource::Deployments, d, status));
    out
}

pub(super) fn replica_set(rs: &Value, w: &World) -> Vec<Action> {
    let mut out = Vec::new();
    let want = int_at(rs, "/spec/replicas", 1).max(0) as usize;
    let ns = str_at(rs, "/metadata/namespace");
    let mut pods: Vec<&Value> = owned(w.pods, rs).into_iter().filter(|p| !deleting(p)).collect();
    if pods.len() < want {
        let name = str_at(rs, "/metadata/name");
        for _ in pods.len()..want {
            out.push(Action::Create(
                Resource::Pods,
                pod_from(
                    &rs["spec"]["template"],
                    ns,
                    None,
                    &format!("{name}-"),
                    &[],
                    owner_ref(rs, "ReplicaSet"),
                ),
            ));
        }
    } else if pods.len() > want {
        // Unready pods go first, then the newest, as the ReplicaSet controller ranks them.
        pods.sort_by_key(|p| {
            (
                ready(p),
                std::cmp::Reverse(str_at(p, "/metadata/creationTimestamp").to_string()),
            )
        });
        for p in &pods[..pods.len() - want] {
            out.push(Action::Delete(
                Resource::Pods,
                ns.into(),
                str_at(p, "/metadata/name").into(),
            ));
        }
    }
    let ready_count = pods.iter().filter(|p| ready(p)).count();
    let status = json!({
        "observedGeneration": int_at(rs, "/metadata/generation", 1),
        "replicas": pods.len(),
        "fullyLabeledReplicas": pods.len(),
        "readyReplicas": ready_count,
        "availableReplicas": ready_count,
    });
    out.extend(status_if_changed(Resource::ReplicaSets, rs, status));
    out
}
