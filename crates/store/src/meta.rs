//! Object metadata rules: names, labels, annotations, uids and timestamps.

use rand::Rng;
use serde_json::Value;

use crate::error::{Cause, render_value};

/// Longest DNS-1123 subdomain.
const MAX_SUBDOMAIN: usize = 253;
/// Longest DNS-1123 label.
const MAX_LABEL: usize = 63;
/// Total size allowed for all annotations of an object.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Why `name` is not a DNS-1123 label, if it is not one.
pub fn dns1123_label_error(name: &str) -> Option<String> {
    if name.len() > MAX_LABEL {
        return Some(format!("must be no more than {MAX_LABEL} characters"));
    }
    if !is_label(name) {
        return Some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must \
             start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for \
             validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                .to_string(),
        );
    }
    None
}

/// Why `name` is not a DNS-1123 subdomain, if it is not one.
pub fn dns1123_subdomain_error(name: &str) -> Option<String> {
    if name.len() > MAX_SUBDOMAIN {
        return Some(format!("must be no more than {MAX_SUBDOMAIN} characters"));
    }
    if name.is_empty() || !name.split('.').all(is_label) {
        return Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and \
             must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation \
             is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .to_string(),
        );
    }
    None
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Why `key` is not a valid label or annotation key (`[prefix/]name`), if it is not one.
pub fn key_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if dns1123_subdomain_error(p).is_some() {
            return Some("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
        }
    }
    if !is_qualified_name_part(name) {
        return Some("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into());
    }
    None
}

/// Why `value` is not a valid label value, if it is not one.
pub fn label_value_error(value: &str) -> Option<&'static str> {
    (!value.is_empty() && !is_qualified_name_part(value)).then_some(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    )
}

/// Validates `metadata.labels` and `metadata.annotations`, returning field causes.
pub fn validate_labels_and_annotations(meta: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let field = format!("metadata.labels");
            if let Some(e) = key_error(k) {
                causes.push(Cause::invalid(field.clone(), &Value::String(k.clone()), &e));
            }
            match v.as_str() {
                Some(s) => {
                    if let Some(e) = label_value_error(s) {
                        causes.push(Cause::invalid(field, v, e));
                    }
                }
                None => causes.push(Cause::invalid(field, v, "label values must be strings")),
            }
        }
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (k, v) in annotations {
            total += k.len() + v.as_str().map_or(0, str::len);
            if let Some(e) = key_error(k) {
                causes.push(Cause::invalid(
                    "metadata.annotations",
                    &Value::String(k.clone()),
                    &e,
                ));
            }
            if !v.is_string() {
                causes.push(Cause::invalid(
                    "metadata.annotations",
                    v,
                    "annotation values must be strings",
                ));
            }
        }
        if total > MAX_ANNOTATIONS_BYTES {
            causes.push(Cause::new(
                "FieldValueTooLong",
                "metadata.annotations",
                format!("Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes"),
            ));
        }
    }
    causes
}

/// Validates an object name, as a label when `label` is set, otherwise as a subdomain.
pub fn validate_name(name: &str, label: bool) -> Option<Cause> {
    if name.is_empty() {
        return Some(Cause::new(
            "FieldValueRequired",
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    }
    let err = if label {
        dns1123_label_error(name)
    } else {
        dns1123_subdomain_error(name)
    };
    err.map(|e| {
        Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!(
                "Invalid value: {}: {e}",
                render_value(&Value::String(name.into()))
            ),
        )
    })
}

/// Alphabet of generateName suffixes (no vowels, no look-alikes), as Kubernetes uses.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `prefix` plus five random characters.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// A random (version 4) UUID.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// RFC 3339 UTC timestamp at second precision, e.g. `2026-01-02T03:04:05Z`.
pub fn rfc3339(unix_secs: i64) -> String {
    // Outside jiff's range (years -9999..=9999) clamp rather than fail: callers pass clocks.
    let fallback = if unix_secs < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    };
    let t = jiff::Timestamp::from_second(unix_secs).unwrap_or(fallback);
    format!("{t:.0}")
}

/// Parses an RFC 3339 timestamp to Unix seconds (fractions dropped, offsets applied).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_dns1123() {
        assert!(dns1123_subdomain_error("payment-service.v1").is_none());
        assert!(dns1123_subdomain_error("Payment").is_some());
        assert!(dns1123_subdomain_error("-a").is_some());
        assert!(dns1123_subdomain_error(&"a".repeat(254)).is_some());
        assert!(dns1123_label_error("a.b").is_some());
        assert!(dns1123_label_error("cluster1").is_none());
        assert!(validate_name("", false).is_some());
    }

    #[test]
    fn label_keys_and_values_are_checked() {
        let ok = json!({"labels": {"submariner-io/clusterID": "c1", "app": ""}});
        assert!(validate_labels_and_annotations(&ok).is_empty());
        let bad = json!({"labels": {"bad key!": "x", "app": "-bad"}});
        assert_eq!(validate_labels_and_annotations(&bad).len(), 2);
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_845), "2027-01-01T00:04:05Z");
        assert_eq!(parse_rfc3339("2027-01-01T00:04:05Z"), Some(1_798_761_845));
        assert_eq!(parse_rfc3339("2027-01-01T02:04:05.5+02:00"), Some(1_798_761_845));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn uids_are_v4_and_generated_names_have_suffix() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let n = generate_name("svc-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("svc-"));
    }
}
