//! Legacy discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/{g}/{v}`) and `/version`.

use serde_json::{Value, json};
use subsea_store::registry::{Registry, ResourceInfo, verbs};

/// `/version`: minor "32" so the kubectl dispatcher on these machines runs kubectl 1.32.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": format!("v1.32.0-subsea.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]})
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`.
pub fn groups(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`, if served.
pub fn group(reg: &Registry, name: &str) -> Option<Value> {
    let (g, vs) = reg
        .groups()
        .into_iter()
        .find(|(g, _)| g == name && !g.is_empty())?;
    let mut doc = group_doc(&g, &vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn entry(i: &ResourceInfo) -> Vec<Value> {
    let mut out = vec![json!({
        "name": i.plural, "singularName": i.singular, "namespaced": i.namespaced, "kind": i.kind,
        "verbs": verbs(), "shortNames": i.short_names, "categories": i.categories,
    })];
    if i.status {
        out.push(
            json!({"name": format!("{}/status", i.plural), "singularName": "", "namespaced": i.namespaced,
            "kind": i.kind, "verbs": ["get", "patch", "update"]}),
        );
    }
    if i.scale.is_some() {
        out.push(
            json!({"name": format!("{}/scale", i.plural), "singularName": "", "namespaced": i.namespaced,
            "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}),
        );
    }
    if i.group.is_empty() && i.plural == "serviceaccounts" {
        out.push(
            json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
            "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}),
        );
    }
    out
}

/// `/api/v1` or `/apis/{g}/{v}`, if served.
pub fn resources(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let list: Vec<Value> = reg
        .all()
        .iter()
        .filter(|i| i.group == group && i.version == version)
        .flat_map(entry)
        .collect();
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}))
}

/// Content type of aggregated discovery (kubectl checks it; kube-rs does not).
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an Accept header asks for aggregated discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=APIGroupDiscoveryList"))
}

fn aggregated_resource(i: &ResourceInfo) -> Value {
    let mut subs = Vec::new();
    if i.status {
        subs.push(json!({"subresource": "status", "responseKind": {"group": i.group, "version": i.version, "kind": i.kind},
            "verbs": ["get", "patch", "update"]}));
    }
    if i.scale.is_some() {
        subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"]}));
    }
    json!({"resource": i.plural, "responseKind": {"group": i.group, "version": i.version, "kind": i.kind},
        "scope": if i.namespaced { "Namespaced" } else { "Cluster" }, "singularResource": i.singular,
        "verbs": verbs(), "shortNames": i.short_names, "categories": i.categories, "subresources": subs})
}

/// `APIGroupDiscoveryList` (apidiscovery.k8s.io/v2) for the core group (`core`) or the others.
pub fn aggregated(reg: &Registry, core: bool) -> Value {
    let items: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = reg
                        .all()
                        .iter()
                        .filter(|i| i.group == g && &i.version == v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "freshness": "Current", "resources": resources})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": vs})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}
