//! JSON of a built-in object → its protobuf message (the inverse of `to_json`).

use std::collections::HashMap;

use base64::Engine;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as Pb,
};
use serde_json::Value;

use super::wellknown::{self, Special};
use crate::error::ApiError;

fn wrong(path: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("encoding {path} as protobuf: {what}"))
}

fn set(m: &mut DynamicMessage, name: &str, v: Pb) {
    m.set_field_by_name(name, v);
}

/// The message `desc` holding JSON `v`; `path` names the place for errors.
pub fn message(desc: &MessageDescriptor, v: &Value, path: &str) -> Result<DynamicMessage, ApiError> {
    let mut m = DynamicMessage::new(desc.clone());
    if let Some(s) = wellknown::special(desc.full_name()) {
        special(s, &mut m, v, path)?;
        return Ok(m);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| wrong(path, format!("expected an object, found {v}")))?;
    for f in desc
        .fields()
        .filter(|f| wellknown::inline(desc.full_name(), f.name()))
    {
        let inner_desc = f
            .kind()
            .as_message()
            .cloned()
            .expect("an inlined field is a message");
        let inner = message(&inner_desc, v, path)?;
        if inner.fields().next().is_some() {
            m.set_field(&f, Pb::Message(inner));
        }
    }
    for (k, val) in obj {
        if val.is_null() {
            continue;
        }
        let Some(f) = field_of(desc, k) else {
            continue;
        };
        let here = format!("{path}.{k}");
        let pb = field(&f, val, &here)?;
        m.set_field(&f, pb);
    }
    Ok(m)
}

/// The field JSON key `key` names: the same name, a renamed one, or the Go field name.
fn field_of(desc: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    let go_name = || {
        let mut chars = key.chars();
        chars
            .next()
            .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    };
    [
        key.to_string(),
        wellknown::proto_name(desc.full_name(), key).into_owned(),
        go_name(),
    ]
    .iter()
    .filter_map(|n| desc.get_field_by_name(n))
    .find(|f| wellknown::json_name(desc.full_name(), f.name()) == key)
}

/// The message type of field `name` of `desc`.
fn sub(desc: &MessageDescriptor, name: &str, path: &str) -> Result<MessageDescriptor, ApiError> {
    desc.get_field_by_name(name)
        .and_then(|f| f.kind().as_message().cloned())
        .ok_or_else(|| wrong(path, format!("{} has no message field {name}", desc.full_name())))
}

fn strings(v: &Value, path: &str) -> Result<Pb, ApiError> {
    let items = v
        .as_array()
        .ok_or_else(|| wrong(path, "expected an array"))?
        .iter()
        .map(|i| {
            i.as_str()
                .map(|s| Pb::String(s.into()))
                .ok_or_else(|| wrong(path, "expected strings"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Pb::List(items))
}

fn special(s: Special, m: &mut DynamicMessage, v: &Value, path: &str) -> Result<(), ApiError> {
    let desc = m.descriptor();
    match s {
        Special::Time | Special::MicroTime => {
            let text = v.as_str().ok_or_else(|| wrong(path, "expected a time string"))?;
            let (secs, nanos) = wellknown::parse_time(text).map_err(|e| wrong(path, e))?;
            set(m, "seconds", Pb::I64(secs));
            set(
                m,
                "nanos",
                Pb::I32(if s == Special::MicroTime { nanos } else { 0 }),
            );
        }
        Special::Duration => {
            let text = v
                .as_str()
                .ok_or_else(|| wrong(path, "expected a duration string"))?;
            let n = wellknown::parse_go_duration(text).map_err(|e| wrong(path, e))?;
            set(m, "duration", Pb::I64(n));
        }
        Special::Quantity => {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(wrong(path, "expected a quantity")),
            };
            set(m, "string", Pb::String(text));
        }
        Special::IntOrString => match v {
            Value::String(s) => {
                set(m, "type", Pb::I64(1));
                set(m, "intVal", Pb::I32(0));
                set(m, "strVal", Pb::String(s.clone()));
            }
            Value::Number(n) => {
                let i = n
                    .as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(|| wrong(path, "expected a 32-bit integer"))?;
                set(m, "type", Pb::I64(0));
                set(m, "intVal", Pb::I32(i));
                set(m, "strVal", Pb::String(String::new()));
            }
            _ => return Err(wrong(path, "expected an integer or a string")),
        },
        Special::Raw(name) => {
            let bytes = serde_json::to_vec(v).map_err(|e| wrong(path, e))?;
            set(m, name, Pb::Bytes(bytes.into()));
        }
        Special::Items => set(m, "items", strings(v, path)?),
        Special::SchemaOrArray | Special::SchemaOrStringArray => {
            let list = if s == Special::SchemaOrArray {
                "jSONSchemas"
            } else {
                "property"
            };
            match v {
                Value::Object(_) => {
                    let schema = message(&sub(&desc, "schema", path)?, v, path)?;
                    set(m, "schema", Pb::Message(schema));
                }
                Value::Array(_) if s == Special::SchemaOrStringArray => set(m, list, strings(v, path)?),
                Value::Array(items) => {
                    let each = sub(&desc, list, path)?;
                    let items = items
                        .iter()
                        .map(|i| message(&each, i, path).map(Pb::Message))
                        .collect::<Result<_, _>>()?;
                    set(m, list, Pb::List(items));
                }
                _ => return Err(wrong(path, "expected a schema or an array")),
            }
        }
        Special::SchemaOrBool => match v {
            Value::Bool(b) => set(m, "allows", Pb::Bool(*b)),
            Value::Object(_) => {
                let schema = message(&sub(&desc, "schema", path)?, v, path)?;
                set(m, "allows", Pb::Bool(true));
                set(m, "schema", Pb::Message(schema));
            }
            _ => return Err(wrong(path, "expected a schema or a boolean")),
        },
    }
    Ok(())
}

fn field(f: &FieldDescriptor, v: &Value, path: &str) -> Result<Pb, ApiError> {
    if f.is_map() {
        let entry = f
            .kind()
            .as_message()
            .cloned()
            .expect("a map field's kind is its entry");
        let value_kind = entry.map_entry_value_field().kind();
        let obj = v.as_object().ok_or_else(|| wrong(path, "expected an object"))?;
        let mut out = HashMap::new();
        for (k, val) in obj {
            if val.is_null() {
                continue;
            }
            out.insert(
                MapKey::String(k.clone()),
                single(&value_kind, val, &format!("{path}.{k}"))?,
            );
        }
        return Ok(Pb::Map(out));
    }
    if f.is_list() {
        let items = v.as_array().ok_or_else(|| wrong(path, "expected an array"))?;
        let kind = f.kind();
        return Ok(Pb::List(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| single(&kind, item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ));
    }
    single(&f.kind(), v, path)
}

fn single(kind: &Kind, v: &Value, path: &str) -> Result<Pb, ApiError> {
    let int = || {
        v.as_i64()
            .ok_or_else(|| wrong(path, format!("expected an integer, found {v}")))
    };
    Ok(match kind {
        Kind::Message(md) => Pb::Message(message(md, v, path)?),
        Kind::String => Pb::String(
            v.as_str()
                .ok_or_else(|| wrong(path, format!("expected a string, found {v}")))?
                .into(),
        ),
        Kind::Bool => Pb::Bool(v.as_bool().ok_or_else(|| wrong(path, "expected a boolean"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Pb::I32(i32::try_from(int()?).map_err(|_| wrong(path, "out of the 32-bit range"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Pb::I64(int()?),
        Kind::Uint32 | Kind::Fixed32 => {
            Pb::U32(u32::try_from(int()?).map_err(|_| wrong(path, "out of the 32-bit range"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => Pb::U64(
            v.as_u64()
                .ok_or_else(|| wrong(path, "expected an unsigned integer"))?,
        ),
        Kind::Double => Pb::F64(v.as_f64().ok_or_else(|| wrong(path, "expected a number"))?),
        Kind::Float => Pb::F32(v.as_f64().ok_or_else(|| wrong(path, "expected a number"))? as f32),
        Kind::Bytes => {
            let text = v.as_str().ok_or_else(|| wrong(path, "expected base64 text"))?;
            Pb::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| wrong(path, e))?
                    .into(),
            )
        }
        Kind::Enum(_) => Pb::EnumNumber(i32::try_from(int()?).map_err(|_| wrong(path, "enum out of range"))?),
    })
}
