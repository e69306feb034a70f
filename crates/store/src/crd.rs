//! CustomResourceDefinition rules: validation of the definition and the status the server
//! reports once the new type is served.

use serde_json::{Value, json};

use crate::error::{ApiError, Cause, Result};
use crate::meta;

/// Validates a CRD body (apiextensions.k8s.io/v1) and fills in defaults of its names.
pub fn validate_and_default(crd: &mut Value) -> Result<()> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut causes = Vec::new();
    if !crd["spec"].is_object() || !crd["spec"]["names"].is_object() {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            &name,
            vec![Cause::required(if crd["spec"].is_object() {
                "spec.names"
            } else {
                "spec"
            })],
        ));
    }
    let spec = &mut crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let plural = spec
        .pointer("/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    } else if !group.contains('.') || meta::dns1123_subdomain_error(&group).is_some() {
        causes.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    } else if meta::dns1123_label_error(&plural).is_some() {
        causes.push(Cause::invalid(
            "spec.names.plural",
            &json!(plural),
            "a lowercase RFC 1123 label",
        ));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        other => causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: {:?}: supported values: \"Cluster\", \"Namespaced\"",
                other.unwrap_or("")
            ),
        )),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
    }
    if versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count()
        != 1
        && !versions.is_empty()
    {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!("array"),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v["name"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("spec.versions[{i}].name")));
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None => causes.push(Cause::new(
                "FieldValueRequired",
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required",
            )),
            Some(s) if s["type"].as_str() != Some("object") => causes.push(Cause::invalid(
                format!("spec.versions[{i}].schema.openAPIV3Schema.type"),
                &s["type"],
                "must be object at the root",
            )),
            Some(_) => {}
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            &name,
            causes,
        ));
    }
    let names = &mut spec["names"];
    if names["singular"].as_str().is_none_or(str::is_empty) {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names["listKind"].as_str().is_none_or(str::is_empty) {
        names["listKind"] = json!(format!("{kind}List"));
    }
    Ok(())
}

/// The status of a served CRD: names accepted, established, and its stored versions.
pub fn served_status(crd: &Value, previous: Option<&Value>, now: i64) -> Value {
    let ts = meta::rfc3339(now);
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let mut stored: Vec<Value> = previous
        .and_then(|p| p.pointer("/status/storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for s in storage {
        if !stored.contains(&s) {
            stored.push(s);
        }
    }
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": ts, "reason": reason, "message": msg});
    json!({
        "acceptedNames": crd["spec"]["names"],
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn valid_crd_gets_defaults_and_established_status() {
        let mut c = crd();
        validate_and_default(&mut c).expect("valid");
        assert_eq!(c["spec"]["names"]["singular"], "widget");
        assert_eq!(c["spec"]["names"]["listKind"], "WidgetList");
        let st = served_status(&c, None, 0);
        assert_eq!(st["conditions"][1]["type"], "Established");
        assert_eq!(st["storedVersions"], json!(["v1"]));
    }

    #[test]
    fn wrong_name_and_missing_storage_are_invalid() {
        let mut c = crd();
        c["metadata"]["name"] = json!("other.example.com");
        c["spec"]["versions"][0]["storage"] = json!(false);
        let err = validate_and_default(&mut c).expect_err("invalid");
        assert_eq!(err.code, 422);
        assert_eq!(err.causes.len(), 2, "{:?}", err.causes);
        let mut c = crd();
        c["spec"]["versions"][0]
            .as_object_mut()
            .map(|v| v.remove("schema"));
        let err = validate_and_default(&mut c).expect_err("schema required");
        assert!(err.message.contains("schemas are required"));
        for broken in [
            json!({"metadata": {"name": "x"}, "spec": "x"}),
            json!({"spec": {"names": 1}}),
        ] {
            assert_eq!(
                validate_and_default(&mut broken.clone())
                    .expect_err("not an object")
                    .code,
                422
            );
        }
    }
}
