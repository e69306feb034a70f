//! StatefulSets (ordered, named pods) and DaemonSets (one pod per eligible node).

use serde_json::{Value, json};

use super::*;

const REVISION: &str = "controller-revision-hash";

fn revision_of(pod: &Value) -> &str {
    str_at(pod, &format!("/metadata/labels/{REVISION}"))
}

pub(super) fn stateful_set(s: &Value, w: &World) -> Vec<Action> {
    let mut out = Vec::new();
    let name = str_at(s, "/metadata/name");
    let ns = str_at(s, "/metadata/namespace");
    let want = int_at(s, "/spec/replicas", 1).max(0);
    let parallel = str_at(s, "/spec/podManagementPolicy") == "Parallel";
    let partition = int_at(s, "/spec/updateStrategy/rollingUpdate/partition", 0);
    let update = format!("{name}-{}", template_hash(&s["spec"]["template"]));
    let pods: Vec<&Value> = owned(w.pods, s).into_iter().filter(|p| !deleting(p)).collect();
    let ordinal = |p: &Value| -> Option<i64> {
        str_at(p, "/metadata/name")
            .strip_prefix(&format!("{name}-"))?
            .parse()
            .ok()
    };
    let at = |i: i64| pods.iter().find(|p| ordinal(p) == Some(i)).copied();
    // Up: create missing ordinals in order, each after the one before is ready.
    let mut blocked = false;
    for i in 0..want {
        match at(i) {
            None => {
                let pod_name = format!("{name}-{i}");
                let mut pod = pod_from(
                    &s["spec"]["template"],
                    ns,
                    Some(&pod_name),
                    "",
                    &[
                        (REVISION, update.clone()),
                        ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                        ("apps.kubernetes.io/pod-index", i.to_string()),
                    ],
                    owner_ref(s, "StatefulSet"),
                );
                pod["spec"]["hostname"] = json!(pod_name);
                if let Some(svc) = s["spec"]["serviceName"].as_str().filter(|v| !v.is_empty()) {
                    pod["spec"]["subdomain"] = json!(svc);
                }
                out.push(Action::Create(Resource::Pods, pod));
                if !parallel {
                    blocked = true;
                    break;
                }
            }
            Some(p) if !ready(p) && !parallel => {
                blocked = true;
                break;
            }
            Some(_) => {}
        }
    }
    // Down: the highest ordinal beyond the size goes first, one at a time.
    let mut extra: Vec<(i64, &Value)> = pods
        .iter()
        .filter_map(|p| ordinal(p).map(|i| (i, *p)))
        .filter(|(i, _)| *i >= want)
        .collect();
    extra.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    let scaling_down = !extra.is_empty();
    for (_, p) in extra.iter().take(if parallel { extra.len() } else { 1 }) {
        out.push(Action::Delete(
            Resource::Pods,
            ns.into(),
            str_at(p, "/metadata/name").into(),
        ));
    }
    // Rolling update: the highest stale ordinal at or above the partition is replaced, once
    // every pod is ready.
    if !blocked && !scaling_down && pods.iter().all(|p| ready(p)) {
        let stale = (partition..want)
            .rev()
            .filter_map(at)
            .find(|p| revision_of(p) != update);
        if let Some(p) = stale {
            out.push(Action::Delete(
                Resource::Pods,
                ns.into(),
                str_at(p, "/metadata/name").into(),
            ));
        }
    }
    let ready_count = pods.iter().filter(|p| ready(p)).count() as i64;
    let updated = pods.iter().filter(|p| revision_of(p) == update).count() as i64;
    let previous = str_at(s, "/status/currentRevision");
    let current = if previous.is_empty() || (updated == want && ready_count == want) {
        update.clone()
    } else {
        previous.to_string()
    };
    let current_count = pods.iter().filter(|p| revision_of(p) == current).count() as i64;
    let status = json!({
        "observedGeneration": int_at(s, "/metadata/generation", 1),
        "replicas": pods.len(),
        "readyReplicas": ready_count,
        "availableReplicas": ready_count,
        "currentReplicas": current_count,
        "updatedReplicas": updated,
        "currentRevision": current,
        "updateRevision": update,
        "collisionCount": 0,
    });
    out.extend(status_if_changed(Resource::StatefulSets, s, status));
    out
}

/// Whether a node takes the DaemonSet's pods: its nodeSelector matches and every NoSchedule or
/// NoExecute taint is tolerated.
fn eligible(node: &Value, pod_spec: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    let selected = pod_spec["nodeSelector"]
        .as_object()
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels[k] == *v));
    let tolerations = pod_spec["tolerations"].as_array().cloned().unwrap_or_default();
    let tolerated = |taint: &Value| {
        tolerations.iter().any(|t| {
            let key_ok = t["key"].as_str().is_none_or(str::is_empty) && t["operator"] == "Exists"
                || t["key"] == taint["key"] && (t["operator"] == "Exists" || t["value"] == taint["value"]);
            key_ok && (t["effect"].as_str().is_none_or(str::is_empty) || t["effect"] == taint["effect"])
        })
    };
    let untainted = node["spec"]["taints"].as_array().is_none_or(|ts| {
        ts.iter()
            .filter(|t| t["effect"] == "NoSchedule" || t["effect"] == "NoExecute")
            .all(tolerated)
    });
    selected && untainted && node["spec"]["unschedulable"] != true
}

pub(super) fn daemon_set(ds: &Value, w: &World) -> Vec<Action> {
    let mut out = Vec::new();
    let name = str_at(ds, "/metadata/name");
    let ns = str_at(ds, "/metadata/namespace");
    let template = &ds["spec"]["template"];
    let hash = template_hash(template);
    let nodes: Vec<&str> = w
        .nodes
        .iter()
        .filter(|n| eligible(n, &template["spec"]))
        .map(|n| str_at(n, "/metadata/name"))
        .collect();
    let pods: Vec<&Value> = owned(w.pods, ds).into_iter().filter(|p| !deleting(p)).collect();
    let on = |node: &str| -> Vec<&Value> {
        pods.iter()
            .copied()
            .filter(|p| str_at(p, "/spec/nodeName") == node)
            .collect()
    };
    let all_available = nodes.iter().all(|n| on(n).iter().any(|p| ready(p)));
    let mut replaced = false;
    for node in &nodes {
        match on(node).first().copied() {
            None => {
                let mut pod = pod_from(
                    template,
                    ns,
                    None,
                    &format!("{name}-"),
                    &[
                        (REVISION, hash.clone()),
                        (
                            "pod-template-generation",
                            int_at(ds, "/metadata/generation", 1).to_string(),
                        ),
                    ],
                    owner_ref(ds, "DaemonSet"),
                );
                pod["spec"]["nodeName"] = json!(node);
                out.push(Action::Create(Resource::Pods, pod));
            }
            // maxUnavailable 1: one stale pod at a time, while the rest are available.
            Some(p) if revision_of(p) != hash && all_available && !replaced => {
                replaced = true;
                out.push(Action::Delete(
                    Resource::Pods,
                    ns.into(),
                    str_at(p, "/metadata/name").into(),
                ));
            }
            Some(_) => {}
        }
    }
    let misplaced: Vec<&&Value> = pods
        .iter()
        .filter(|p| !nodes.contains(&str_at(p, "/spec/nodeName")))
        .collect();
    for p in &misplaced {
        out.push(Action::Delete(
            Resource::Pods,
            ns.into(),
            str_at(p, "/metadata/name").into(),
        ));
    }
    let count =
        |f: &dyn Fn(&Value) -> bool| nodes.iter().filter(|n| on(n).iter().any(|p| f(p))).count() as i64;
    let desired = nodes.len() as i64;
    let available = count(&ready);
    let status = json!({
        "observedGeneration": int_at(ds, "/metadata/generation", 1),
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": count(&|_| true),
        "numberMisscheduled": misplaced.len(),
        "numberReady": available,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
        "updatedNumberScheduled": count(&|p| revision_of(p) == hash),
    });
    out.extend(status_if_changed(Resource::DaemonSets, ds, status));
    out
}
