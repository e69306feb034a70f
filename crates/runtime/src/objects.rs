//! Untyped APIs by kind, create-or-merge, idempotent delete.

use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::Value;

use crate::{Error, Result};

/// Namespace of the components in each joined cluster (Submariner's).
pub const OPERATOR_NAMESPACE: &str = "submariner-operator";

/// Plural resource names of the kinds subsea reads and writes.
pub fn plural(kind: &str) -> Result<&'static str> {
    Ok(match kind {
        "Namespace" => "namespaces",
        "ServiceAccount" => "serviceaccounts",
        "Secret" => "secrets",
        "ConfigMap" => "configmaps",
        "Service" => "services",
        "Node" => "nodes",
        "Pod" => "pods",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "CustomResourceDefinition" => "customresourcedefinitions",
        "Broker" => "brokers",
        "Submariner" => "submariners",
        "ServiceDiscovery" => "servicediscoveries",
        "Cluster" => "clusters",
        "Endpoint" => "endpoints",
        "Gateway" => "gateways",
        "DaemonSet" => "daemonsets",
        "Deployment" => "deployments",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "ServiceExport" => "serviceexports",
        "ServiceImport" => "serviceimports",
        "EndpointSlice" => "endpointslices",
        "GlobalEgressIP" => "globalegressips",
        "ClusterGlobalEgressIP" => "clusterglobalegressips",
        "GlobalIngressIP" => "globalingressips",
        "Lease" => "leases",
        other => {
            return Err(Error::Invalid(format!(
                "subsea does not know the resource of kind {other}"
            )));
        }
    })
}

/// The API of the object's kind, in its namespace (if any).
pub fn api_for(client: &Client, obj: &Value) -> Result<Api<DynamicObject>> {
    let av = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (group, version) = av.split_once('/').unwrap_or(("", av));
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural(kind)?);
    Ok(match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    })
}

/// An API for `(apiVersion, kind)` in `ns` (or cluster-wide).
pub fn api(client: &Client, api_version: &str, kind: &str, ns: Option<&str>) -> Result<Api<DynamicObject>> {
    let mut probe = serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {}});
    if let Some(ns) = ns {
        probe["metadata"]["namespace"] = ns.into();
    }
    api_for(client, &probe)
}

/// Creates the object, or merges it into the existing one (writing nothing when the existing
/// one already holds everything). Returns the stored object and whether it was created.
pub async fn apply(client: &Client, obj: &Value) -> Result<(DynamicObject, bool)> {
    let api = api_for(client, obj)?;
    let (name, desc) = name_and_desc(obj);
    let typed: DynamicObject = serde_json::from_value(without_nulls(obj))
        .map_err(|e| Error::Invalid(format!("{desc} is not a valid manifest: {e}")))?;
    let existing = if name.is_empty() {
        None
    } else {
        api.get_opt(name)
            .await
            .map_err(|e| Error::api(format!("failed to read {desc}"), e))?
    };
    if let Some(existing) = existing {
        let current = serde_json::to_value(&existing).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut merged = current.clone();
        json_patch::merge(&mut merged, obj);
        if merged == current {
            return Ok((existing, false));
        }
        let patched = api
            .patch(name, &PatchParams::default(), &Patch::Merge(obj))
            .await
            .map_err(|e| Error::api(format!("failed to update {desc}"), e))?;
        return Ok((patched, false));
    }
    let created = api
        .create(&PostParams::default(), &typed)
        .await
        .map_err(|e| Error::api(format!("failed to create {desc}"), e))?;
    Ok((created, true))
}

/// `obj` with the keys a merge patch would remove (null values) left out: what creating from
/// the patch must store.
fn without_nulls(obj: &Value) -> Value {
    match obj {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// An object's name and how errors name it (`ServiceImport "web"`).
fn name_and_desc(obj: &Value) -> (&str, String) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (
        name,
        format!("{} {name:?}", obj["kind"].as_str().unwrap_or("object")),
    )
}

/// [`apply`] for a caller whose watch cache already says whether the object exists and that it
/// differs: one request (a create, or a merge patch) instead of a read and a write. A stale
/// cache (the create finds it exists, the patch finds it gone) falls back to [`apply`].
pub async fn apply_known(client: &Client, obj: &Value, exists: bool) -> Result<DynamicObject> {
    let api = api_for(client, obj)?;
    let (name, desc) = name_and_desc(obj);
    let stale = if exists {
        api.patch(name, &PatchParams::default(), &Patch::Merge(obj))
            .await
            .map_err(|e| (404, e))
    } else {
        let typed: DynamicObject = serde_json::from_value(without_nulls(obj))
            .map_err(|e| Error::Invalid(format!("{desc} is not a valid manifest: {e}")))?;
        api.create(&PostParams::default(), &typed)
            .await
            .map_err(|e| (409, e))
    };
    match stale {
        Ok(stored) => Ok(stored),
        Err((code, kube::Error::Api(s))) if s.code == code => Ok(apply(client, obj).await?.0),
        Err((_, e)) => Err(Error::api(
            format!("failed to {} {desc}", if exists { "update" } else { "create" }),
            e,
        )),
    }
}

/// Deletes an object if it exists.
pub async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::api(format!("failed to delete {name:?}"), e)),
    }
}

/// The cluster's `Submariner` object (written by `subctl join`), if it has one.
pub async fn submariner_object(client: &Client) -> Result<Option<DynamicObject>> {
    let subs = api(
        client,
        "submariner.io/v1alpha1",
        "Submariner",
        Some(OPERATOR_NAMESPACE),
    )?;
    match subs.get_opt("submariner").await {
        Ok(o) => Ok(o),
        // No CRD: not joined.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(Error::api("failed to read the Submariner object", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_are_named() {
        assert_eq!(plural("Endpoint").expect("known"), "endpoints");
        assert_eq!(
            plural("Widget").expect_err("unknown").to_string(),
            "subsea does not know the resource of kind Widget"
        );
    }
}
