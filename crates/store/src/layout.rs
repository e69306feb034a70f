//! How objects are laid out in etcd, the same way kube-apiserver lays them out, and what a
//! write's events become as one etcd transaction. Pure: no client, no I/O.
//!
//! Keys: built-in types `<prefix>/<resource>/<namespace>/<name>` (cluster-scoped types without
//! the namespace), with kube-apiserver's exceptions (`services/specs`, `services/endpoints`,
//! `minions` for Nodes, `controllers` for ReplicationControllers, `ingress`); the API-extension
//! groups and custom resources `<prefix>/<group>/<plural>/…`. Values are the object's JSON with
//! `metadata.resourceVersion` removed: the resourceVersion *is* the key's etcd `mod_revision`,
//! as with kube-apiserver's `--storage-media-type=application/json`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::store::{Event, EventType, ObjectKey};

/// kube-apiserver's storage directories that are not the plural (its
/// `specialDefaultResourcePrefixes`).
const SPECIAL: &[(&str, &str)] = &[
    ("/replicationcontrollers", "controllers"),
    ("/endpoints", "services/endpoints"),
    ("/nodes", "minions"),
    ("/services", "services/specs"),
    ("networking.k8s.io/ingresses", "ingress"),
    ("extensions/ingresses", "ingress"),
];

/// Built-in groups stored under `<group>/<plural>` rather than the bare plural.
const GROUP_QUALIFIED: &[&str] = &["apiextensions.k8s.io", "apiregistration.k8s.io"];

/// The key layout under one prefix.
#[derive(Clone, Debug)]
pub struct Layout {
    prefix: String,
    /// Storage directory of each built-in type that is stored by its bare plural, reversed.
    bare: BTreeMap<String, String>,
}

/// One key a write changes.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyWrite {
    /// The etcd key.
    pub key: String,
    /// What the key must hold for the write to apply.
    pub expect: Expect,
    /// The new value, or `None` to delete the key.
    pub value: Option<String>,
}

/// The state a write was decided on, checked by the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key does not exist.
    Absent,
    /// The key was last written at this revision.
    ModRevision(u64),
}

/// Why a stored value cannot be read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadValue(pub String);

impl Layout {
    /// The layout under `prefix` (`/registry` by default), for the built-in types `builtin`
    /// (type keys `group/plural`).
    pub fn new<'a>(prefix: &str, builtin: impl IntoIterator<Item = &'a str>) -> Self {
        let prefix = format!("/{}", prefix.trim_matches('/'));
        let mut bare = BTreeMap::new();
        for ty in builtin {
            let (group, plural) = ty.split_once('/').unwrap_or(("", ty));
            if SPECIAL.iter().any(|(t, _)| *t == ty) || GROUP_QUALIFIED.contains(&group) {
                continue;
            }
            // Core first: `events` of events.k8s.io share the core type's storage.
            bare.entry(plural.to_string()).or_insert_with(|| ty.to_string());
        }
        Self { prefix, bare }
    }

    /// The prefix every key starts with, ending in `/`.
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// The key that guards Service IP allocation (kube-apiserver's allocator key).
    pub fn service_ips_key(&self) -> String {
        format!("{}/ranges/serviceips", self.prefix)
    }

    /// The storage directory of a type, relative to the prefix.
    fn dir(&self, ty: &str) -> String {
        if let Some((_, d)) = SPECIAL.iter().find(|(t, _)| *t == ty) {
            return d.to_string();
        }
        let (group, plural) = ty.split_once('/').unwrap_or(("", ty));
        if self.bare.get(plural).is_some_and(|t| t == ty) || group.is_empty() {
            plural.to_string()
        } else {
            format!("{group}/{plural}")
        }
    }

    /// The key of one object.
    pub fn key(&self, k: &ObjectKey) -> String {
        if k.ns.is_empty() {
            format!("{}/{}/{}", self.prefix, self.dir(&k.ty), k.name)
        } else {
            format!("{}/{}/{}/{}", self.prefix, self.dir(&k.ty), k.ns, k.name)
        }
    }

    /// The object a key names, or `None` for a key that is not an object of ours.
    pub fn parse(&self, key: &str) -> Option<ObjectKey> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (ty, tail) = if let Some((t, d)) = SPECIAL
            .iter()
            .filter(|(t, _)| !t.starts_with("extensions/"))
            .find(|(_, d)| rest.starts_with(&format!("{d}/")))
        {
            (t.to_string(), &parts[d.split('/').count()..])
        } else if parts[0].contains('.') {
            (format!("{}/{}", parts[0], parts.get(1)?), parts.get(2..)?)
        } else {
            (self.bare.get(parts[0])?.clone(), &parts[1..])
        };
        let (ns, name) = match tail {
            [name] => ("", *name),
            [ns, name] => (*ns, *name),
            _ => return None,
        };
        if name.is_empty() {
            return None;
        }
        Some(ObjectKey {
            ty,
            ns: ns.to_string(),
            name: name.to_string(),
        })
    }

    /// What a write's events become: one change per key, checked against the state the write
    /// read (the first event's previous object), writing the last event's object.
    pub fn plan(&self, events: &[Event]) -> Vec<KeyWrite> {
        let mut order: Vec<String> = Vec::new();
        let mut by_key: BTreeMap<String, KeyWrite> = BTreeMap::new();
        for ev in events {
            let key = self.key(&crate::store::key_of(&ev.ty, &ev.object));
            let value = match ev.kind {
                EventType::Deleted => None,
                _ => Some(storage_value(&ev.object)),
            };
            match by_key.get_mut(&key) {
                Some(w) => w.value = value,
                None => {
                    let expect = match ev.prev.as_deref().and_then(revision_of) {
                        Some(rev) => Expect::ModRevision(rev),
                        None => Expect::Absent,
                    };
                    order.push(key.clone());
                    by_key.insert(key.clone(), KeyWrite { key, expect, value });
                }
            }
        }
        order.into_iter().filter_map(|k| by_key.remove(&k)).collect()
    }
}

/// The resourceVersion of an object, as a number.
pub fn revision_of(obj: &Value) -> Option<u64> {
    obj.pointer("/metadata/resourceVersion")?.as_str()?.parse().ok()
}

/// An object as stored: its JSON without `metadata.resourceVersion`.
pub fn storage_value(obj: &Value) -> String {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_string(&o).unwrap_or_default()
}

/// A stored value read back at its `mod_revision`.
pub fn object_from_storage(bytes: &[u8], mod_revision: u64) -> Result<Value, BadValue> {
    let mut v: Value = serde_json::from_slice(bytes).map_err(|e| BadValue(format!("not JSON: {e}")))?;
    let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(BadValue("no metadata object".into()));
    };
    m.insert("resourceVersion".into(), json!(mod_revision.to_string()));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn layout() -> Layout {
        Layout::new(
            "/registry",
            [
                "/configmaps",
                "/namespaces",
                "/services",
                "/endpoints",
                "/nodes",
                "/events",
                "events.k8s.io/events",
                "apps/deployments",
                "networking.k8s.io/ingresses",
                "rbac.authorization.k8s.io/clusterroles",
                "apiextensions.k8s.io/customresourcedefinitions",
            ],
        )
    }

    fn k(ty: &str, ns: &str, name: &str) -> ObjectKey {
        ObjectKey {
            ty: ty.into(),
            ns: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn keys_follow_kube_apiserver() {
        let l = layout();
        let cases = [
            (k("/configmaps", "default", "x"), "/registry/configmaps/default/x"),
            (k("/namespaces", "", "x"), "/registry/namespaces/x"),
            (
                k("/services", "default", "web"),
                "/registry/services/specs/default/web",
            ),
            (
                k("/endpoints", "default", "web"),
                "/registry/services/endpoints/default/web",
            ),
            (k("/nodes", "", "n1"), "/registry/minions/n1"),
            (k("apps/deployments", "ns", "d"), "/registry/deployments/ns/d"),
            (
                k("networking.k8s.io/ingresses", "ns", "i"),
                "/registry/ingress/ns/i",
            ),
            (
                k("rbac.authorization.k8s.io/clusterroles", "", "admin"),
                "/registry/clusterroles/admin",
            ),
            (
                k("apiextensions.k8s.io/customresourcedefinitions", "", "a.b.io"),
                "/registry/apiextensions.k8s.io/customresourcedefinitions/a.b.io",
            ),
            (
                k("submariner.io/endpoints", "submariner-k8s-broker", "c1"),
                "/registry/submariner.io/endpoints/submariner-k8s-broker/c1",
            ),
        ];
        for (obj, key) in cases {
            assert_eq!(l.key(&obj), key);
            assert_eq!(l.parse(key), Some(obj), "{key}");
        }
    }

    #[test]
    fn shared_storage_parses_as_the_core_type_and_foreign_keys_are_not_ours() {
        let l = layout();
        assert_eq!(
            l.parse("/registry/events/ns/e").map(|o| o.ty),
            Some("/events".into())
        );
        for key in [
            "/other/configmaps/default/x",
            "/registry/unknown/x",
            "/registry/configmaps/a/b/c",
            "/registry/configmaps/default/",
            "/registry",
            "/registry/",
        ] {
            assert_eq!(l.parse(key), None, "{key}");
        }
        let custom = Layout::new("custom/prefix/", ["/configmaps"]);
        assert_eq!(custom.root(), "/custom/prefix/");
        assert_eq!(
            custom.key(&k("/configmaps", "a", "b")),
            "/custom/prefix/configmaps/a/b"
        );
    }

    fn ev(kind: EventType, obj: Value, prev: Option<Value>) -> Event {
        Event {
            ty: "/configmaps".into(),
            kind,
            object: Arc::new(obj),
            prev: prev.map(Arc::new),
            rev: 0,
        }
    }

    #[test]
    fn a_write_is_one_checked_change_per_key() {
        let l = layout();
        let a1 = json!({"metadata": {"name": "a", "namespace": "d", "resourceVersion": "7"}});
        let a2 =
            json!({"metadata": {"name": "a", "namespace": "d", "resourceVersion": "8"}, "data": {"k": "v"}});
        let b = json!({"metadata": {"name": "b", "namespace": "d", "resourceVersion": "9"}});
        let plan = l.plan(&[
            ev(EventType::Added, a1.clone(), None),
            ev(EventType::Modified, a2.clone(), Some(a1)),
            ev(EventType::Deleted, b.clone(), Some(b.clone())),
        ]);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].key, "/registry/configmaps/d/a");
        assert_eq!(plan[0].expect, Expect::Absent);
        let stored: Value = serde_json::from_str(plan[0].value.as_deref().unwrap()).unwrap();
        assert_eq!(stored["data"]["k"], "v");
        assert!(stored["metadata"].get("resourceVersion").is_none());
        assert_eq!(plan[1].expect, Expect::ModRevision(9));
        assert_eq!(plan[1].value, None);
    }

    #[test]
    fn stored_values_read_back_at_their_revision_and_bad_ones_are_refused() {
        let v = storage_value(&json!({"metadata": {"name": "a", "resourceVersion": "3"}, "x": 1}));
        let back = object_from_storage(v.as_bytes(), 42).unwrap();
        assert_eq!(back["metadata"]["resourceVersion"], "42");
        assert_eq!(back["x"], 1);
        assert!(object_from_storage(b"\x00garbage", 1).is_err());
        assert!(object_from_storage(b"[1,2]", 1).is_err());
        assert!(object_from_storage(b"{\"metadata\": 5}", 1).is_err());
    }
}
