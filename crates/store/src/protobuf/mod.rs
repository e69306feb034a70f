//! Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`) for every built-in kind
//! the server serves, read from Kubernetes' own `.proto` definitions (crates/store/proto, compiled
//! by build.rs) through prost-reflect, instead of a decoder written per type.
//!
//! Wire format: the magic `k8s\0`, then a `runtime.Unknown` message whose `typeMeta` names the
//! kind and whose `raw` field holds the object's own protobuf encoding. The JSON side is the form
//! the rest of the server works with; [`wellknown`] maps the types whose JSON is not their
//! message shape (Time, MicroTime, Duration, Quantity, IntOrString, RawExtension, FieldsV1, the
//! CRD schema's JSON and Or-types, Verbs and ExtraValue lists).

mod from_json;
pub mod openapi;
mod to_json;
mod wellknown;

#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value as Pb};
use serde_json::{Value, json};

use crate::error::ApiError;

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/k8s.bin"))[..])
        .expect("the descriptor set build.rs compiled decodes")
});

/// API group → the proto package holding its kinds (the version is appended).
const PACKAGES: &[(&str, &str)] = &[
    ("", "k8s.io.api.core"),
    ("apps", "k8s.io.api.apps"),
    ("batch", "k8s.io.api.batch"),
    ("autoscaling", "k8s.io.api.autoscaling"),
    ("policy", "k8s.io.api.policy"),
    ("coordination.k8s.io", "k8s.io.api.coordination"),
    ("discovery.k8s.io", "k8s.io.api.discovery"),
    ("networking.k8s.io", "k8s.io.api.networking"),
    ("rbac.authorization.k8s.io", "k8s.io.api.rbac"),
    ("scheduling.k8s.io", "k8s.io.api.scheduling"),
    ("authentication.k8s.io", "k8s.io.api.authentication"),
    ("authorization.k8s.io", "k8s.io.api.authorization"),
    ("events.k8s.io", "k8s.io.api.events"),
    ("admissionregistration.k8s.io", "k8s.io.api.admissionregistration"),
    (
        "apiextensions.k8s.io",
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions",
    ),
    ("meta.k8s.io", "k8s.io.apimachinery.pkg.apis.meta"),
];

fn bad(what: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("failed to decode the protobuf request body: {what}"))
}

/// The message of `kind` in `api_version`, if Kubernetes defines one for a group served here.
/// Status, DeleteOptions and the other meta kinds are found under `v1` too, as clients send them.
pub fn descriptor(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let in_group = PACKAGES
        .iter()
        .find(|(g, _)| *g == group)
        .and_then(|(_, pkg)| POOL.get_message_by_name(&format!("{pkg}.{version}.{kind}")));
    in_group.or_else(|| {
        (group.is_empty() && version == "v1")
            .then(|| POOL.get_message_by_name(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}")))
            .flatten()
    })
}

/// Whether objects of this kind can be encoded as protobuf.
pub fn understands(api_version: &str, kind: &str) -> bool {
    descriptor(api_version, kind).is_some()
}

fn unknown() -> MessageDescriptor {
    POOL.get_message_by_name("k8s.io.apimachinery.pkg.runtime.Unknown")
        .expect("runtime.Unknown is in the descriptor set")
}

fn string_field(m: &DynamicMessage, name: &str) -> String {
    m.get_field_by_name(name)
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Decodes a `k8s\0`-prefixed protobuf body into the JSON object it encodes. 400 for bytes
/// that are not a valid encoding, naming where it broke; 415 for a kind without a definition.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing the k8s protobuf magic prefix"))?;
    let unknown = DynamicMessage::decode(unknown(), envelope).map_err(bad)?;
    let type_meta = unknown
        .get_field_by_name("typeMeta")
        .and_then(|v| v.as_message().cloned())
        .filter(|m| m.fields().next().is_some())
        .ok_or_else(|| bad("no typeMeta"))?;
    let (api_version, kind) = (
        string_field(&type_meta, "apiVersion"),
        string_field(&type_meta, "kind"),
    );
    let encoding = string_field(&unknown, "contentEncoding");
    if !encoding.is_empty() {
        return Err(ApiError::unsupported_media_type(format!(
            "protobuf bodies with contentEncoding {encoding:?} are not supported; send them unencoded"
        )));
    }
    let desc = descriptor(&api_version, &kind).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "no protobuf definition of {kind:?} in {api_version:?} is served here; send JSON instead"
        ))
    })?;
    let raw = unknown
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let msg = DynamicMessage::decode(desc, raw).map_err(|e| bad(format!("{kind}: {e}")))?;
    let mut obj = to_json::message(&msg)?.unwrap_or_else(|| json!({}));
    if !obj.is_object() {
        return Err(bad(format!("{kind} does not decode to an object")));
    }
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

/// Encodes a JSON object of a built-in kind as a `k8s\0`-prefixed protobuf body. Fields the
/// kind does not define are dropped, as kube-apiserver would have dropped them on decode.
pub fn encode(obj: &Value) -> Result<Vec<u8>, ApiError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let desc = descriptor(api_version, kind).ok_or_else(|| {
        ApiError::not_acceptable(format!(
            "no protobuf definition of {kind:?} in {api_version:?}; ask for application/json"
        ))
    })?;
    let msg = from_json::message(&desc, obj, kind)?;
    let unknown_desc = unknown();
    let type_meta_desc = unknown_desc
        .get_field_by_name("typeMeta")
        .and_then(|f| f.kind().as_message().cloned())
        .ok_or_else(|| ApiError::internal("runtime.Unknown has no typeMeta message"))?;
    let mut type_meta = DynamicMessage::new(type_meta_desc);
    type_meta.set_field_by_name("apiVersion", Pb::String(api_version.into()));
    type_meta.set_field_by_name("kind", Pb::String(kind.into()));
    let mut unknown = DynamicMessage::new(unknown_desc);
    unknown.set_field_by_name("typeMeta", Pb::Message(type_meta));
    unknown.set_field_by_name("raw", Pb::Bytes(msg.encode_to_vec().into()));
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    Ok(out)
}

/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// One frame of a protobuf watch stream, as client-go's length-delimited framer reads it: a
/// 4-byte big-endian length, then a `meta.v1.WatchEvent` (not prefixed) whose `object.raw` is
/// the object's full encoding ([`encode`], magic and envelope included).
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, ApiError> {
    let event_desc = POOL
        .get_message_by_name("k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent")
        .ok_or_else(|| ApiError::internal("meta.v1.WatchEvent is not in the descriptor set"))?;
    let raw_desc = event_desc
        .get_field_by_name("object")
        .and_then(|f| f.kind().as_message().cloned())
        .ok_or_else(|| ApiError::internal("WatchEvent has no object message"))?;
    let mut raw = DynamicMessage::new(raw_desc);
    raw.set_field_by_name("raw", Pb::Bytes(encode(object)?.into()));
    let mut event = DynamicMessage::new(event_desc);
    event.set_field_by_name("type", Pb::String(event_type.into()));
    event.set_field_by_name("object", Pb::Message(raw));
    let body = event.encode_to_vec();
    let len = u32::try_from(body.len()).map_err(|_| ApiError::internal("a watch event larger than 4 GiB"))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend(body);
    Ok(out)
}
