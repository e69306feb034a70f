//! Authorization of resource requests: Kubernetes RBAC over the stored roles and bindings, and
//! subsea's per-cluster rule for broker tokens.

use std::collections::HashMap;

use hyper::Method;
use serde_json::Value;
use subsea_rbac::{Attributes, RoleSource, User};
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
    let rbs: Vec<Value> = if a.namespace.is_empty() {
        Vec::new()
    } else {
        store
            .objects(&format!("{RBAC}/rolebindings"), Some(&a.namespace))
            .iter()
            .map(|b| (**b).clone())
            .collect()
    };
    let crbs: Vec<Value> = store
        .objects(&format!("{RBAC}/clusterrolebindings"), None)
        .iter()
        .map(|b| (**b).clone())
        .collect();
    subsea_rbac::authorize(user, a, &rbs, &crbs, &StoredRoles(store))
}

/// 403 with Kubernetes' message.
pub fn forbidden(user: &User, a: &Attributes) -> ApiError {
    ApiError::forbidden(subsea_rbac::forbidden_message(user, a))
}

/// The cluster ID a caller's writes are confined to, if its service account carries one.
pub fn cluster_scope(store: &Store, user: &User) -> Option<String> {
    let (ns, name) = user.as_service_account()?;
    let sa = store.get("/serviceaccounts", ns, name)?;
    sa.pointer("/metadata/annotations")?
        .get(CLUSTER_ID_ANNOTATION)?
        .as_str()
        .map(String::from)
}

/// Checks the per-cluster rule for one object a scoped caller writes: it must carry the
/// caller's cluster ID label (before and after the change).
pub fn check_cluster_owned(cluster: &str, user: &User, obj: &Value, verb: &str) -> Result<(), ApiError> {
    let owner = obj
        .pointer("/metadata/labels")
        .and_then(|l| l.get(CLUSTER_ID_LABEL))
        .and_then(Value::as_str);
    if owner == Some(cluster) {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(ApiError::forbidden(format!(
        "User \"{}\" may only {verb} broker objects labelled {CLUSTER_ID_LABEL}={cluster}; \"{name}\" is labelled {}",
        user.name,
        owner
            .map(|o| format!("{CLUSTER_ID_LABEL}={o}"))
            .unwrap_or_else(|| "with no cluster ID".into())
    )))
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
    }
}
