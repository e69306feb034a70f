//! Authorization decisions, as pure functions over plain data.
//!
//! [`authorize`] implements Kubernetes RBAC v1 (Role, ClusterRole, RoleBinding,
//! ClusterRoleBinding) with the standard matching of verbs, API groups, resources,
//! subresources and resource names. It reads no objects itself: the caller passes the bindings
//! that may apply and a way to look roles up. No I/O.
#![deny(missing_docs)]

use serde_json::Value;

pub mod bootstrap;
pub mod escalation;

/// The API group of the RBAC types.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// User name, e.g. `system:serviceaccount:ns:name`.
    pub name: String,
    /// Groups, e.g. `system:serviceaccounts`, `system:authenticated`.
    pub groups: Vec<String>,
}

impl User {
    /// The identity of a service account token, with the groups Kubernetes gives it.
    pub fn service_account(ns: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{ns}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// The cluster administrator (member of `system:masters`, which RBAC never denies).
    pub fn admin() -> Self {
        Self {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// `(namespace, name)` when this is a service account.
    pub fn as_service_account(&self) -> Option<(&str, &str)> {
        self.name.strip_prefix("system:serviceaccount:")?.split_once(':')
    }
}

/// What a request wants to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// API group; empty for core.
    pub api_group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource, if any.
    pub subresource: String,
    /// Namespace; empty for cluster-scoped requests.
    pub namespace: String,
    /// Object name; empty for collections.
    pub name: String,
}

pub(crate) fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn has(list: &Value, want: &str) -> bool {
    strings(list).any(|s| s == "*" || s == want)
}

/// Whether one PolicyRule allows the request.
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has(&rule["verbs"], &a.verb) || !has(&rule["apiGroups"], &a.api_group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource_ok = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (a.subresource.is_empty() && r == a.resource)
            || (!a.subresource.is_empty() && r == format!("*/{}", a.subresource))
            || (!a.subresource.is_empty() && r == format!("{}/*", a.resource))
    });
    if !resource_ok {
        return false;
    }
    let names: Vec<&str> = strings(&rule["resourceNames"]).collect();
    names.is_empty() || (!a.name.is_empty() && names.contains(&a.name.as_str()))
}

/// Whether a binding's subjects include the user. `binding_ns` defaults a ServiceAccount
/// subject's namespace.
pub fn subject_matches(binding: &Value, binding_ns: &str, user: &User) -> bool {
    strings_objects(&binding["subjects"]).any(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str() {
            Some("User") => name == user.name,
            Some("Group") => user.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let ns = s["namespace"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(binding_ns);
                user.name == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

pub(crate) fn strings_objects(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// The roles a decision may consult.
pub trait RoleSource {
    /// A `Role` in a namespace.
    fn role(&self, ns: &str, name: &str) -> Option<Value>;
    /// A `ClusterRole`.
    fn cluster_role(&self, name: &str) -> Option<Value>;
}

/// Decides a request. `role_bindings` are the RoleBindings of the request's namespace;
/// `cluster_role_bindings` all ClusterRoleBindings.
pub fn authorize(
    user: &User,
    a: &Attributes,
    role_bindings: &[Value],
    cluster_role_bindings: &[Value],
    roles: &dyn RoleSource,
) -> bool {
    if user.groups.iter().any(|g| g == "system:masters") {
        return true;
    }
    let allows = |binding: &Value, ns: &str| {
        rules_of_binding(binding, ns, roles)
            .iter()
            .any(|rule| rule_allows(rule, a))
    };
    for crb in cluster_role_bindings {
        if subject_matches(crb, "", user) && crb["roleRef"]["kind"] == "ClusterRole" && allows(crb, "") {
            return true;
        }
    }
    if a.namespace.is_empty() {
        return false;
    }
    role_bindings.iter().any(|rb| {
        let ns = rb["metadata"]["namespace"].as_str().unwrap_or(&a.namespace);
        ns == a.namespace && subject_matches(rb, ns, user) && allows(rb, ns)
    })
}

/// The rules a binding's `roleRef` grants (a Role only from the binding's own namespace).
pub(crate) fn rules_of_binding(binding: &Value, ns: &str, roles: &dyn RoleSource) -> Vec<Value> {
    let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
    let role = match binding["roleRef"]["kind"].as_str() {
        Some("Role") if !ns.is_empty() => roles.role(ns, name),
        Some("ClusterRole") => roles.cluster_role(name),
        _ => None,
    };
    role.map(|r| escalation::rules_in(&r)).unwrap_or_default()
}

/// Kubernetes' denial message.
pub fn forbidden_message(user: &User, a: &Attributes) -> String {
    let res = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    let what = if a.name.is_empty() {
        res
    } else {
        format!("{res} \"{}\"", a.name)
    };
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    format!(
        "{what} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        user.name, a.verb, a.api_group
    )
}

#[cfg(test)]
mod tests;
