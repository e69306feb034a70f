//! Request bodies: which media types a write accepts, and decoding them into one JSON object.
//!
//! YAML is checked for nesting depth before it is parsed: the parser's cost grows much faster
//! than the input with depth (a 120 KB body nested 60,000 levels took 19 s of CPU), and JSON
//! already stops at a recursion limit. The check is one linear pass over the bytes.

use serde_json::Value;

use crate::error::ApiError;

/// Deepest nesting a YAML body may have (serde_json's limit for JSON bodies is the same).
pub const MAX_DEPTH: usize = 128;

/// How a body is encoded, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json`, merge and strategic merge patches: an object.
    Json,
    /// `application/json-patch+json`: an array of operations.
    JsonPatch,
    /// `application/yaml` and `application/apply-patch+yaml`.
    Yaml,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
}

/// Media types accepted for objects (create, update).
pub const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// The format of a write body. `ct` is the media type without parameters, lower case; an empty
/// one is read as JSON. Anything else is 415, naming what is accepted.
pub fn format(ct: &str, accepted: &[&str]) -> Result<Format, ApiError> {
    if ct.is_empty() {
        return Ok(Format::Json);
    }
    if !accepted.contains(&ct) {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        )));
    }
    Ok(if ct == "application/json-patch+json" {
        Format::JsonPatch
    } else if ct.contains("protobuf") {
        Format::Protobuf
    } else if ct.contains("yaml") {
        Format::Yaml
    } else {
        Format::Json
    })
}

/// Decodes a body into a JSON object.
pub fn decode(format: Format, body: &[u8]) -> Result<Value, ApiError> {
    if format == Format::Protobuf {
        return crate::protobuf::decode(body);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; expected a JSON or YAML object",
        ));
    }
    let v: Value = match format {
        Format::Yaml => {
            if let Some(line) = too_deep(body, MAX_DEPTH) {
                return Err(ApiError::bad_request(format!(
                    "error decoding YAML: nesting deeper than {MAX_DEPTH} levels (at line {line})"
                )));
            }
            serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        }
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body as JSON: {e}")))?,
    };
    if format == Format::JsonPatch {
        if !v.is_array() {
            return Err(ApiError::bad_request(
                "a JSON patch must be an array of operations, e.g. [{\"op\": \"replace\", \"path\": \"/data/k\", \"value\": \"v\"}]",
            ));
        }
        return Ok(v);
    }
    if !v.is_object() {
        let what = match &v {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(ApiError::bad_request(format!(
            "the request body must be a JSON object (with apiVersion, kind and metadata); it is {what}"
        )));
    }
    Ok(v)
}

/// The line at which YAML nesting passes `limit`, if it does. Counts block levels (indentation
/// and `- ` entries) plus flow levels (`[` and `{` outside quotes and comments). Deliberately
/// generous where YAML is ambiguous: it only has to bound the depth, not parse.
pub fn too_deep(yaml: &[u8], limit: usize) -> Option<usize> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (n, raw) in yaml.split(|b| *b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let col = line.iter().take_while(|b| **b == b' ').count();
        let rest = &line[col..];
        if flow == 0 && !rest.is_empty() && rest[0] != b'#' {
            while indents.last().is_some_and(|i| *i >= col) {
                indents.pop();
            }
            indents.push(col);
            // "- - - x": each dash opens a sequence one level deeper.
            let mut at = 0;
            while rest.len() > at + 1 && rest[at] == b'-' && rest[at + 1] == b' ' {
                at += 2;
                while rest.get(at) == Some(&b' ') {
                    at += 1;
                }
                indents.push(col + at);
            }
        }
        let (end, deepest) = scan_flow(rest, flow);
        flow = end;
        if indents.len() + deepest > limit {
            return Some(n + 1);
        }
    }
    None
}

/// Flow depth after one line and the deepest it reached, starting at `depth`.
fn scan_flow(line: &[u8], mut depth: usize) -> (usize, usize) {
    let mut deepest = depth;
    let mut quote: Option<u8> = None;
    let mut prev = b' ';
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        match quote {
            Some(b'"') if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'#' if prev == b' ' || prev == b'\t' => break,
                b'"' | b'\'' if matches!(prev, b' ' | b'\t' | b'[' | b'{' | b',' | b':') => quote = Some(b),
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = b;
        i += 1;
    }
    (depth, deepest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_manifests_pass_and_deep_ones_are_refused() {
        let ok = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {x: \"[\"}\ndata:\n  k: don't [stop]\n  list:\n  - - a\n    - b\n";
        assert_eq!(too_deep(ok, MAX_DEPTH), None);
        let flow = format!("a: {}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(too_deep(flow.as_bytes(), MAX_DEPTH), Some(1));
        let block: String = (0..200).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert!(too_deep(block.as_bytes(), MAX_DEPTH).is_some());
        let dashes = format!("{}x\n", "- ".repeat(200));
        assert!(too_deep(dashes.as_bytes(), MAX_DEPTH).is_some());
        let e = decode(Format::Yaml, flow.as_bytes()).expect_err("too deep");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("nesting deeper than 128"), "{}", e.message);
    }

    #[test]
    fn media_types_and_shapes() {
        assert_eq!(format("", OBJECT_TYPES), Ok(Format::Json));
        assert_eq!(format("application/yaml", OBJECT_TYPES), Ok(Format::Yaml));
        let e = format("text/plain", OBJECT_TYPES).expect_err("415");
        assert_eq!(e.code, 415);
        assert!(
            e.message.contains("application/json, application/yaml"),
            "{}",
            e.message
        );
        let e = decode(Format::Yaml, b"garbage !!").expect_err("not an object");
        assert!(e.message.contains("must be a JSON object"), "{}", e.message);
        assert!(
            decode(Format::Json, b"  ")
                .expect_err("empty")
                .message
                .contains("empty")
        );
        assert_eq!(
            decode(Format::Yaml, b"a: 1").expect("object"),
            serde_json::json!({"a": 1})
        );
    }
}
