//! The messages whose JSON form is not their message shape, and JSONSchemaProps' field names that
//! are not valid proto names. Everything else maps field name to field name.

use std::borrow::Cow;

use crate::error::ApiError;

/// A message with its own JSON form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// `{seconds, nanos}` ↔ RFC 3339 to the second.
    Time,
    /// `{seconds, nanos}` ↔ RFC 3339 to the microsecond.
    MicroTime,
    /// `{duration}` nanoseconds ↔ Go's duration text (`1m30s`).
    Duration,
    /// `{string}` ↔ the quantity's text.
    Quantity,
    /// `{type, intVal, strVal}` ↔ a number or a string.
    IntOrString,
    /// Bytes holding JSON (`raw`, `Raw`) ↔ that JSON.
    Raw(&'static str),
    /// `{items}` ↔ a plain array of strings.
    Items,
    /// `{schema, jSONSchemas}` ↔ a schema or an array of schemas.
    SchemaOrArray,
    /// `{allows, schema}` ↔ a schema or a boolean.
    SchemaOrBool,
    /// `{schema, property}` ↔ a schema or an array of strings.
    SchemaOrStringArray,
}

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";
const EXT: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.";
const SCHEMA: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";

/// The special form of the message named `full`, if it has one.
pub fn special(full: &str) -> Option<Special> {
    use Special::*;
    if let Some(n) = full.strip_prefix(META) {
        return match n {
            "Time" => Some(Time),
            "MicroTime" => Some(MicroTime),
            "Duration" => Some(Duration),
            "FieldsV1" => Some(Raw("Raw")),
            "Verbs" => Some(Items),
            _ => None,
        };
    }
    if let Some(n) = full.strip_prefix(EXT) {
        return match n {
            "JSON" => Some(Raw("raw")),
            "JSONSchemaPropsOrArray" => Some(SchemaOrArray),
            "JSONSchemaPropsOrBool" => Some(SchemaOrBool),
            "JSONSchemaPropsOrStringArray" => Some(SchemaOrStringArray),
            _ => None,
        };
    }
    match full {
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => Some(Quantity),
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Some(IntOrString),
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => Some(Raw("raw")),
        "k8s.io.api.authentication.v1.ExtraValue" | "k8s.io.api.authorization.v1.ExtraValue" => Some(Items),
        _ => None,
    }
}

/// Go's encoder writes every non-pointer field, so a body from kubectl carries `""` for each
/// string the user left unset (`generateName`, `protocol`, `selfLink`), where Go's JSON omits
/// them. Those are dropped on decode; only where a pointer to `""` means something of its own
/// (no storage class, no ingress class) is the empty string kept. Zero numbers and `false` are
/// kept: `replicas: 0` and `automountServiceAccountToken: false` are values.
pub fn empty_is_a_value(field: &str) -> bool {
    matches!(field, "storageClassName" | "ingressClassName")
}

/// Go structs embedded with `json:",inline"`: in protobuf a field of their own, in JSON their
/// fields sit in the parent object.
const INLINE: &[(&str, &str)] = &[
    ("k8s.io.api.core.v1.Probe", "handler"),
    ("k8s.io.api.core.v1.Volume", "volumeSource"),
    (
        "k8s.io.api.core.v1.EphemeralContainer",
        "ephemeralContainerCommon",
    ),
    (
        "k8s.io.api.core.v1.PersistentVolumeSpec",
        "persistentVolumeSource",
    ),
    ("k8s.io.api.networking.v1.IngressRule", "ingressRuleValue"),
    (
        "k8s.io.api.admissionregistration.v1.NamedRuleWithOperations",
        "ruleWithOperations",
    ),
    ("k8s.io.api.admissionregistration.v1.RuleWithOperations", "rule"),
];

/// Whether field `field` of message `full` is inlined into its parent's JSON object.
pub fn inline(full: &str, field: &str) -> bool {
    (field == "localObjectReference" && full.starts_with("k8s.io.api.core.v1."))
        || INLINE.contains(&(full, field))
}

/// Proto names go-to-protobuf derived from Go field names (`UID`, `APIGroup`) → JSON keys.
const RENAMED: &[(&str, &str)] = &[("uID", "uid"), ("aPIGroup", "apiGroup")];

/// The JSON key of proto field `field` of message `full`. A few proto fields carry the Go field
/// name (admissionregistration's `Expression`, `Name`, `Webhooks`); their JSON keys start lower
/// case, except DaemonEndpoint's, whose JSON key is `Port` too.
pub fn json_name<'a>(full: &str, field: &'a str) -> Cow<'a, str> {
    if let Some((_, json)) = RENAMED.iter().find(|(proto, _)| *proto == field) {
        return Cow::Borrowed(json);
    }
    if field.starts_with(|c: char| c.is_ascii_uppercase()) && full != "k8s.io.api.core.v1.DaemonEndpoint" {
        let mut out = field[..1].to_ascii_lowercase();
        out.push_str(&field[1..]);
        return Cow::Owned(out);
    }
    if full != SCHEMA {
        return Cow::Borrowed(field);
    }
    match field {
        "schema" => Cow::Borrowed("$schema"),
        "ref" => Cow::Borrowed("$ref"),
        f if f.starts_with("xKubernetes") => {
            let mut out = String::from("x");
            for c in f[1..].chars() {
                if c.is_ascii_uppercase() {
                    out.push('-');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            Cow::Owned(out)
        }
        f => Cow::Borrowed(f),
    }
}

/// The proto field name of JSON key `key` of message `full` (the inverse of [`json_name`]).
pub fn proto_name<'a>(full: &str, key: &'a str) -> Cow<'a, str> {
    if let Some((proto, _)) = RENAMED.iter().find(|(_, json)| *json == key) {
        return Cow::Borrowed(proto);
    }
    if full != SCHEMA {
        return Cow::Borrowed(key);
    }
    match key {
        "$schema" => Cow::Borrowed("schema"),
        "$ref" => Cow::Borrowed("ref"),
        k if k.starts_with("x-kubernetes-") => {
            let mut out = String::new();
            let mut upper = false;
            for c in k.chars() {
                match c {
                    '-' => upper = true,
                    c if upper => {
                        out.push(c.to_ascii_uppercase());
                        upper = false;
                    }
                    c => out.push(c),
                }
            }
            Cow::Owned(out)
        }
        k => Cow::Borrowed(k),
    }
}

/// RFC 3339 in UTC, as metav1.Time (seconds) or metav1.MicroTime (microseconds) marshal.
pub fn format_time(seconds: i64, nanos: i32, micro: bool) -> Result<String, ApiError> {
    let t = jiff::Timestamp::new(seconds, if micro { nanos } else { 0 })
        .map_err(|e| ApiError::bad_request(format!("time {seconds}s {nanos}ns: {e}")))?;
    Ok(if micro {
        t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
    } else {
        t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}

/// (seconds, nanoseconds) of an RFC 3339 time.
pub fn parse_time(text: &str) -> Result<(i64, i32), String> {
    let t: jiff::Timestamp = text
        .parse()
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
    Ok((t.as_second(), t.subsec_nanosecond()))
}

const UNITS: &[(&str, u128)] = &[
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

fn with_fraction(value: u128, unit: u128) -> String {
    let (whole, rem) = (value / unit, value % unit);
    if rem == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let frac = format!("{rem:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn go_duration(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = u128::from(nanos.unsigned_abs());
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000_000_000 {
        let (unit, size) = if n < 1_000 {
            ("ns", 1)
        } else if n < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{sign}{}{unit}", with_fraction(n, size));
    }
    let (h, m, s) = (n / 3_600_000_000_000, n / 60_000_000_000 % 60, n % 60_000_000_000);
    let mut out = sign.to_string();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", with_fraction(s, 1_000_000_000)));
    out
}

/// Nanoseconds of Go duration text (`90s`, `1h30m`, `1.5ms`, `-2s`).
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    let err = || format!("{text:?} is not a duration such as 90s or 1h30m");
    let (neg, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let (unit, size) = UNITS
            .iter()
            .filter(|(u, _)| rest.starts_with(u))
            .max_by_key(|(u, _)| u.len())
            .ok_or_else(err)?;
        total += number * (*size as f64);
        rest = &rest[unit.len()..];
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    let n = total.round() as i64;
    Ok(if neg { -n } else { n })
}
