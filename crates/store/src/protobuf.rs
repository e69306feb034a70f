//! Decoding of the Kubernetes protobuf request bodies kubectl's generators send
//! (`kubectl create namespace|configmap|secret`, `kubectl auth can-i`) into the JSON the rest
//! of the server works with. Only the few kinds kubectl sends this way are understood.
//!
//! Wire format: the magic `k8s\0`, then a `runtime.Unknown` message whose `typeMeta` names the
//! kind and whose `raw` field holds the object's own protobuf encoding.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// One protobuf field value.
#[derive(Clone, Debug, PartialEq)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn bad(what: &str) -> ApiError {
    ApiError::bad_request(format!("failed to decode the protobuf request body: {what}"))
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(bad("varint too long"))
}

/// Splits a message into (field number, value) pairs.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ApiError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((num, Field::Varint(varint(buf, &mut pos)?))),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| bad("length"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(|| bad("truncated field"))?;
                out.push((num, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => {
                pos = pos
                    .checked_add(8)
                    .filter(|p| *p <= buf.len())
                    .ok_or_else(|| bad("truncated fixed64"))?
            }
            5 => {
                pos = pos
                    .checked_add(4)
                    .filter(|p| *p <= buf.len())
                    .ok_or_else(|| bad("truncated fixed32"))?
            }
            _ => return Err(bad("unsupported wire type")),
        }
    }
    Ok(out)
}

fn string(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("string is not UTF-8"))
}

fn bytes_of<'a>(fs: &[(u64, Field<'a>)], n: u64) -> Option<&'a [u8]> {
    fs.iter().rev().find_map(|(k, f)| match f {
        Field::Bytes(b) if *k == n => Some(*b),
        _ => None,
    })
}

fn str_of(fs: &[(u64, Field<'_>)], n: u64) -> Result<Option<String>, ApiError> {
    bytes_of(fs, n).map(string).transpose()
}

/// A `map<string, string>` (or bytes values, base64-encoded as JSON does) field.
fn map_of(fs: &[(u64, Field<'_>)], n: u64, values_are_bytes: bool) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    for (k, f) in fs {
        if let (true, Field::Bytes(entry)) = (*k == n, f) {
            let e = fields(entry)?;
            let key = str_of(&e, 1)?.unwrap_or_default();
            let raw = bytes_of(&e, 2).unwrap_or_default();
            let v = if values_are_bytes {
                json!(base64::engine::general_purpose::STANDARD.encode(raw))
            } else {
                json!(string(raw)?)
            };
            m.insert(key, v);
        }
    }
    Ok(m)
}

fn object_meta(b: &[u8]) -> Result<Value, ApiError> {
    let fs = fields(b)?;
    let mut m = Map::new();
    for (n, key) in [(1, "name"), (2, "generateName"), (3, "namespace")] {
        if let Some(v) = str_of(&fs, n)? {
            m.insert(key.into(), json!(v));
        }
    }
    for (n, key) in [(11, "labels"), (12, "annotations")] {
        let map = map_of(&fs, n, false)?;
        if !map.is_empty() {
            m.insert(key.into(), Value::Object(map));
        }
    }
    Ok(Value::Object(m))
}

fn metadata(fs: &[(u64, Field<'_>)]) -> Result<Value, ApiError> {
    bytes_of(fs, 1)
        .map(object_meta)
        .transpose()
        .map(|m| m.unwrap_or(json!({})))
}

/// Decodes a `k8s\0`-prefixed protobuf body into the JSON object it encodes.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| bad("missing the k8s protobuf magic prefix"))?;
    let unknown = fields(envelope)?;
    let type_meta = fields(bytes_of(&unknown, 1).ok_or_else(|| bad("no typeMeta"))?)?;
    let api_version = str_of(&type_meta, 1)?.unwrap_or_default();
    let kind = str_of(&type_meta, 2)?.unwrap_or_default();
    let raw = fields(bytes_of(&unknown, 2).unwrap_or_default())?;
    let mut obj = match kind.as_str() {
        "Namespace" | "ServiceAccount" => json!({"metadata": metadata(&raw)?}),
        "ConfigMap" => {
            let mut o = json!({"metadata": metadata(&raw)?});
            let data = map_of(&raw, 2, false)?;
            if !data.is_empty() {
                o["data"] = Value::Object(data);
            }
            let binary = map_of(&raw, 3, true)?;
            if !binary.is_empty() {
                o["binaryData"] = Value::Object(binary);
            }
            o
        }
        "Secret" => {
            let mut o = json!({"metadata": metadata(&raw)?});
            let data = map_of(&raw, 2, true)?;
            if !data.is_empty() {
                o["data"] = Value::Object(data);
            }
            if let Some(t) = str_of(&raw, 3)? {
                o["type"] = json!(t);
            }
            o
        }
        "SelfSubjectAccessReview" => {
            let spec = fields(bytes_of(&raw, 2).unwrap_or_default())?;
            let mut o = json!({"metadata": metadata(&raw)?, "spec": {}});
            if let Some(ra) = bytes_of(&spec, 1) {
                let ra = fields(ra)?;
                let mut attrs = Map::new();
                for (n, key) in [
                    (1, "namespace"),
                    (2, "verb"),
                    (3, "group"),
                    (4, "version"),
                    (5, "resource"),
                    (6, "subresource"),
                    (7, "name"),
                ] {
                    if let Some(v) = str_of(&ra, n)? {
                        attrs.insert(key.into(), json!(v));
                    }
                }
                o["spec"]["resourceAttributes"] = Value::Object(attrs);
            }
            if let Some(nra) = bytes_of(&spec, 2) {
                let nra = fields(nra)?;
                o["spec"]["nonResourceAttributes"] =
                    json!({"path": str_of(&nra, 1)?, "verb": str_of(&nra, 2)?});
            }
            o
        }
        "TokenRequest" => {
            let spec = fields(bytes_of(&raw, 2).unwrap_or_default())?;
            let mut o = json!({"metadata": metadata(&raw)?, "spec": {}});
            let audiences = spec
                .iter()
                .filter_map(|(k, f)| match f {
                    Field::Bytes(b) if *k == 1 => Some(string(b)),
                    _ => None,
                })
                .collect::<Result<Vec<String>, ApiError>>()?;
            if !audiences.is_empty() {
                o["spec"]["audiences"] = json!(audiences);
            }
            if let Some(secs) = spec.iter().rev().find_map(|(k, f)| match f {
                Field::Varint(v) if *k == 4 => Some(*v as i64),
                _ => None,
            }) {
                o["spec"]["expirationSeconds"] = json!(secs);
            }
            if let Some(b) = bytes_of(&spec, 3) {
                let b = fields(b)?;
                let mut r = Map::new();
                for (n, key) in [(1, "kind"), (2, "apiVersion"), (3, "name"), (4, "uid")] {
                    if let Some(v) = str_of(&b, n)? {
                        r.insert(key.into(), json!(v));
                    }
                }
                o["spec"]["boundObjectRef"] = Value::Object(r);
            }
            o
        }
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "protobuf bodies are only understood for Namespace, ServiceAccount, ConfigMap, Secret, SelfSubjectAccessReview and TokenRequest, not {other:?}; send JSON instead"
            )));
        }
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8];
        v.push(payload.len() as u8);
        v.extend_from_slice(payload);
        v
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let tm = [ld(1, api_version.as_bytes()), ld(2, kind.as_bytes())].concat();
        let mut out = b"k8s\0".to_vec();
        out.extend(ld(1, &tm));
        out.extend(ld(2, raw));
        out
    }

    #[test]
    fn token_request_with_audiences_lifetime_and_binding() {
        let bound = [ld(1, b"Pod"), ld(2, b"v1"), ld(3, b"web")].concat();
        let spec = [
            ld(1, b"a1"),
            ld(1, b"a2"),
            vec![4 << 3, 0x90, 0x1c],
            ld(3, &bound),
        ]
        .concat();
        let raw = [ld(1, &[]), ld(2, &spec)].concat();
        let obj = decode(&envelope("authentication.k8s.io/v1", "TokenRequest", &raw)).expect("decodes");
        assert_eq!(obj["spec"]["audiences"], json!(["a1", "a2"]));
        assert_eq!(obj["spec"]["expirationSeconds"], 3600);
        assert_eq!(
            obj["spec"]["boundObjectRef"],
            json!({"kind": "Pod", "apiVersion": "v1", "name": "web"})
        );
    }

    #[test]
    fn configmap_with_labels_and_data() {
        let meta = [ld(1, b"cfg"), ld(11, &[ld(1, b"app"), ld(2, b"web")].concat())].concat();
        let raw = [ld(1, &meta), ld(2, &[ld(1, b"k"), ld(2, b"v")].concat())].concat();
        let obj = decode(&envelope("v1", "ConfigMap", &raw)).expect("decodes");
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "labels": {"app": "web"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn secret_data_is_base64_like_json() {
        let raw = [
            ld(1, &ld(1, b"s")),
            ld(2, &[ld(1, b"pw"), ld(2, b"hunter2")].concat()),
            ld(3, b"Opaque"),
        ]
        .concat();
        let obj = decode(&envelope("v1", "Secret", &raw)).expect("decodes");
        assert_eq!(obj["data"]["pw"], "aHVudGVyMg==");
        assert_eq!(obj["type"], "Opaque");
    }

    #[test]
    fn access_review_attributes() {
        let ra = [
            ld(1, b"broker"),
            ld(2, b"create"),
            ld(3, b"submariner.io"),
            ld(5, b"endpoints"),
        ]
        .concat();
        let raw = [ld(1, b""), ld(2, &ld(1, &ra))].concat();
        let obj = decode(&envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &raw,
        ))
        .expect("decodes");
        assert_eq!(
            obj["spec"]["resourceAttributes"],
            json!({"namespace": "broker", "verb": "create", "group": "submariner.io", "resource": "endpoints"})
        );
    }

    #[test]
    fn garbage_is_a_400_not_a_panic() {
        for body in [
            &b"nope"[..],
            b"k8s\0\x0a\xff",
            b"k8s\0\x0a\x05ab",
            b"k8s\0\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert_eq!(decode(body).expect_err("rejected").code, 400, "{body:?}");
        }
        assert_eq!(
            decode(&envelope("v1", "Pod", b""))
                .expect_err("unsupported kind")
                .code,
            415
        );
    }
}
