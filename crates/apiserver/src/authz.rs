//! Authorization of resource requests: Kubernetes RBAC over the stored roles and bindings, and
//! subsea's per-cluster rule for broker tokens.

use std::collections::HashMap;

use hyper::Method;
use serde_json::Value;
use subsea_rbac::{Attributes, RoleSource, User};
use subsea_store::registry::keys;
use subsea_store::{ApiError, Store};

use crate::route::ResourcePath;

const RBAC: &str = "rbac.authorization.k8s.io";

/// Annotation on a service account that makes its tokens cluster-scoped broker credentials:
/// they may only write objects labelled with this cluster ID.
pub const CLUSTER_ID_ANNOTATION: &str = "subsea.io/cluster-id";
/// The label Submariner puts on every object a cluster syncs to the broker.
pub const CLUSTER_ID_LABEL: &str = "submariner-io/clusterID";

/// The RBAC verb of a request.
pub fn verb(method: &Method, path: &ResourcePath, query: &HashMap<String, String>) -> &'static str {
    let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    match (method, path.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

/// The authorization attributes of a resource request.
pub fn attributes(method: &Method, path: &ResourcePath, query: &HashMap<String, String>) -> Attributes {
    Attributes {
        verb: verb(method, path, query).to_string(),
        api_group: path.group.clone(),
        resource: path.plural.clone(),
        subresource: path.sub.clone().unwrap_or_default(),
        namespace: path.namespace.clone().unwrap_or_default(),
        name: path.name.clone().unwrap_or_default(),
    }
}

struct StoredRoles<'a>(&'a Store);

impl RoleSource for StoredRoles<'_> {
    fn role(&self, ns: &str, name: &str) -> Option<Value> {
        self.0
            .get(&format!("{RBAC}/roles"), ns, name)
            .map(|r| (*r).clone())
    }
    fn cluster_role(&self, name: &str) -> Option<Value> {
        self.0
            .get(&format!("{RBAC}/clusterroles"), "", name)
            .map(|r| (*r).clone())
    }
}

/// Whether RBAC allows the request.
pub fn allowed(store: &Store, user: &User, a: &Attributes) -> bool {
    let (rbs, crbs) = bindings(store, &a.namespace);
    subsea_rbac::authorize(user, a, &rbs, &crbs, &StoredRoles(store))
}

fn bindings(store: &Store, namespace: &str) -> (Vec<Value>, Vec<Value>) {
    let rbs = if namespace.is_empty() {
        Vec::new()
    } else {
        store
            .objects(&format!("{RBAC}/rolebindings"), Some(namespace))
            .iter()
            .map(|b| (**b).clone())
            .collect()
    };
    let crbs = store
        .objects(&format!("{RBAC}/clusterrolebindings"), None)
        .iter()
        .map(|b| (**b).clone())
        .collect();
    (rbs, crbs)
}

/// Kubernetes' escalation prevention for a write of an RBAC object, run inside the store lock
/// on the exact object being written (so a concurrent change of the caller's own roles cannot
/// slip between check and write): a Role/ClusterRole may only carry rules the caller holds
/// unless it may `escalate`; a binding needs `bind` on its role or every rule of it; a binding's
/// `roleRef` never changes.
pub fn check_rbac_write(
    store: &Store,
    user: &User,
    plural: &str,
    ns: &str,
    current: Option<&Value>,
    new: &Value,
) -> Result<(), ApiError> {
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    let binding = matches!(plural, "rolebindings" | "clusterrolebindings");
    if !binding && !matches!(plural, "roles" | "clusterroles") {
        return Ok(());
    }
    if binding {
        check_role_ref(plural, name, current, new)?;
    }
    if user.groups.iter().any(|g| g == "system:masters") {
        return Ok(());
    }
    let (rbs, crbs) = bindings(store, ns);
    let roles = StoredRoles(store);
    let (permit, wanted) = if binding {
        let a = subsea_rbac::escalation::bind_attributes(new, ns);
        let wanted = match new["roleRef"]["kind"].as_str() {
            Some("Role") => roles.role(ns, &a.name),
            _ => roles.cluster_role(&a.name),
        };
        (
            a,
            wanted
                .map(|r| subsea_rbac::escalation::rules_in(&r))
                .unwrap_or_default(),
        )
    } else {
        let kind = if plural == "roles" { "Role" } else { "ClusterRole" };
        let a = subsea_rbac::escalation::escalate_attributes(kind, ns, name);
        (a, subsea_rbac::escalation::rules_in(new))
    };
    if subsea_rbac::authorize(user, &permit, &rbs, &crbs, &roles) {
        return Ok(());
    }
    let held = subsea_rbac::escalation::rules_held(user, ns, &rbs, &crbs, &roles);
    let missing = subsea_rbac::escalation::uncovered(&held, &wanted);
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::forbidden(subsea_rbac::escalation::escalation_message(
        plural, name, user, &missing,
    )))
}

/// A binding's `roleRef` is immutable, and a ClusterRoleBinding can only refer to a ClusterRole.
fn check_role_ref(plural: &str, name: &str, current: Option<&Value>, new: &Value) -> Result<(), ApiError> {
    let kind = if plural == "rolebindings" {
        "RoleBinding"
    } else {
        "ClusterRoleBinding"
    };
    let role_ref = &new["roleRef"];
    let invalid = |cause| ApiError::invalid(kind, RBAC, name, vec![cause]);
    if let Some(cur) = current {
        if cur["roleRef"] != *role_ref {
            return Err(invalid(subsea_store::error::Cause::invalid(
                "roleRef",
                role_ref,
                "cannot change roleRef",
            )));
        }
    }
    let ref_kind = role_ref["kind"].as_str().unwrap_or_default();
    let supported: &[&str] = if plural == "rolebindings" {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !supported.contains(&ref_kind) {
        let list = supported
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(invalid(subsea_store::error::Cause::new(
            "FieldValueNotSupported",
            "roleRef.kind",
            format!("Unsupported value: {ref_kind:?}: supported values: {list}"),
        )));
    }
    if role_ref["name"].as_str().unwrap_or_default().is_empty() {
        return Err(invalid(subsea_store::error::Cause::required("roleRef.name")));
    }
    Ok(())
}

/// 403 with Kubernetes' message.
pub fn forbidden(user: &User, a: &Attributes) -> ApiError {
    ApiError::forbidden(subsea_rbac::forbidden_message(user, a))
}

/// The cluster ID a caller's writes are confined to, if its service account carries one.
pub fn cluster_scope(store: &Store, user: &User) -> Option<String> {
    let (ns, name) = user.as_service_account()?;
    let sa = store.get(keys::SERVICE_ACCOUNTS, ns, name)?;
    sa.pointer("/metadata/annotations")?
        .get(CLUSTER_ID_ANNOTATION)?
        .as_str()
        .map(String::from)
}

/// Fields that name the cluster an object speaks for, besides the cluster label: a scoped
/// caller must own each one that is present, or it could publish another cluster's Endpoint or
/// CIDRs under its own label.
const IDENTITY_FIELDS: &[(&str, &str)] = &[
    ("/spec/cluster_id", "spec.cluster_id"),
    (
        "/metadata/labels/multicluster.kubernetes.io~1source-cluster",
        "label multicluster.kubernetes.io/source-cluster",
    ),
    (
        "/metadata/labels/lighthouse.submariner.io~1sourceCluster",
        "label lighthouse.submariner.io/sourceCluster",
    ),
];

/// Checks the per-cluster rule for one object a scoped caller writes: it must carry the
/// caller's cluster ID label (before and after the change), and every other field naming a
/// cluster must name the caller's.
pub fn check_cluster_owned(cluster: &str, user: &User, obj: &Value, verb: &str) -> Result<(), ApiError> {
    let owner = obj
        .pointer("/metadata/labels")
        .and_then(|l| l.get(CLUSTER_ID_LABEL))
        .and_then(Value::as_str);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if owner != Some(cluster) {
        return Err(ApiError::forbidden(format!(
            "User \"{}\" may only {verb} broker objects labelled {CLUSTER_ID_LABEL}={cluster}; \"{name}\" is labelled {}",
            user.name,
            owner
                .map(|o| format!("{CLUSTER_ID_LABEL}={o}"))
                .unwrap_or_else(|| "with no cluster ID".into())
        )));
    }
    for (pointer, field) in IDENTITY_FIELDS {
        match obj.pointer(pointer) {
            None => {}
            Some(Value::String(id)) if id == cluster => {}
            Some(other) => {
                return Err(ApiError::forbidden(format!(
                    "User \"{}\" may only {verb} broker objects of cluster {cluster}; \"{name}\" has {field} {}",
                    user.name,
                    subsea_store::error::render_value(other)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verbs_follow_method_and_path() {
        let mut p = ResourcePath {
            group: "".into(),
            version: "v1".into(),
            namespace: Some("ns".into()),
            plural: "secrets".into(),
            name: None,
            sub: None,
        };
        let q = HashMap::from([("watch".to_string(), "true".to_string())]);
        assert_eq!(verb(&Method::GET, &p, &HashMap::new()), "list");
        assert_eq!(verb(&Method::GET, &p, &q), "watch");
        assert_eq!(verb(&Method::DELETE, &p, &HashMap::new()), "deletecollection");
        p.name = Some("s".into());
        assert_eq!(verb(&Method::GET, &p, &HashMap::new()), "get");
        assert_eq!(verb(&Method::PATCH, &p, &HashMap::new()), "patch");
    }

    #[test]
    fn scoped_callers_write_only_their_own_objects() {
        let user = User::service_account("broker", "cluster-c1");
        let mine = json!({"metadata": {"name": "a", "labels": {CLUSTER_ID_LABEL: "c1"}}});
        let theirs = json!({"metadata": {"name": "b", "labels": {CLUSTER_ID_LABEL: "c2"}}});
        let unlabelled = json!({"metadata": {"name": "c"}});
        assert!(check_cluster_owned("c1", &user, &mine, "create").is_ok());
        let err = check_cluster_owned("c1", &user, &theirs, "delete").expect_err("other cluster");
        assert_eq!(err.code, 403);
        assert!(
            err.message.contains("submariner-io/clusterID=c2"),
            "{}",
            err.message
        );
        assert!(check_cluster_owned("c1", &user, &unlabelled, "update").is_err());
        let impostor = json!({"metadata": {"name": "d", "labels": {CLUSTER_ID_LABEL: "c1"}},
            "spec": {"cluster_id": "c2"}});
        let err = check_cluster_owned("c1", &user, &impostor, "create").expect_err("spec names c2");
        assert!(err.message.contains("spec.cluster_id \"c2\""), "{}", err.message);
        let own = json!({"metadata": {"name": "e", "labels": {CLUSTER_ID_LABEL: "c1",
            "multicluster.kubernetes.io/source-cluster": "c1"}}, "spec": {"cluster_id": "c1"}});
        assert!(check_cluster_owned("c1", &user, &own, "create").is_ok());
        let slice = json!({"metadata": {"name": "f", "labels": {CLUSTER_ID_LABEL: "c1",
            "multicluster.kubernetes.io/source-cluster": "c2"}}});
        assert!(check_cluster_owned("c1", &user, &slice, "create").is_err());
    }
}
