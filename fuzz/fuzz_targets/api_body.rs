//! Request bodies of `subsea apiserver`: protobuf envelopes and the three patch kinds applied
//! to a real-looking object, never panicking whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsea_store::{patch, protobuf};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    if kind % 4 == 0 {
        let _ = protobuf::decode(body);
        return;
    }
    let Ok(p) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let mut doc = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "default", "labels": {"x": "1"}},
        "data": {"k": "v"}, "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}});
    match kind % 4 {
        1 => patch::merge(&mut doc, &p),
        2 => {
            let _ = patch::json_patch(&mut doc, &p);
        }
        _ => {
            let _ = patch::strategic_merge(&mut doc, &p);
        }
    }
});
