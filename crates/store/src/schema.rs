//! Structural `openAPIV3Schema` handling for custom resources: pruning of unknown fields,
//! dropping of non-nullable nulls, defaulting, and validation with Kubernetes' messages.
//!
//! The order is the apiserver's: prune, drop nulls, default, validate.

use serde_json::{Map, Value};

use crate::error::{Cause, render_value};

/// Whether the schema keeps fields it does not declare.
fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn is_int_or_string(schema: &Value) -> bool {
    schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes fields the schema does not declare and nulls it does not allow; returns the paths of
/// removed unknown fields (so `fieldValidation=Strict` can reject them).
pub fn prune(value: &mut Value, schema: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    // apiVersion, kind and metadata are always kept at the root.
    if let (Value::Object(obj), Some(props)) = (
        value as &mut Value,
        schema.get("properties").and_then(Value::as_object),
    ) {
        for (k, v) in obj.iter_mut() {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(s) = props.get(k) {
                prune_at(v, s, k, &mut unknown);
            }
        }
        if !preserves_unknown(schema) {
            obj.retain(|k, _| {
                let keep = matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || props.contains_key(k);
                if !keep {
                    unknown.push(k.clone());
                }
                keep
            });
        }
        drop_nulls(obj, props);
    }
    unknown
}

fn drop_nulls(obj: &mut Map<String, Value>, props: &Map<String, Value>) {
    obj.retain(|k, v| {
        !(v.is_null()
            && props
                .get(k)
                .is_some_and(|s| s.get("nullable").and_then(Value::as_bool) != Some(true)))
    });
}

fn prune_at(value: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in obj.iter_mut() {
                    if let Some(s) = props.get(k) {
                        prune_at(v, s, &join(path, k), unknown);
                    }
                }
                if !preserves_unknown(schema) {
                    obj.retain(|k, _| {
                        let keep = props.contains_key(k);
                        if !keep {
                            unknown.push(join(path, k));
                        }
                        keep
                    });
                }
                drop_nulls(obj, props);
            } else if let Some(add) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in obj.iter_mut() {
                    prune_at(v, add, &join(path, k), unknown);
                }
            } else if !preserves_unknown(schema)
                && schema.get("type").and_then(Value::as_str) == Some("object")
            {
                // An object schema with neither properties nor additionalProperties keeps nothing.
                if schema.get("additionalProperties").and_then(Value::as_bool) != Some(true) {
                    for k in obj.keys() {
                        unknown.push(join(path, k));
                    }
                    obj.clear();
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    prune_at(v, s, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Fills in `default`s of absent fields, recursively.
pub fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if !obj.contains_key(k) {
                        if let Some(d) = s.get("default") {
                            obj.insert(k.clone(), d.clone());
                        }
                    }
                    if let Some(v) = obj.get_mut(k) {
                        apply_defaults(v, s);
                    }
                }
            } else if let Some(add) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                obj.values_mut().for_each(|v| apply_defaults(v, add));
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|v| apply_defaults(v, s));
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(want: &str, v: &Value) -> bool {
    match (want, v) {
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (w, v) => w == type_name(v),
    }
}

/// Validates `value` against `schema`; `path` names the value (empty at the root).
pub fn validate(value: &Value, schema: &Value, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_at(value, schema, path, &mut causes);
    causes
}

fn invalid(causes: &mut Vec<Cause>, path: &str, value: &Value, detail: String) {
    causes.push(Cause::invalid(path, value, &detail));
}

fn validate_at(value: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) && schema.get("type").is_some() {
            invalid(
                causes,
                path,
                &Value::String("null".into()),
                format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
            );
        }
        return;
    }
    if is_int_or_string(schema) {
        if !(value.is_string() || type_matches("integer", value)) {
            causes.push(Cause::invalid(
                path,
                &Value::String(type_name(value).into()),
                &format!(
                    "{path} in body must be of type integer-or-string: {:?}",
                    type_name(value)
                ),
            ));
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str) {
        if !type_matches(t, value) {
            let got = type_name(value);
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {:?}: {path} in body must be of type {t}: {got:?}",
                    got
                ),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            let list: Vec<String> = options.iter().map(render_value).collect();
            causes.push(Cause::new(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    render_value(value),
                    list.join(", ")
                ),
            ));
        }
    }
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    match value {
        Value::String(s) => {
            let len = s.chars().count() as f64;
            if let Some(min) = num("minLength").filter(|m| len < *m) {
                invalid(
                    causes,
                    path,
                    value,
                    format!("{path} in body should be at least {min} chars long"),
                );
            }
            if let Some(max) = num("maxLength").filter(|m| len > *m) {
                causes.push(Cause::new(
                    "FieldValueTooLong",
                    path,
                    format!("Too long: may not be more than {max} bytes"),
                ));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(p) {
                    Ok(re) if !re.is_match(s) => {
                        invalid(causes, path, value, format!("{path} in body should match '{p}'"))
                    }
                    _ => {}
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            let exclusive = |k: &str| schema.get(k).and_then(Value::as_bool) == Some(true);
            if let Some(min) = num("minimum") {
                if exclusive("exclusiveMinimum") && x <= min {
                    invalid(
                        causes,
                        path,
                        value,
                        format!("{path} in body should be greater than {min}"),
                    );
                } else if x < min {
                    invalid(
                        causes,
                        path,
                        value,
                        format!("{path} in body should be greater than or equal to {min}"),
                    );
                }
            }
            if let Some(max) = num("maximum") {
                if exclusive("exclusiveMaximum") && x >= max {
                    invalid(
                        causes,
                        path,
                        value,
                        format!("{path} in body should be less than {max}"),
                    );
                } else if x > max {
                    invalid(
                        causes,
                        path,
                        value,
                        format!("{path} in body should be less than or equal to {max}"),
                    );
                }
            }
        }
        Value::Array(items) => {
            let len = items.len() as f64;
            if let Some(max) = num("maxItems").filter(|m| len > *m) {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {len}: must have at most {max} items"),
                ));
            }
            if let Some(min) = num("minItems").filter(|m| len < *m) {
                invalid(
                    causes,
                    path,
                    value,
                    format!("{path} in body should have at least {min} items"),
                );
            }
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    validate_at(v, s, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(obj) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        causes.push(Cause::required(join(path, r)));
                    }
                }
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in obj {
                    if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    if let Some(s) = props.get(k) {
                        validate_at(v, s, &join(path, k), causes);
                    }
                }
            } else if let Some(add) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in obj {
                    validate_at(v, add, &join(path, k), causes);
                }
            }
            let n = obj.len() as f64;
            if let Some(max) = num("maxProperties").filter(|m| n > *m) {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {n}: must have at most {max} items"),
                ));
            }
        }
        _ => {}
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        let Some(subs) = schema.get(key).and_then(Value::as_array) else {
            continue;
        };
        let results: Vec<Vec<Cause>> = subs.iter().map(|s| validate(value, s, path)).collect();
        let passing = results.iter().filter(|r| r.is_empty()).count();
        match key {
            "allOf" => causes.extend(results.into_iter().flatten()),
            "anyOf" if passing == 0 && !results.is_empty() && !is_int_or_string(schema) => invalid(
                causes,
                path,
                value,
                format!("{path} in body must match at least one schema (anyOf)"),
            ),
            "oneOf" if passing != 1 && !results.is_empty() => invalid(
                causes,
                path,
                value,
                format!("{path} in body must match exactly one schema (oneOf)"),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 3},
                        "size": {"type": "integer", "default": 1, "maximum": 10},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "note": {"type": "string", "nullable": true}
                    }
                },
                "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}
            }
        })
    }

    #[test]
    fn prunes_unknown_fields_but_keeps_preserved_ones() {
        let mut v = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"name": "abc", "bogus": 1, "free": {"anything": {"x": 1}}, "size": null, "note": null},
            "extra": true});
        let unknown = prune(&mut v, &schema());
        assert_eq!(unknown, vec!["spec.bogus".to_string(), "extra".to_string()]);
        assert_eq!(v["spec"]["free"]["anything"]["x"], 1);
        assert!(v["spec"].get("size").is_none(), "non-nullable null dropped");
        assert!(
            v["spec"]["note"].is_null() && v["spec"].get("note").is_some(),
            "nullable null kept"
        );
        assert_eq!(v["metadata"]["name"], "n");
    }

    #[test]
    fn defaults_fill_absent_fields() {
        let mut v = json!({"spec": {"name": "abc"}});
        apply_defaults(&mut v, &schema());
        assert_eq!(v["spec"]["size"], 1);
    }

    #[test]
    fn validation_messages_match_kubernetes() {
        let v =
            json!({"spec": {"name": "ab", "size": "big", "mode": "c", "tags": ["a", "b", "c"], "port": 80}});
        let causes = validate(&v, &schema(), "");
        let text: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(
            text.contains(
                &"spec.name: Invalid value: \"ab\": spec.name in body should be at least 3 chars long"
                    .to_string()
            ),
            "{text:?}"
        );
        assert!(text.contains(&"spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"".to_string()), "{text:?}");
        assert!(
            text.contains(&"spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"".to_string()),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("spec.tags: Too many: 3")),
            "{text:?}"
        );
        assert_eq!(causes.len(), 4);
    }

    #[test]
    fn required_and_ranges() {
        let causes = validate(&json!({"spec": {"size": 11}}), &schema(), "");
        let text: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(
            text.contains(&"spec.name: Required value".to_string()),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("should be less than or equal to 10")),
            "{text:?}"
        );
        assert!(validate(&json!({"spec": {"name": "abc", "port": "http"}}), &schema(), "").is_empty());
    }
}
