//! Hand-built wire bytes (independent of the encoder) decode as Kubernetes would; every served
//! built-in kind round-trips JSON → protobuf → JSON, and its JSON is what k8s-openapi's type for
//! the kind reads and writes back unchanged (so the proto field names are the JSON names).

use base64::Engine;
use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::wellknown::{self, Special};
use super::*;
use crate::registry::Registry;

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
        decode(&envelope("submariner.io/v1", "Endpoint", b""))
            .expect_err("a custom resource has no protobuf form")
            .code,
        415
    );
    assert_eq!(
        decode(&envelope("v1", "Pod", b"\x0a\x02\x0a"))
            .expect_err("truncated metadata")
            .code,
        400
    );
}

/// A JSON value for every field of `desc` (one list item, one map entry), each message type once
/// per path (`within` holds the enclosing ones) so recursive types end.
fn sample(desc: &MessageDescriptor, within: &mut Vec<String>, n: &mut i64) -> Value {
    if let Some(s) = wellknown::special(desc.full_name()) {
        *n += 1;
        return match s {
            Special::Time => json!("2024-05-06T07:08:09Z"),
            Special::MicroTime => json!("2024-05-06T07:08:09.123456Z"),
            Special::Duration => json!("1m30.5s"),
            Special::Quantity => json!("250m"),
            Special::IntOrString if *n % 2 == 0 => json!("http"),
            Special::IntOrString => json!(8080),
            Special::Raw(_) => json!({"a": [1, "b"]}),
            Special::Items | Special::SchemaOrStringArray => json!(["a", "b"]),
            Special::SchemaOrBool => json!(false),
            Special::SchemaOrArray => json!({"type": "string"}),
        };
    }
    let mut out = Map::new();
    for f in desc.fields() {
        let mut one = |n: &mut i64| -> Option<Value> {
            let kind = if f.is_map() {
                f.kind().as_message()?.map_entry_value_field().kind()
            } else {
                f.kind()
            };
            *n += 1;
            Some(match kind {
                Kind::Message(m) if within.iter().any(|w| w == m.full_name()) => return None,
                Kind::Message(m) => {
                    within.push(m.full_name().to_string());
                    let v = sample(&m, within, n);
                    within.pop();
                    v
                }
                Kind::String => json!(format!("s{n}")),
                Kind::Bool => json!(*n % 2 == 0),
                Kind::Int32 | Kind::Int64 => json!(*n),
                Kind::Double | Kind::Float => json!(*n as f64 + 0.5),
                Kind::Bytes => json!(base64::engine::general_purpose::STANDARD.encode(format!("b{n}"))),
                other => panic!("no sample for {other:?} in {}", desc.full_name()),
            })
        };
        let Some(v) = one(n) else { continue };
        if wellknown::inline(desc.full_name(), f.name()) {
            out.extend(v.as_object().cloned().unwrap_or_default());
            continue;
        }
        let v = if f.is_map() {
            json!({"key": v})
        } else if f.is_list() {
            json!([v])
        } else {
            v
        };
        out.insert(wellknown::json_name(desc.full_name(), f.name()).into_owned(), v);
    }
    Value::Object(out)
}

/// The object through k8s-openapi's type for the kind: what Kubernetes' JSON says it holds.
fn typed(v: &Value) -> Value {
    use k8s_openapi::api::{
        admissionregistration, apps, authentication, authorization, autoscaling, batch, coordination, core,
        discovery, networking, policy, rbac, scheduling,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    macro_rules! via {
        ($($kind:literal $(if $cond:expr)? => $t:ty),* $(,)?) => {
            match v["kind"].as_str().unwrap_or_default() {
                $($kind $(if $cond)? => {
                    let t: $t = serde_json::from_value(v.clone())
                        .unwrap_or_else(|e| panic!("{} does not read as {}: {e}", $kind, stringify!($t)));
                    serde_json::to_value(t).expect("serializes")
                })*
                other => panic!("no k8s-openapi type listed for {other}"),
            }
        };
    }
    via! {
        "Namespace" => core::v1::Namespace,
        "ConfigMap" => core::v1::ConfigMap,
        "Secret" => core::v1::Secret,
        "ServiceAccount" => core::v1::ServiceAccount,
        "Service" => core::v1::Service,
        "Node" => core::v1::Node,
        "Pod" => core::v1::Pod,
        "Event" if v["apiVersion"] == "v1" => core::v1::Event,
        "Event" => k8s_openapi::api::events::v1::Event,
        "ValidatingAdmissionPolicy" => admissionregistration::v1::ValidatingAdmissionPolicy,
        "ValidatingAdmissionPolicyBinding" => admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        "ResourceQuota" => core::v1::ResourceQuota,
        "EndpointSlice" => discovery::v1::EndpointSlice,
        "Lease" => coordination::v1::Lease,
        "Deployment" => apps::v1::Deployment,
        "DaemonSet" => apps::v1::DaemonSet,
        "StatefulSet" => apps::v1::StatefulSet,
        "ReplicaSet" => apps::v1::ReplicaSet,
        "Job" => batch::v1::Job,
        "CronJob" => batch::v1::CronJob,
        "PodDisruptionBudget" => policy::v1::PodDisruptionBudget,
        "PriorityClass" => scheduling::v1::PriorityClass,
        "NetworkPolicy" => networking::v1::NetworkPolicy,
        "Ingress" => networking::v1::Ingress,
        "Role" => rbac::v1::Role,
        "ClusterRole" => rbac::v1::ClusterRole,
        "RoleBinding" => rbac::v1::RoleBinding,
        "ClusterRoleBinding" => rbac::v1::ClusterRoleBinding,
        "CustomResourceDefinition" => ext::CustomResourceDefinition,
        "TokenRequest" => authentication::v1::TokenRequest,
        "TokenReview" => authentication::v1::TokenReview,
        "SubjectAccessReview" => authorization::v1::SubjectAccessReview,
        "SelfSubjectAccessReview" => authorization::v1::SelfSubjectAccessReview,
        "LocalSubjectAccessReview" => authorization::v1::LocalSubjectAccessReview,
        "SelfSubjectRulesReview" => authorization::v1::SelfSubjectRulesReview,
        "Scale" => autoscaling::v1::Scale,
    }
}

/// The kinds clients send or receive besides the stored ones: reviews, token requests, Scale.
const NOT_STORED: &[(&str, &str)] = &[
    ("authentication.k8s.io/v1", "TokenRequest"),
    ("authentication.k8s.io/v1", "TokenReview"),
    ("authorization.k8s.io/v1", "SubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
    ("autoscaling/v1", "Scale"),
];

fn served_kinds() -> Vec<(String, String)> {
    let registry = Registry::with_built_ins();
    let mut kinds: Vec<(String, String)> = registry
        .all()
        .iter()
        .filter(|r| !r.custom)
        .map(|r| {
            let av = if r.group.is_empty() {
                r.version.clone()
            } else {
                format!("{}/{}", r.group, r.version)
            };
            (av, r.kind.clone())
        })
        .collect();
    kinds.extend(NOT_STORED.iter().map(|(a, k)| (a.to_string(), k.to_string())));
    kinds
}

#[test]
fn every_served_kind_round_trips_and_reads_as_its_kubernetes_type() {
    let kinds = served_kinds();
    assert!(kinds.len() > 25, "{kinds:?}");
    let missing: Vec<_> = kinds
        .iter()
        .filter(|(av, k)| descriptor(av, k).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "served kinds without a protobuf definition: {missing:?}"
    );
    for (api_version, kind) in kinds {
        let desc = descriptor(&api_version, &kind).expect("checked above");
        let mut obj = sample(&desc, &mut vec![desc.full_name().to_string()], &mut 0);
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        let wire = encode(&obj).unwrap_or_else(|e| panic!("{kind}: {}", e.message));
        assert!(wire.starts_with(b"k8s\0"), "{kind}");
        let back = decode(&wire).unwrap_or_else(|e| panic!("{kind}: {}", e.message));
        assert_eq!(back, obj, "{kind} round trip");
        let mut differences = Vec::new();
        diff(&typed(&obj), &obj, &kind, &mut differences);
        assert!(
            differences.is_empty(),
            "{kind}: the JSON differs from k8s-openapi's {kind} at {differences:#?}"
        );
    }
}

#[test]
fn unset_fields_stay_unset_and_zero_values_survive() {
    let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {}},
        "spec": {"replicas": 0, "paused": false,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx",
                    "ports": [{"containerPort": 80}]}]}}}});
    let back = decode(&encode(&obj).expect("encodes")).expect("decodes");
    assert_eq!(back["spec"]["replicas"], 0, "an explicit 0 is kept");
    assert_eq!(back["spec"]["paused"], false);
    assert!(back["metadata"].get("namespace").is_none(), "{back}");
    assert!(back["spec"].get("strategy").is_none(), "{back}");
    assert_eq!(
        back["spec"]["template"]["spec"]["containers"][0]["ports"][0],
        json!({"containerPort": 80})
    );
}

#[test]
fn special_forms_match_kubernetes_json() {
    let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
        "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
            "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
            "readinessProbe": {"tcpSocket": {"port": 8080}}}]}});
    let back = decode(&encode(&obj).expect("encodes")).expect("decodes");
    assert_eq!(back, obj);
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l"}, "spec": {"renewTime": "2024-01-02T03:04:05.250000Z"}});
    assert_eq!(decode(&encode(&lease).expect("encodes")).expect("decodes"), lease);
}

#[test]
fn go_durations() {
    for (ns, text) in [
        (0, "0s"),
        (1_500_000, "1.5ms"),
        (999, "999ns"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-2_000_000_000, "-2s"),
    ] {
        assert_eq!(wellknown::go_duration(ns), text);
        assert_eq!(wellknown::parse_go_duration(text), Ok(ns), "{text}");
    }
    assert!(wellknown::parse_go_duration("soon").is_err());
    assert!(wellknown::parse_go_duration("5").is_err());
}

#[test]
fn schema_field_names() {
    for (proto, json) in [
        ("ref", "$ref"),
        ("schema", "$schema"),
        (
            "xKubernetesPreserveUnknownFields",
            "x-kubernetes-preserve-unknown-fields",
        ),
        ("type", "type"),
    ] {
        let full = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
        assert_eq!(wellknown::json_name(full, proto), json);
        assert_eq!(wellknown::proto_name(full, json), proto);
    }
}

/// Paths where `a` (through k8s-openapi) and `b` differ, with both values. k8s-openapi writes
/// apiVersion and kind into embedded objects (a StatefulSet's claim templates) that neither the
/// proto nor Kubernetes' JSON carries; those are not differences.
fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                if (k == "apiVersion" || k == "kind") && !y.contains_key(k) {
                    continue;
                }
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                diff(va, vb, &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(va, vb, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

#[test]
fn empty_strings_go_wrote_for_unset_fields_are_dropped_but_map_values_stay() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "", "generateName": "", "labels": {"tier": ""}},
        "data": {"empty": ""}});
    let back = decode(&encode(&obj).expect("encodes")).expect("decodes");
    assert_eq!(
        back,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"tier": ""}}, "data": {"empty": ""}})
    );
    let tmpl = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
        "spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"storageClassName": ""}}]}});
    let back = decode(&encode(&tmpl).expect("encodes")).expect("decodes");
    assert_eq!(
        back["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
        ""
    );
}

#[test]
fn watch_frames_are_length_prefixed_watch_events_holding_the_full_encoding() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
    let object = encode(&cm).expect("encodes");
    let body = [ld(1, b"MODIFIED"), ld(2, &ld(1, &object))].concat();
    let mut want = (body.len() as u32).to_be_bytes().to_vec();
    want.extend(body);
    assert_eq!(encode_watch_event("MODIFIED", &cm).expect("frame"), want);
    let crd_object = json!({"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}});
    assert_eq!(
        encode_watch_event("ADDED", &crd_object)
            .expect_err("no proto")
            .code,
        406
    );
}
