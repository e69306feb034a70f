//! The controllers that change the store by themselves: namespace termination, garbage
//! collection by ownerReferences, orphaning, and dropping a custom type with its CRD.

use serde_json::{Value, json};

use super::*;
use crate::registry::ResourceInfo;

impl Store {
    /// Namespace controller step: deletes the contents of terminating namespaces and removes
    /// the namespaces that are empty. `infos` lists one entry per namespaced type.
    pub fn finalize_namespaces(&mut self, infos: &[&ResourceInfo], now: i64) -> Vec<Event> {
        let mut events = Vec::new();
        let terminating: Vec<String> = self
            .objects(crate::registry::keys::NAMESPACES, None)
            .iter()
            .filter(|n| n.pointer("/metadata/deletionTimestamp").is_some())
            .filter_map(|n| meta_str(n, "name").map(String::from))
            .collect();
        for ns in terminating {
            for info in infos.iter().filter(|i| i.namespaced) {
                for obj in self.objects(&info.type_key(), Some(&ns)) {
                    let name = meta_str(&obj, "name").unwrap_or_default().to_string();
                    if let Ok((_, evs)) = self.delete(info, &ns, &name, &Preconditions::default(), now, false)
                    {
                        events.extend(evs);
                    }
                }
            }
            if self.namespace_is_empty(&ns) {
                if let Some(n) = self.get(crate::registry::keys::NAMESPACES, "", &ns) {
                    if finalizers(&n).is_empty() {
                        let mut obj = (*n).clone();
                        self.stamp(&mut obj);
                        events.extend(
                            self.commit(crate::registry::keys::NAMESPACES, EventType::Deleted, obj, false)
                                .1,
                        );
                    }
                }
            }
        }
        events
    }

    /// The garbage collector's step: deletes objects whose owners (by `ownerReferences` uid)
    /// are all gone. `infos` gives one entry per type.
    pub fn collect_garbage(&mut self, infos: &[&ResourceInfo], now: i64) -> Vec<Event> {
        let dependents = self.find_all("\"ownerReferences\"");
        if dependents.is_empty() {
            return Vec::new();
        }
        let uids: std::collections::HashSet<String> =
            self.iter_raw().filter_map(|(_, raw)| uid_of(raw)).collect();
        let mut orphans = Vec::new();
        for (ty, obj) in &dependents {
            let (ty, obj) = (ty.as_str(), obj);
            let Some(owners) = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array) else {
                continue;
            };
            let alive = owners
                .iter()
                .any(|o| o["uid"].as_str().is_some_and(|u| uids.contains(u)));
            if !owners.is_empty() && !alive && obj.pointer("/metadata/deletionTimestamp").is_none() {
                let k = key_of(ty, obj);
                orphans.push(k);
            }
        }
        let mut events = Vec::new();
        for k in orphans {
            if let Some(info) = infos.iter().find(|i| i.type_key() == k.ty) {
                if let Ok((_, evs)) = self.delete(info, &k.ns, &k.name, &Preconditions::default(), now, false)
                {
                    events.extend(evs);
                }
            }
        }
        events
    }

    /// `propagationPolicy: Orphan`: dependents of `uid` forget that owner instead of being
    /// collected.
    pub fn orphan_dependents(&mut self, uid: &str) -> Vec<Event> {
        let mut changed = Vec::new();
        for (ty, obj) in self.find_all(uid) {
            let (ty, obj) = (ty.as_str(), &obj);
            let Some(owners) = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array) else {
                continue;
            };
            if owners.iter().any(|o| o["uid"] == uid) {
                let mut o = (**obj).clone();
                let kept: Vec<Value> = owners.iter().filter(|o| o["uid"] != uid).cloned().collect();
                set_meta(&mut o, "ownerReferences", json!(kept));
                changed.push((ty.to_string(), o));
            }
        }
        let mut events = Vec::new();
        for (ty, mut o) in changed {
            self.stamp(&mut o);
            events.extend(self.commit(&ty, EventType::Modified, o, false).1);
        }
        events
    }

    /// Removes every object of a type (when its CRD is deleted), ignoring finalizers.
    pub fn drop_type(&mut self, ty: &str) -> Vec<Event> {
        let mut events = Vec::new();
        for obj in self.objects(ty, None) {
            let mut o = (*obj).clone();
            self.stamp(&mut o);
            events.extend(self.commit(ty, EventType::Deleted, o, false).1);
        }
        events
    }
}
