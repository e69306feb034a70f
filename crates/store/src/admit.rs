//! Admission of a request body: type metadata checks and, for custom resources, the CRD's
//! structural schema (prune, default, validate) under the requested field validation.

use serde_json::{Value, json};

use crate::error::{ApiError, Result};
use crate::registry::ResourceInfo;
use crate::schema;

/// The `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are an error (kubectl's default).
    Strict,
    /// Unknown fields are dropped with a warning (the server default).
    #[default]
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

impl FieldValidation {
    /// Parses the query value; unknown values are a 400.
    pub fn parse(s: Option<&str>) -> Result<Self> {
        match s.unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Strict" => Ok(Self::Strict),
            "Ignore" => Ok(Self::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}, must be one of Ignore, Warn, Strict"
            ))),
        }
    }
}

/// Checks that the body is a JSON object whose `apiVersion` and `kind` (filled in when absent)
/// match the endpoint.
pub fn check_type_meta(info: &ResourceInfo, obj: &mut Value) -> Result<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    check_metadata_types(obj.get("metadata"))?;
    let want_av = info.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(want_av),
        Some(av) if av == want_av => {}
        // Another served version of the same group (e.g. v1alpha1 body at a v1beta1 URL) is converted.
        Some(av) if !info.group.is_empty() && av.split('/').next() == Some(info.group.as_str()) => {
            obj["apiVersion"] = json!(want_av);
        }
        Some(av) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(info.kind),
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
    }
    Ok(())
}

/// Rejects metadata whose fields have the wrong JSON types, as Kubernetes' decoder does, before
/// any rule looks at them.
fn check_metadata_types(meta: Option<&Value>) -> Result<()> {
    let Some(meta) = meta else { return Ok(()) };
    let bad = |field: &str, want: &str| {
        Err(ApiError::bad_request(format!(
            "error decoding request body: metadata{field} must be {want}"
        )))
    };
    let Some(m) = meta.as_object() else {
        return bad("", "an object");
    };
    for f in [
        "name",
        "generateName",
        "namespace",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
    ] {
        if m.get(f).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return bad(&format!(".{f}"), "a string");
        }
    }
    for f in ["labels", "annotations"] {
        match m.get(f) {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) if o.values().all(Value::is_string) => {}
            Some(_) => return bad(&format!(".{f}"), "a map of strings"),
        }
    }
    match m.get("finalizers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(_) => return bad(".finalizers", "a list of strings"),
    }
    match m.get("ownerReferences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_object) => {}
        Some(_) => return bad(".ownerReferences", "a list of objects"),
    }
    if m.get("generation").is_some_and(|v| !v.is_i64() && !v.is_null()) {
        return bad(".generation", "an integer");
    }
    Ok(())
}

const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Top-level fields of the built-in kinds (besides apiVersion, kind and metadata).
fn builtin_fields(group: &str, plural: &str) -> Option<&'static [&'static str]> {
    Some(match (group, plural) {
        ("", "configmaps") => &["data", "binaryData", "immutable"],
        ("", "secrets") => &["data", "stringData", "type", "immutable"],
        ("", "serviceaccounts") => &["secrets", "imagePullSecrets", "automountServiceAccountToken"],
        ("", "events") => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        ("events.k8s.io", "events") => &[
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ],
        ("discovery.k8s.io", "endpointslices") => &["addressType", "endpoints", "ports"],
        ("rbac.authorization.k8s.io", "roles") => &["rules"],
        ("rbac.authorization.k8s.io", "clusterroles") => &["rules", "aggregationRule"],
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => &["subjects", "roleRef"],
        ("scheduling.k8s.io", "priorityclasses") => {
            &["value", "globalDefault", "description", "preemptionPolicy"]
        }
        (_, _) => &["spec", "status"],
    })
}

/// Unknown fields of a built-in object (top level and metadata), dropped as Kubernetes' decoder
/// drops them; returns the warnings, or the 400 under Strict.
pub fn admit_builtin(group: &str, plural: &str, obj: &mut Value, fv: FieldValidation) -> Result<Vec<String>> {
    let Some(allowed) = builtin_fields(group, plural) else {
        return Ok(Vec::new());
    };
    let mut unknown = Vec::new();
    if let Some(o) = obj.as_object_mut() {
        o.retain(|k, _| {
            let keep =
                matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || allowed.contains(&k.as_str());
            if !keep {
                unknown.push(k.clone());
            }
            keep
        });
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.retain(|k, _| {
                let keep = OBJECT_META.contains(&k.as_str());
                if !keep {
                    unknown.push(format!("metadata.{k}"));
                }
                keep
            });
        }
    }
    let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
    match fv {
        _ if list.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            list.join(", ")
        ))),
        FieldValidation::Warn => Ok(list),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

/// Applies a custom resource's schema: returns warnings, or the 400/422 error.
pub fn admit_custom(info: &ResourceInfo, obj: &mut Value, fv: FieldValidation) -> Result<Vec<String>> {
    let Some(schema) = &info.schema else {
        return Ok(Vec::new());
    };
    let unknown = schema::prune(obj, schema);
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        match fv {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    list.join(", ")
                )));
            }
            FieldValidation::Warn => warnings = list,
            FieldValidation::Ignore => {}
        }
    }
    schema::apply_defaults(obj, schema);
    let causes = schema::validate(obj, schema, "");
    if !causes.is_empty() {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(ApiError::invalid(&info.kind, &info.group, name, causes));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::infos_from_crd;

    fn widget() -> ResourceInfo {
        infos_from_crd(&json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "size": {"type": "integer", "default": 3}}}}}}}]}}))
        .remove(0)
    }

    #[test]
    fn strict_rejects_unknown_fields_warn_drops_them() {
        let info = widget();
        let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"x": 1}});
        let err = admit_custom(&info, &mut body.clone(), FieldValidation::Strict).expect_err("strict");
        assert_eq!(err.message, "strict decoding error: unknown field \"spec.x\"");
        let mut warned = body.clone();
        let w = admit_custom(&info, &mut warned, FieldValidation::Warn).expect("warn");
        assert_eq!(w, vec!["unknown field \"spec.x\"".to_string()]);
        assert_eq!(warned["spec"], json!({"size": 3}));
    }

    #[test]
    fn invalid_values_are_422_naming_the_object() {
        let info = widget();
        let mut body = json!({"metadata": {"name": "w"}, "spec": {"size": "big"}});
        let err = admit_custom(&info, &mut body, FieldValidation::Strict).expect_err("invalid");
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .starts_with("Widget.example.com \"w\" is invalid: spec.size: Invalid value"),
            "{}",
            err.message
        );
    }

    #[test]
    fn builtin_unknown_fields_follow_field_validation() {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "colour": "red"}, "data": {}, "datta": {}});
        let err =
            admit_builtin("", "configmaps", &mut body.clone(), FieldValidation::Strict).expect_err("strict");
        assert_eq!(
            err.message,
            "strict decoding error: unknown field \"datta\", unknown field \"metadata.colour\""
        );
        let mut warned = body.clone();
        assert_eq!(
            admit_builtin("", "configmaps", &mut warned, FieldValidation::Warn)
                .expect("warn")
                .len(),
            2
        );
        assert!(warned.get("datta").is_none() && warned["metadata"].get("colour").is_none());
        let mut svc = json!({"spec": {"x": 1}, "status": {}});
        assert!(admit_builtin("", "services", &mut svc, FieldValidation::Strict).is_ok());
    }

    #[test]
    fn type_meta_must_match_the_endpoint() {
        let info = widget();
        let mut ok = json!({"metadata": {}});
        check_type_meta(&info, &mut ok).expect("filled in");
        assert_eq!(
            (ok["apiVersion"].as_str(), ok["kind"].as_str()),
            (Some("example.com/v1"), Some("Widget"))
        );
        let err =
            check_type_meta(&info, &mut json!({"apiVersion": "v1", "kind": "Widget"})).expect_err("wrong av");
        assert_eq!(err.code, 400);
        let err = check_type_meta(&info, &mut json!({"kind": "ConfigMap"})).expect_err("wrong kind");
        assert!(err.message.contains("kind in the data (ConfigMap)"));
        assert_eq!(
            check_type_meta(&info, &mut json!([])).expect_err("array").code,
            400
        );
    }
}
