//! Kubernetes' defaulting of the workload kinds (the `SetDefaults_*` functions of apps/v1 and
//! batch/v1): what a client leaves out is filled in as kube-apiserver fills it, so readers that
//! rely on it — `kubectl rollout status` refuses a StatefulSet or DaemonSet without an update
//! strategy, `kubectl describe` prints the strategy — see what they would on a real cluster.

use serde_json::{Value, json};

/// Sets `obj[path…]` to `value` where it is absent (or null), creating the objects on the way.
fn default(obj: &mut Value, path: &[&str], value: Value) {
    let mut at = obj;
    for key in &path[..path.len() - 1] {
        if !at[*key].is_object() {
            if !at[*key].is_null() {
                return;
            }
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    let last = path[path.len() - 1];
    if at[last].is_null() {
        at[last] = value;
    }
}

/// Fills in the defaults of a workload kind; other kinds are left as they are.
pub fn apply(kind: &str, obj: &mut Value) {
    if !obj["spec"].is_object() {
        return;
    }
    match kind {
        "Deployment" => {
            default(obj, &["spec", "replicas"], json!(1));
            default(obj, &["spec", "strategy", "type"], json!("RollingUpdate"));
            if obj["spec"]["strategy"]["type"] == "RollingUpdate" {
                default(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
                    json!("25%"),
                );
                default(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxSurge"],
                    json!("25%"),
                );
            }
            default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
        }
        "ReplicaSet" => default(obj, &["spec", "replicas"], json!(1)),
        "StatefulSet" => {
            default(obj, &["spec", "replicas"], json!(1));
            default(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
            default(obj, &["spec", "updateStrategy", "type"], json!("RollingUpdate"));
            if obj["spec"]["updateStrategy"]["type"] == "RollingUpdate" {
                default(
                    obj,
                    &["spec", "updateStrategy", "rollingUpdate", "partition"],
                    json!(0),
                );
            }
            default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            for f in ["whenDeleted", "whenScaled"] {
                default(
                    obj,
                    &["spec", "persistentVolumeClaimRetentionPolicy", f],
                    json!("Retain"),
                );
            }
        }
        "DaemonSet" => {
            default(obj, &["spec", "updateStrategy", "type"], json!("RollingUpdate"));
            if obj["spec"]["updateStrategy"]["type"] == "RollingUpdate" {
                default(
                    obj,
                    &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
                    json!(1),
                );
                default(
                    obj,
                    &["spec", "updateStrategy", "rollingUpdate", "maxSurge"],
                    json!(0),
                );
            }
            default(obj, &["spec", "revisionHistoryLimit"], json!(10));
        }
        "Job" => {
            let indexed = obj["spec"]["completionMode"] == "Indexed";
            default(obj, &["spec", "completions"], json!(1));
            default(obj, &["spec", "parallelism"], json!(1));
            default(obj, &["spec", "backoffLimit"], json!(6));
            if !indexed {
                default(obj, &["spec", "completionMode"], json!("NonIndexed"));
            }
            default(obj, &["spec", "suspend"], json!(false));
        }
        "CronJob" => {
            default(obj, &["spec", "concurrencyPolicy"], json!("Allow"));
            default(obj, &["spec", "suspend"], json!(false));
            default(obj, &["spec", "successfulJobsHistoryLimit"], json!(3));
            default(obj, &["spec", "failedJobsHistoryLimit"], json!(1));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_get_kubernetes_defaults_and_keep_what_was_given() {
        let mut sts = json!({"spec": {"replicas": 3, "updateStrategy": {"type": "OnDelete"}}});
        apply("StatefulSet", &mut sts);
        assert_eq!(sts["spec"]["replicas"], 3);
        assert_eq!(sts["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
        let mut ds = json!({"spec": {}});
        apply("DaemonSet", &mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        let mut d = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply("Deployment", &mut d);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(
            (
                d["spec"]["replicas"].clone(),
                d["spec"]["progressDeadlineSeconds"].clone()
            ),
            (json!(1), json!(600))
        );
        let mut cm = json!({"spec": {}});
        apply("ConfigMap", &mut cm);
        assert_eq!(cm, json!({"spec": {}}));
        let mut odd = json!({"spec": {"strategy": "not an object"}});
        apply("Deployment", &mut odd);
        assert_eq!(
            odd["spec"]["strategy"], "not an object",
            "a malformed field is left for validation"
        );
    }
}
