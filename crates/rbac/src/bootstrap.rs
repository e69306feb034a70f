//! The default ClusterRoles every Kubernetes cluster has (`cluster-admin`, `admin`, `edit`,
//! `view`) and the `cluster-admin` binding of `system:masters`, so that manifests and users that
//! bind them work here as on any cluster. The rules follow kube-apiserver's bootstrap policy for
//! the resources this server serves.

use serde_json::{Value, json};

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];

/// Namespaced resources anyone with `view` may read, by API group.
const VIEWABLE: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "configmaps",
            "endpoints",
            "events",
            "limitranges",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "pods/log",
            "pods/status",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
            "serviceaccounts",
            "services",
            "services/status",
        ],
    ),
    (
        "apps",
        &[
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
    ),
    (
        "autoscaling",
        &["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
    ),
    ("batch", &["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    ("discovery.k8s.io", &["endpointslices"]),
    (
        "networking.k8s.io",
        &["ingresses", "ingresses/status", "networkpolicies"],
    ),
    ("policy", &["poddisruptionbudgets", "poddisruptionbudgets/status"]),
];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn view_rules() -> Vec<Value> {
    let mut rules: Vec<Value> = VIEWABLE.iter().map(|(g, r)| rule(&[g], r, &READ)).collect();
    rules.push(rule(&[""], &["namespaces", "namespaces/status"], &READ));
    rules
}

fn edit_rules() -> Vec<Value> {
    let mut rules = view_rules();
    for (g, resources) in VIEWABLE {
        let writable: Vec<&str> = resources
            .iter()
            .copied()
            .filter(|r| !r.ends_with("/status") && *r != "pods/log")
            .collect();
        rules.push(rule(&[g], &writable, &WRITE));
    }
    rules.push(rule(
        &[""],
        &["secrets"],
        &[READ.as_slice(), WRITE.as_slice()].concat(),
    ));
    rules.push(rule(&[""], &["serviceaccounts"], &["impersonate"]));
    rules.push(rule(&[""], &["serviceaccounts/token"], &["create"]));
    rules
}

fn admin_rules() -> Vec<Value> {
    let mut rules = edit_rules();
    rules.push(rule(
        &[crate::RBAC_GROUP],
        &["rolebindings", "roles"],
        &[READ.as_slice(), WRITE.as_slice()].concat(),
    ));
    rules.push(rule(
        &["authorization.k8s.io"],
        &["localsubjectaccessreviews"],
        &["create"],
    ));
    rules
}

fn cluster_role(name: &str, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "rules": rules,
    })
}

/// The default ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    vec![
        cluster_role(
            "cluster-admin",
            vec![
                rule(&["*"], &["*"], &["*"]),
                json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
            ],
        ),
        cluster_role("admin", admin_rules()),
        cluster_role("edit", edit_rules()),
        cluster_role("view", view_rules()),
    ]
}

/// The default ClusterRoleBindings: `cluster-admin` for `system:masters`.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": "cluster-admin",
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}],
    })]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalation::{rules_in, uncovered};

    #[test]
    fn each_default_role_contains_the_one_below_it() {
        let roles = cluster_roles();
        let rules = |i: usize| rules_in(&roles[i]);
        assert!(
            uncovered(&rules(0), &rules(1)).is_empty(),
            "cluster-admin ⊇ admin"
        );
        assert!(uncovered(&rules(1), &rules(2)).is_empty(), "admin ⊇ edit");
        assert!(uncovered(&rules(2), &rules(3)).is_empty(), "edit ⊇ view");
        assert!(
            !uncovered(&rules(3), &rules(2)).is_empty(),
            "view does not cover edit"
        );
        let secrets = rule(&[""], &["secrets"], &["get"]);
        assert!(
            !uncovered(&rules(3), &[secrets.clone()]).is_empty(),
            "view cannot read secrets"
        );
        assert!(uncovered(&rules(2), &[secrets]).is_empty());
    }
}
