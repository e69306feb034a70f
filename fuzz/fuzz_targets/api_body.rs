//! Request bodies of `subsea apiserver`: protobuf envelopes, JSON and YAML documents through the
//! decoder and the built-in kinds' checks, and the three patch kinds applied to a real-looking
//! object, never panicking whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsea_store::{body, builtin, patch, protobuf};

const KINDS: &[&str] = &["ConfigMap", "Secret", "Service", "Pod", "EndpointSlice", "Lease", "Role", "Node"];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 6 {
        0 => {
            let _ = protobuf::decode(body);
            return;
        }
        4 | 5 => {
            let format = if kind % 6 == 4 { body::Format::Yaml } else { body::Format::Json };
            if let Ok(obj) = body::decode(format, body) {
                let k = KINDS[usize::from(kind / 6) % KINDS.len()];
                let _ = builtin::check(k, &obj);
            }
            return;
        }
        _ => {}
    }
    let Ok(p) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let mut doc = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "default", "labels": {"x": "1"}},
        "data": {"k": "v"}, "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}});
    match kind % 6 {
        1 => patch::merge(&mut doc, &p),
        2 => {
            let _ = patch::json_patch(&mut doc, &p);
        }
        _ => {
            let _ = patch::strategic_merge(&mut doc, &p);
        }
    }
});
