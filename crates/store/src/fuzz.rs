//! Randomised robustness checks: arbitrary JSON bodies and patches go through admission, the
//! patch engines and the store without panicking, and every rejection is a client error.
//!
//! A small deterministic generator stands in for a coverage-guided fuzzer (which needs a
//! nightly toolchain); seeds are fixed so a failure reproduces.

use serde_json::{Map, Value, json};

use crate::admit::{FieldValidation, admit_custom, check_type_meta};
use crate::patch;
use crate::registry::Registry;
use crate::store::{Part, Preconditions, Store};

/// xorshift64*: tiny, deterministic, good enough to explore shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "resourceVersion",
    "generateName",
    "spec",
    "status",
    "size",
    "data",
    "op",
    "path",
    "value",
    "from",
    "$patch",
    "$retainKeys",
    "ports",
    "port",
    "$setElementOrder/ports",
    "conditions",
    "type",
];
const STRINGS: &[&str] = &[
    "",
    "a",
    "default",
    "v1",
    "ConfigMap",
    "Widget",
    "example.com/v1",
    "/spec/size",
    "/metadata/labels/x",
    "/-",
    "add",
    "remove",
    "replace",
    "test",
    "move",
    "copy",
    "delete",
    "1",
    "-x-",
    "A_B",
];

fn value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth == 0 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.below(1000) as i64 - 500),
        3 => json!(rng.below(1000) as f64 / 7.0),
        4 => json!(rng.pick(STRINGS)),
        5 | 6 => {
            let mut m = Map::new();
            for _ in 0..rng.below(5) {
                m.insert(rng.pick(KEYS).to_string(), value(rng, depth - 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..rng.below(4)).map(|_| value(rng, depth - 1)).collect()),
    }
}

fn widget_registry() -> Registry {
    let mut r = Registry::with_built_ins();
    r.set_crd(&json!({"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 0, "default": 1},
                    "name": {"type": "string", "pattern": "^[a-z]+$"},
                    "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}}}},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}}));
    r
}

#[test]
fn random_bodies_and_patches_never_panic() {
    let reg = widget_registry();
    let infos: Vec<_> = reg
        .all()
        .iter()
        .filter(|i| i.plural == "widgets" || i.plural == "configmaps")
        .cloned()
        .collect();
    let ns_info = reg.find("", "v1", "namespaces").expect("namespaces").clone();
    let mut store = Store::new();
    store
        .create(&ns_info, "", json!({"metadata": {"name": "default"}}), 0, false)
        .expect("namespace");
    let mut rng = Rng(0x5eed_5eed_1234_5678);
    for round in 0..4000 {
        let info = &infos[round % infos.len()];
        let mut body = value(&mut rng, 4);
        if rng.below(2) == 0 {
            if let Some(m) = body.as_object_mut() {
                m.insert("metadata".into(), json!({"name": format!("o{}", rng.below(8))}));
            }
        }
        let fv = [
            FieldValidation::Strict,
            FieldValidation::Warn,
            FieldValidation::Ignore,
        ][rng.below(3) as usize];
        let admitted = check_type_meta(info, &mut body).and_then(|_| admit_custom(info, &mut body, fv));
        match admitted {
            Err(e) => assert!(
                matches!(e.code, 400 | 422),
                "admission answered {} for {body}",
                e.code
            ),
            Ok(_) => {
                let name = body
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("o0")
                    .to_string();
                let result = match rng.below(3) {
                    0 => store.create(info, "default", body.clone(), 0, false).map(|_| ()),
                    1 => store
                        .update(info, "default", &name, body.clone(), Part::Main, false)
                        .map(|_| ()),
                    _ => store
                        .update(info, "default", &name, body.clone(), Part::Status, false)
                        .map(|_| ()),
                };
                if let Err(e) = result {
                    assert!(
                        matches!(e.code, 400 | 403 | 404 | 409 | 422),
                        "store answered {} for {body}",
                        e.code
                    );
                }
            }
        }
        let mut target = value(&mut rng, 3);
        let p = value(&mut rng, 4);
        patch::merge(&mut target.clone(), &p);
        let _ = patch::json_patch(&mut target.clone(), &p);
        let _ = patch::strategic_merge(&mut target, &p);
        if rng.below(10) == 0 {
            let name = format!("o{}", rng.below(8));
            let _ = store.delete(info, "default", &name, &Preconditions::default(), 0, false);
        }
    }
}
