//! OpenAPI v3 schemas of the built-in kinds, from the same descriptors as the codec, with their
//! descriptions from the `.proto` comments (Kubernetes' Go doc comments), for `kubectl explain`.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::POOL;
use super::wellknown::{self, Special};

/// A commented element: its description, and whether it carried `+optional` (Kubernetes'
/// OpenAPI generator marks a documented field without it as required).
struct Doc {
    text: String,
    optional: bool,
}

/// Comments by (file, source path), cleaned as Kubernetes' OpenAPI generator does: `+marker`
/// lines dropped, lines of a paragraph joined.
static COMMENTS: LazyLock<HashMap<(String, Vec<i32>), Doc>> = LazyLock::new(|| {
    let mut out = HashMap::new();
    for file in POOL.files() {
        let Some(info) = &file.file_descriptor_proto().source_code_info else {
            continue;
        };
        for loc in &info.location {
            let Some(raw) = loc.leading_comments.as_deref() else {
                continue;
            };
            let optional = raw.lines().any(|l| l.trim() == "+optional");
            if let Some(text) = clean(raw) {
                out.insert(
                    (file.name().to_string(), loc.path.clone()),
                    Doc { text, optional },
                );
            }
        }
    }
    out
});

fn clean(comment: &str) -> Option<String> {
    let mut paragraphs: Vec<String> = vec![String::new()];
    for line in comment.lines().map(str::trim) {
        if line.starts_with('+') {
            continue;
        }
        if line.is_empty() {
            if !paragraphs.last().is_some_and(String::is_empty) {
                paragraphs.push(String::new());
            }
            continue;
        }
        if let Some(p) = paragraphs.last_mut() {
            if !p.is_empty() {
                p.push(' ');
            }
            p.push_str(line);
        }
    }
    let text = paragraphs
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    (!text.is_empty()).then_some(text)
}

fn message_doc(m: &MessageDescriptor) -> Option<&'static Doc> {
    COMMENTS.get(&(m.parent_file().name().to_string(), m.path().to_vec()))
}

fn field_doc(f: &FieldDescriptor) -> Option<&'static Doc> {
    COMMENTS.get(&(f.parent_file().name().to_string(), f.path().to_vec()))
}

/// Kubernetes' schema name for a message: `k8s.io.api.apps.v1.Deployment` →
/// `io.k8s.api.apps.v1.Deployment`.
pub fn schema_name(full: &str) -> String {
    let rest = full.strip_prefix("k8s.io.").unwrap_or(full);
    format!("io.k8s.{}", rest.replace('_', "-"))
}

fn reference(name: &str) -> Value {
    json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}]})
}

/// Adds the schema of `m`, and of every message it refers to, to `out`; returns its name.
pub fn add(m: &MessageDescriptor, out: &mut Map<String, Value>) -> String {
    let name = schema_name(m.full_name());
    if !out.contains_key(&name) {
        // A placeholder first: the types refer to themselves (JSONSchemaProps).
        out.insert(name.clone(), Value::Null);
        let schema = message_schema(m, out);
        out.insert(name.clone(), schema);
    }
    name
}

fn special_schema(s: Special) -> Value {
    match s {
        Special::Time | Special::MicroTime => json!({"type": "string", "format": "date-time"}),
        Special::Duration | Special::Quantity => json!({"type": "string"}),
        Special::IntOrString => {
            json!({"type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": true})
        }
        Special::Raw(_) => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        Special::Items => json!({"type": "array", "items": {"type": "string"}}),
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            json!({"x-kubernetes-preserve-unknown-fields": true})
        }
    }
}

fn message_schema(m: &MessageDescriptor, out: &mut Map<String, Value>) -> Value {
    let mut schema = match wellknown::special(m.full_name()) {
        Some(s) => special_schema(s),
        None => {
            let (mut props, mut required) = (Map::new(), Vec::new());
            properties(m, &mut props, &mut required, out);
            let mut schema = json!({"type": "object", "properties": props});
            if !required.is_empty() {
                schema["required"] = json!(required);
            }
            schema
        }
    };
    if let Some(d) = message_doc(m) {
        schema["description"] = json!(d.text);
    }
    schema
}

/// The JSON properties of `m` and the required ones: its fields, with inlined ones' fields in
/// their place.
fn properties(
    m: &MessageDescriptor,
    props: &mut Map<String, Value>,
    required: &mut Vec<String>,
    out: &mut Map<String, Value>,
) {
    for f in m.fields() {
        if wellknown::inline(m.full_name(), f.name()) {
            if let Some(inner) = f.kind().as_message() {
                properties(inner, props, required, out);
            }
            continue;
        }
        let key = wellknown::json_name(m.full_name(), f.name()).into_owned();
        let mut p = field_schema(&f, out);
        if let Some(d) = field_doc(&f) {
            p["description"] = json!(d.text);
            if !d.optional {
                required.push(key.clone());
            }
        }
        props.insert(key, p);
    }
}

fn field_schema(f: &FieldDescriptor, out: &mut Map<String, Value>) -> Value {
    if f.is_map() {
        let value = f
            .kind()
            .as_message()
            .map(|e| e.map_entry_value_field().kind())
            .unwrap_or(Kind::String);
        return json!({"type": "object", "additionalProperties": kind_schema(&value, out)});
    }
    let one = kind_schema(&f.kind(), out);
    if f.is_list() {
        json!({"type": "array", "items": one})
    } else {
        one
    }
}

fn kind_schema(k: &Kind, out: &mut Map<String, Value>) -> Value {
    match k {
        Kind::Message(m) => reference(&add(m, out)),
        Kind::String => json!({"type": "string"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "integer", "format": "int64"})
        }
        Kind::Double => json!({"type": "number", "format": "double"}),
        Kind::Float => json!({"type": "number", "format": "float"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(_) => json!({"type": "integer"}),
    }
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// Marks a top-level kind's schema: `apiVersion` and `kind` (type meta, not in the protos) and
/// its group-version-kind, which is how kubectl explain finds it.
pub fn mark_kind(schema: &mut Value, group: &str, version: &str, kind: &str) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props
            .entry("apiVersion")
            .or_insert_with(|| json!({"type": "string", "description": API_VERSION_DOC}));
        props
            .entry("kind")
            .or_insert_with(|| json!({"type": "string", "description": KIND_DOC}));
    }
    schema["x-kubernetes-group-version-kind"] = json!([{"group": group, "version": version, "kind": kind}]);
}

/// Adds the schema of built-in `kind` in `group`/`version` to `out`; its name, if defined.
pub fn add_kind(group: &str, version: &str, kind: &str, out: &mut Map<String, Value>) -> Option<String> {
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let desc = super::descriptor(&api_version, kind)?;
    let name = add(&desc, out);
    if let Some(schema) = out.get_mut(&name) {
        mark_kind(schema, group, version, kind);
    }
    Some(name)
}

/// Adds ObjectMeta's schema (custom resources refer to it); its reference.
pub fn object_meta(out: &mut Map<String, Value>) -> Value {
    let m = POOL
        .get_message_by_name("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        .expect("ObjectMeta is in the descriptor set");
    reference(&add(&m, out))
}
