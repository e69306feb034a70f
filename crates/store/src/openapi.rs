//! `/openapi/v3`: the index of group-versions and one OpenAPI 3.0 document per group-version,
//! enough for `kubectl explain`. Built-in kinds' schemas come from Kubernetes' protos (with their
//! doc comments), custom resources' from their CRD's `openAPIV3Schema`.

use serde_json::{Map, Value, json};

use crate::protobuf::openapi as pb;
use crate::registry::{Registry, ResourceInfo};

/// The document path of a group-version: `api/v1`, `apis/apps/v1`.
pub fn path_of(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The index: each group-version's document path with a hash of its content, so clients can
/// cache them.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let path = path_of(&group, &version);
            let Some(doc) = document(registry, &path) else {
                continue;
            };
            let hash = crc32fast::hash(&serde_json::to_vec(&doc).unwrap_or_default());
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:08X}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// Kubernetes' schema name for a custom kind: group labels reversed, version, kind
/// (`io.submariner.v1.Endpoint`).
fn custom_name(info: &ResourceInfo) -> String {
    let mut labels: Vec<&str> = info.group.split('.').collect();
    labels.reverse();
    format!("{}.{}.{}", labels.join("."), info.version, info.kind)
}

fn custom_schema(info: &ResourceInfo, schemas: &mut Map<String, Value>) {
    let mut schema = info
        .schema
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    schema["properties"]["metadata"] = pb::object_meta(schemas);
    pb::mark_kind(&mut schema, &info.group, &info.version, &info.kind);
    schemas.insert(custom_name(info), schema);
}

/// The collection and object paths of a resource, each with a `get` naming its kind: kubectl
/// explain finds a resource's kind there, then the kind's schema by its group-version-kind.
fn resource_paths(info: &ResourceInfo, schema: &str, paths: &mut Map<String, Value>) {
    let base = format!("/{}", path_of(&info.group, &info.version));
    let collection_path = if info.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", info.plural)
    } else {
        format!("{base}/{}", info.plural)
    };
    let gvk = json!({"group": info.group, "version": info.version, "kind": info.kind});
    // kubectl looks for the fieldValidation parameter on writes to learn that the server
    // validates (so it does not validate on the client).
    let op = |action: &str| {
        json!({
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
                "description": "Ignore, Warn or Strict: what the server does with unknown or duplicate fields."}],
            "responses": {"200": {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": format!("#/components/schemas/{schema}")}}}}},
        })
    };
    let object = json!({"get": op("get"), "put": op("put"), "patch": op("patch")});
    let collection = json!({"get": op("list"), "post": op("post")});
    paths.insert(format!("{collection_path}/{{name}}"), object);
    paths.insert(collection_path, collection);
}

/// The OpenAPI document of the group-version at `path` (`api/v1`, `apis/apps/v1`), if served.
pub fn document(registry: &Registry, path: &str) -> Option<Value> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version) = match segs.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let infos: Vec<&ResourceInfo> = registry
        .all()
        .iter()
        .filter(|i| i.group == group && i.version == version)
        .collect();
    if infos.is_empty() {
        return None;
    }
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for info in infos {
        let name = if info.custom {
            custom_schema(info, &mut schemas);
            custom_name(info)
        } else {
            match pb::add_kind(group, version, &info.kind, &mut schemas) {
                Some(n) => n,
                None => continue,
            }
        };
        resource_paths(info, &name, &mut paths);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_in_kind_has_its_fields_types_and_descriptions() {
        let r = Registry::with_built_ins();
        let doc = document(&r, "apis/apps/v1").expect("apps/v1 is served");
        let schemas = &doc["components"]["schemas"];
        let d = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(d["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
        assert!(
            d["description"]
                .as_str()
                .is_some_and(|s| s.contains("declarative updates")),
            "{d}"
        );
        assert_eq!(d["properties"]["kind"]["type"], "string");
        let spec = &schemas["io.k8s.api.apps.v1.DeploymentSpec"];
        assert_eq!(spec["properties"]["replicas"]["type"], "integer");
        assert!(
            spec["properties"]["replicas"]["description"]
                .as_str()
                .is_some_and(|s| !s.contains("+optional")),
            "markers are dropped"
        );
        assert_eq!(
            spec["properties"]["template"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"
        );
        // A Probe's handler is inlined in JSON, so in the schema too.
        assert!(schemas["io.k8s.api.core.v1.Probe"]["properties"]["httpGet"].is_object());
        assert!(schemas["io.k8s.api.core.v1.Probe"]["properties"]["handler"].is_null());
        // Every reference resolves.
        let text = doc.to_string();
        for r in text.split("\"#/components/schemas/").skip(1) {
            let name = &r[..r.find('"').expect("closing quote")];
            assert!(schemas[name].is_object(), "{name} is referenced but missing");
        }
    }

    #[test]
    fn the_index_lists_every_served_group_version() {
        let r = Registry::with_built_ins();
        let idx = index(&r);
        for p in ["api/v1", "apis/apps/v1", "apis/rbac.authorization.k8s.io/v1"] {
            let url = idx["paths"][p]["serverRelativeURL"].as_str().unwrap_or_default();
            assert!(url.starts_with(&format!("/openapi/v3/{p}?hash=")), "{p}: {idx}");
        }
        assert!(document(&r, "apis/nope/v1").is_none());
        assert!(document(&r, "../etc").is_none());
    }
}
