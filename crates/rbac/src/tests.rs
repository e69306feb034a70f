use super::*;
use serde_json::json;
use std::collections::HashMap;

struct Roles(HashMap<String, Value>);

impl RoleSource for Roles {
    fn role(&self, ns: &str, name: &str) -> Option<Value> {
        self.0.get(&format!("Role/{ns}/{name}")).cloned()
    }
    fn cluster_role(&self, name: &str) -> Option<Value> {
        self.0.get(&format!("ClusterRole/{name}")).cloned()
    }
}

fn attrs(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        api_group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
    }
}

fn broker_roles() -> Roles {
    Roles(HashMap::from([
        (
            "Role/broker/cluster".to_string(),
            json!({"rules": [
                {"apiGroups": ["submariner.io"], "resources": ["clusters", "endpoints"], "verbs": ["create", "get", "list", "watch", "update", "delete"]},
                {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceimports", "serviceimports/status"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["only-this"], "verbs": ["get"]}
            ]}),
        ),
        (
            "ClusterRole/reader".to_string(),
            json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]}]}),
        ),
    ]))
}

#[test]
fn role_binding_grants_rules_in_its_namespace_only() {
    let sa = User::service_account("broker", "cluster-c1");
    let rb = json!({"metadata": {"namespace": "broker"}, "roleRef": {"kind": "Role", "name": "cluster"},
        "subjects": [{"kind": "ServiceAccount", "name": "cluster-c1"}]});
    let roles = broker_roles();
    let ok = |a: Attributes| authorize(&sa, &a, &[rb.clone()], &[], &roles);
    assert!(ok(attrs(
        "create",
        "submariner.io",
        "endpoints",
        "",
        "broker",
        ""
    )));
    assert!(
        !ok(attrs("patch", "submariner.io", "endpoints", "", "broker", "e")),
        "verb not granted"
    );
    assert!(
        !ok(attrs("create", "submariner.io", "endpoints", "", "other", "")),
        "other namespace"
    );
    assert!(
        !ok(attrs("get", "submariner.io", "gateways", "", "broker", "g")),
        "other resource"
    );
    assert!(
        ok(attrs(
            "update",
            "multicluster.x-k8s.io",
            "serviceimports",
            "status",
            "broker",
            "s"
        )),
        "subresource listed"
    );
    assert!(ok(attrs("get", "", "secrets", "", "broker", "only-this")));
    assert!(
        !ok(attrs("get", "", "secrets", "", "broker", "another")),
        "resourceNames restrict"
    );
    assert!(
        !ok(attrs("list", "", "secrets", "", "broker", "")),
        "resourceNames never match a list"
    );
    let other = User::service_account("broker", "cluster-c2");
    assert!(!authorize(
        &other,
        &attrs("create", "submariner.io", "endpoints", "", "broker", ""),
        &[rb],
        &[],
        &roles
    ));
}

#[test]
fn cluster_role_bindings_apply_everywhere_and_masters_bypass() {
    let user = User {
        name: "alice".into(),
        groups: vec!["readers".into()],
    };
    let crb = json!({"roleRef": {"kind": "ClusterRole", "name": "reader"}, "subjects": [{"kind": "Group", "name": "readers"}]});
    let roles = broker_roles();
    assert!(authorize(
        &user,
        &attrs("list", "apps", "deployments", "", "x", ""),
        &[],
        &[crb.clone()],
        &roles
    ));
    assert!(authorize(
        &user,
        &attrs("get", "", "nodes", "", "", "n1"),
        &[],
        &[crb.clone()],
        &roles
    ));
    assert!(!authorize(
        &user,
        &attrs("delete", "", "nodes", "", "", "n1"),
        &[],
        &[crb],
        &roles
    ));
    assert!(authorize(
        &User::admin(),
        &attrs("delete", "", "nodes", "", "", "n1"),
        &[],
        &[],
        &roles
    ));
}

#[test]
fn denial_message_matches_kubernetes() {
    let sa = User::service_account("broker", "cluster-c1");
    let msg = forbidden_message(
        &sa,
        &attrs("create", "submariner.io", "endpoints", "", "broker", ""),
    );
    assert_eq!(
        msg,
        "endpoints.submariner.io is forbidden: User \"system:serviceaccount:broker:cluster-c1\" cannot create resource \"endpoints\" in API group \"submariner.io\" in the namespace \"broker\""
    );
    let msg = forbidden_message(&sa, &attrs("get", "", "nodes", "", "", "n1"));
    assert_eq!(
        msg,
        "nodes \"n1\" is forbidden: User \"system:serviceaccount:broker:cluster-c1\" cannot get resource \"nodes\" in API group \"\" at the cluster scope"
    );
    assert_eq!(sa.as_service_account(), Some(("broker", "cluster-c1")));
}
