//! Privilege-escalation prevention, as Kubernetes' RBAC does it: a caller may write a Role or
//! ClusterRole only with rules it already holds (or the `escalate` verb), and may bind a role only
//! when it holds every rule of that role (or the `bind` verb on it).

use serde_json::Value;

use crate::{Attributes, RoleSource, User, rules_of_binding, strings, strings_objects, subject_matches};

/// One atomic permission: a single verb on a single group/resource/name, or a non-resource URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    verb: String,
    group: String,
    resource: String,
    name: String,
    url: String,
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.url.is_empty() {
            return write!(f, "{{NonResourceURLs:[{:?}], Verbs:[{:?}]}}", self.url, self.verb);
        }
        write!(
            f,
            "{{APIGroups:[{:?}], Resources:[{:?}]",
            self.group, self.resource
        )?;
        if !self.name.is_empty() {
            write!(f, ", ResourceNames:[{:?}]", self.name)?;
        }
        write!(f, ", Verbs:[{:?}]}}", self.verb)
    }
}

/// Splits rules into atoms (Kubernetes' `BreakdownRule`).
fn atoms(rules: &[Value]) -> Vec<Atom> {
    let mut out = Vec::new();
    for rule in rules {
        let verbs: Vec<&str> = strings(&rule["verbs"]).collect();
        for url in strings(&rule["nonResourceURLs"]) {
            for v in &verbs {
                out.push(Atom {
                    verb: (*v).into(),
                    group: String::new(),
                    resource: String::new(),
                    name: String::new(),
                    url: url.into(),
                });
            }
        }
        let names: Vec<&str> = strings(&rule["resourceNames"]).collect();
        let names = if names.is_empty() { vec![""] } else { names };
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for n in &names {
                    for v in &verbs {
                        out.push(Atom {
                            verb: (*v).into(),
                            group: g.into(),
                            resource: r.into(),
                            name: (*n).into(),
                            url: String::new(),
                        });
                    }
                }
            }
        }
    }
    out
}

fn covers_value(list: &Value, want: &str) -> bool {
    strings(list).any(|s| s == "*" || s == want)
}

fn covers_resource(list: &Value, want: &str) -> bool {
    strings(list).any(|r| {
        if r == "*" || r == want {
            return true;
        }
        // "*/status" covers every resource's status; "pods/*" every subresource of pods.
        match (r.split_once('/'), want.split_once('/')) {
            (Some(("*", sub)), Some((_, want_sub))) => sub == want_sub,
            (Some((res, "*")), Some((want_res, _))) => res == want_res,
            _ => false,
        }
    })
}

fn covers_url(list: &Value, want: &str) -> bool {
    strings(list)
        .any(|u| u == want || u == "*" || u.strip_suffix('*').is_some_and(|prefix| want.starts_with(prefix)))
}

/// Whether one owner rule covers an atom.
fn rule_covers(rule: &Value, a: &Atom) -> bool {
    if !covers_value(&rule["verbs"], &a.verb) {
        return false;
    }
    if !a.url.is_empty() {
        return covers_url(&rule["nonResourceURLs"], &a.url);
    }
    if !covers_value(&rule["apiGroups"], &a.group) || !covers_resource(&rule["resources"], &a.resource) {
        return false;
    }
    let names: Vec<&str> = strings(&rule["resourceNames"]).collect();
    names.is_empty() || (!a.name.is_empty() && names.contains(&a.name.as_str()))
}

/// The atoms of `wanted` that no rule of `held` covers (empty: `held` covers `wanted`).
pub fn uncovered(held: &[Value], wanted: &[Value]) -> Vec<Atom> {
    atoms(wanted)
        .into_iter()
        .filter(|a| !held.iter().any(|r| rule_covers(r, a)))
        .collect()
}

/// Every rule the user holds in `namespace` (empty: cluster-wide rules only): the rules of the
/// ClusterRoleBindings and, in a namespace, of its RoleBindings.
pub fn rules_held(
    user: &User,
    namespace: &str,
    role_bindings: &[Value],
    cluster_role_bindings: &[Value],
    roles: &dyn RoleSource,
) -> Vec<Value> {
    let mut out = Vec::new();
    for crb in cluster_role_bindings {
        if subject_matches(crb, "", user) && crb["roleRef"]["kind"] == "ClusterRole" {
            out.extend(rules_of_binding(crb, "", roles));
        }
    }
    if !namespace.is_empty() {
        for rb in role_bindings {
            let ns = rb["metadata"]["namespace"].as_str().unwrap_or(namespace);
            if ns == namespace && subject_matches(rb, ns, user) {
                out.extend(rules_of_binding(rb, ns, roles));
            }
        }
    }
    out
}

/// The rules of a Role or ClusterRole object.
pub fn rules_in(role: &Value) -> Vec<Value> {
    strings_objects(&role["rules"]).cloned().collect()
}

/// The attributes of the `escalate` check for writing a role (`kind` Role or ClusterRole).
pub fn escalate_attributes(kind: &str, namespace: &str, name: &str) -> Attributes {
    Attributes {
        verb: "escalate".into(),
        api_group: crate::RBAC_GROUP.into(),
        resource: if kind == "Role" { "roles" } else { "clusterroles" }.into(),
        subresource: String::new(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The attributes of the `bind` check for a binding's `roleRef`, in the binding's namespace.
pub fn bind_attributes(binding: &Value, namespace: &str) -> Attributes {
    let kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
    Attributes {
        verb: "bind".into(),
        api_group: crate::RBAC_GROUP.into(),
        resource: if kind == "Role" { "roles" } else { "clusterroles" }.into(),
        subresource: String::new(),
        namespace: namespace.into(),
        name: binding["roleRef"]["name"].as_str().unwrap_or_default().into(),
    }
}

/// Kubernetes' message for a write that would grant what the caller does not hold.
pub fn escalation_message(resource: &str, name: &str, user: &User, missing: &[Atom]) -> String {
    let groups = user
        .groups
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    let list = missing.iter().map(Atom::to_string).collect::<Vec<_>>().join("\n");
    format!(
        "{resource}.{} {name:?} is forbidden: user {:?} (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n{list}",
        crate::RBAC_GROUP,
        user.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_wildcard_is_covered_only_by_a_wildcard() {
        let held = vec![json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]})];
        assert!(
            uncovered(
                &held,
                &[json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]})]
            )
            .is_empty()
        );
        let missing = uncovered(
            &held,
            &[json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})],
        );
        assert_eq!(missing.len(), 1);
        assert_eq!(
            missing[0].to_string(),
            r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#
        );
        let all =
            vec![json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"], "nonResourceURLs": ["*"]})];
        assert!(
            uncovered(
                &all,
                &[json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})]
            )
            .is_empty()
        );
    }

    #[test]
    fn names_subresources_and_urls() {
        let held = vec![
            json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]}),
            json!({"apiGroups": [""], "resources": ["*/status"], "verbs": ["update"]}),
            json!({"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]}),
        ];
        let want = |r: Value| uncovered(&held, &[r]);
        assert!(
            want(
                json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]})
            )
            .is_empty()
        );
        assert_eq!(
            want(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})).len(),
            1,
            "a name-limited rule does not cover all names"
        );
        assert!(
            want(json!({"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]})).is_empty()
        );
        assert_eq!(
            want(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["update"]})).len(),
            1
        );
        assert!(want(json!({"nonResourceURLs": ["/healthz/ping"], "verbs": ["get"]})).is_empty());
        assert_eq!(
            want(json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]})).len(),
            1
        );
        assert_eq!(
            want(json!({"apiGroups": ["", "apps"], "resources": ["secrets"], "resourceNames": ["a", "b"], "verbs": ["get"]}))
                .len(),
            3
        );
    }
}
