//! Protobuf message → the JSON form Kubernetes gives the same object.

use base64::Engine;
use prost_reflect::{DynamicMessage, MapKey, ReflectMessage, Value as Pb};
use serde_json::{Map, Number, Value};

use super::bad;
use super::wellknown::{self, Special};
use crate::error::ApiError;

fn field<'a>(m: &'a DynamicMessage, name: &str) -> Option<std::borrow::Cow<'a, Pb>> {
    m.has_field_by_name(name)
        .then(|| m.get_field_by_name(name))
        .flatten()
}

fn int(m: &DynamicMessage, name: &str) -> i64 {
    match field(m, name).as_deref() {
        Some(Pb::I64(v)) => *v,
        Some(Pb::I32(v)) => i64::from(*v),
        _ => 0,
    }
}

fn text(m: &DynamicMessage, name: &str) -> Option<String> {
    field(m, name).and_then(|v| v.as_str().map(String::from))
}

/// The JSON of a message; `None` where Kubernetes writes nothing (a zero Time, empty raw JSON).
pub fn message(m: &DynamicMessage) -> Result<Option<Value>, ApiError> {
    let desc = m.descriptor();
    let name = desc.full_name();
    if let Some(s) = wellknown::special(name) {
        return special(s, m);
    }
    let mut out = Map::new();
    for (f, v) in m.fields() {
        if matches!(v, Pb::String(s) if s.is_empty()) && !wellknown::empty_is_a_value(f.name()) {
            continue;
        }
        if wellknown::inline(name, f.name()) {
            if let Some(Value::Object(inner)) = value(v)? {
                out.extend(inner);
            }
            continue;
        }
        if let Some(j) = value(v)? {
            out.insert(wellknown::json_name(name, f.name()).into_owned(), j);
        }
    }
    Ok(Some(Value::Object(out)))
}

fn special(s: Special, m: &DynamicMessage) -> Result<Option<Value>, ApiError> {
    Ok(match s {
        Special::Time | Special::MicroTime => {
            let (secs, nanos) = (int(m, "seconds"), int(m, "nanos"));
            if secs == 0 && nanos == 0 {
                return Ok(None);
            }
            let nanos = i32::try_from(nanos).map_err(|_| bad("time nanos out of range"))?;
            Some(Value::String(wellknown::format_time(
                secs,
                nanos,
                s == Special::MicroTime,
            )?))
        }
        Special::Duration => Some(Value::String(wellknown::go_duration(int(m, "duration")))),
        Special::Quantity => text(m, "string").map(Value::String),
        Special::IntOrString => Some(if int(m, "type") == 1 {
            Value::String(text(m, "strVal").unwrap_or_default())
        } else {
            Value::from(int(m, "intVal"))
        }),
        Special::Raw(name) => match field(m, name).as_deref() {
            Some(Pb::Bytes(b)) if !b.is_empty() => {
                Some(serde_json::from_slice(b).map_err(|e| bad(format!("embedded JSON: {e}")))?)
            }
            _ => None,
        },
        Special::Items => Some(match field(m, "items").as_deref() {
            Some(v) => value(v)?.unwrap_or(Value::Array(Vec::new())),
            None => Value::Array(Vec::new()),
        }),
        Special::SchemaOrArray => either(m, "schema", "jSONSchemas")?,
        Special::SchemaOrStringArray => either(m, "schema", "property")?,
        Special::SchemaOrBool => match field(m, "schema") {
            Some(v) => value(&v)?,
            None => Some(Value::Bool(matches!(
                field(m, "allows").as_deref(),
                Some(Pb::Bool(true))
            ))),
        },
    })
}

/// The schema if set, else the list.
fn either(m: &DynamicMessage, schema: &str, list: &str) -> Result<Option<Value>, ApiError> {
    match field(m, schema) {
        Some(v) => value(&v),
        None => Ok(Some(match field(m, list) {
            Some(v) => value(&v)?.unwrap_or(Value::Array(Vec::new())),
            None => Value::Array(Vec::new()),
        })),
    }
}

/// Go writes a whole float64 without a fraction (`10`, not `10.0`).
fn float(f: f64) -> Result<Value, ApiError> {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return Ok(Value::from(f as i64));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| bad(format!("{f} is not a JSON number")))
}

fn key(k: &MapKey) -> String {
    match k {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
    }
}

fn value(v: &Pb) -> Result<Option<Value>, ApiError> {
    Ok(Some(match v {
        Pb::Bool(b) => Value::Bool(*b),
        Pb::I32(n) => Value::from(*n),
        Pb::I64(n) => Value::from(*n),
        Pb::U32(n) => Value::from(*n),
        Pb::U64(n) => Value::from(*n),
        Pb::F32(f) => float(f64::from(*f))?,
        Pb::F64(f) => float(*f)?,
        Pb::String(s) => Value::String(s.clone()),
        Pb::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Pb::EnumNumber(n) => Value::from(*n),
        Pb::Message(m) => return message(m),
        Pb::List(items) => Value::Array(
            items
                .iter()
                .map(|i| value(i).map(|j| j.unwrap_or(Value::Null)))
                .collect::<Result<_, _>>()?,
        ),
        Pb::Map(entries) => {
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let mut out = Map::new();
            for (k, v) in sorted {
                out.insert(key(k), value(v)?.unwrap_or(Value::Null));
            }
            Value::Object(out)
        }
    }))
}
