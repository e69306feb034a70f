//! The object store: current objects, the global resourceVersion, and the rules of every write.
//!
//! Every successful write returns the [`Event`]s it caused; the caller persists them (they are
//! the write-ahead log records) and fans them out to watchers. Replaying the same events with
//! [`Store::replay`] rebuilds the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::selector::{FieldSelector, LabelSelector};

/// Identity of a stored object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `group/plural` of the type.
    pub ty: String,
    /// Namespace; empty for cluster-scoped objects.
    pub ns: String,
    /// Name.
    pub name: String,
}

/// Watch event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed; the object is its last state with the deletion's resourceVersion.
    Deleted,
}

impl EventType {
    /// Wire name of the event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change to the store, at one resourceVersion.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `group/plural` of the object's type.
    pub ty: String,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (before it, for deletions).
    pub object: Arc<Value>,
    /// The object before the change, if it existed (not persisted).
    pub prev: Option<Arc<Value>>,
    /// The resourceVersion of the change.
    pub rev: u64,
}

/// Events double as write-ahead-log records.
pub type WalRecord = Event;

/// What a DELETE did.
#[derive(Clone, Debug, PartialEq)]
pub enum Deleted {
    /// The object is gone.
    Gone(Arc<Value>),
    /// Finalizers hold the object; it now has a deletionTimestamp.
    Pending(Arc<Value>),
}

/// Preconditions of a DELETE.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Preconditions {
    /// Required uid.
    pub uid: Option<String>,
    /// Required resourceVersion.
    pub resource_version: Option<String>,
}

/// Which part of an object a write targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but a subresource-isolated status.
    Main,
    /// The `/status` subresource: only `.status`.
    Status,
}

/// A list request's filters.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Namespace, or all namespaces.
    pub namespace: Option<String>,
    /// Label filter.
    pub labels: LabelSelector,
    /// Field filter.
    pub fields: FieldSelector,
}

/// Objects are kept as compact JSON text: a parsed `serde_json::Value` costs over ten times its
/// text in small-map nodes, and most objects are read rarely. Reads parse on demand.
type Table = BTreeMap<(String, String), Arc<str>>;

fn decode(text: &str) -> Arc<Value> {
    // Only JSON this store serialized itself is ever decoded.
    Arc::new(serde_json::from_str(text).unwrap_or_default())
}

fn encode(v: &Value) -> Arc<str> {
    Arc::from(serde_json::to_string(v).unwrap_or_default())
}

/// All objects and the global resourceVersion.
#[derive(Clone, Debug, Default)]
pub struct Store {
    rev: u64,
    tables: BTreeMap<String, Table>,
    service_cidrs: Vec<subsea_cidr::Cidr>,
    journal: Option<Journal>,
}

/// What a tentative change overwrote, so it can be taken back.
#[derive(Clone, Debug)]
struct Journal {
    rev: u64,
    undo: Vec<(String, (String, String), Option<Arc<str>>)>,
}

/// The `metadata.uid` of an object's JSON text, without parsing the whole object.
fn uid_of(raw: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Meta {
        uid: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Obj {
        metadata: Option<Meta>,
    }
    serde_json::from_str::<Obj>(raw).ok()?.metadata?.uid
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// The identity of an object of type `ty`, from its metadata.
pub fn key_of(ty: &str, obj: &Value) -> ObjectKey {
    ObjectKey {
        ty: ty.to_string(),
        ns: meta_str(obj, "namespace").unwrap_or_default().to_string(),
        name: meta_str(obj, "name").unwrap_or_default().to_string(),
    }
}

fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"][field] = value;
}

fn remove_meta(obj: &mut Value, field: &str) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove(field);
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// The parts of an object that drive `metadata.generation`: everything but metadata (and
/// status when status is a subresource).
fn generation_relevant(obj: &Value, status_isolated: bool) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if status_isolated {
            m.remove("status");
        }
    }
    o
}

impl Store {
    /// An empty store at resourceVersion 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the ranges Service ClusterIPs are allocated from (none: addresses are stored as given).
    pub fn set_service_cidrs(&mut self, cidrs: Vec<subsea_cidr::Cidr>) {
        self.service_cidrs = cidrs;
    }

    /// The current (latest) resourceVersion.
    pub fn rev(&self) -> u64 {
        self.rev
    }

    /// Raises the resourceVersion counter (after a restart, to the highest one ever issued).
    pub fn bump_rev_to(&mut self, rev: u64) {
        self.rev = self.rev.max(rev);
    }

    /// Re-applies a logged event (startup replay).
    pub fn replay(&mut self, ev: &Event) {
        let key = key_of(&ev.ty, &ev.object);
        let table = self.tables.entry(ev.ty.clone()).or_default();
        let id = (key.ns, key.name);
        let old = match ev.kind {
            EventType::Deleted => table.remove(&id),
            _ => table.insert(id.clone(), encode(&ev.object)),
        };
        if let Some(j) = self.journal.as_mut() {
            j.undo.push((ev.ty.clone(), id, old));
        }
        self.rev = self.rev.max(ev.rev);
    }

    /// Starts a tentative change: everything until [`Store::rollback`] can be taken back.
    /// A store whose writes are decided elsewhere (etcd) decides a write tentatively, then
    /// learns the outcome from the store's own change feed.
    pub fn begin(&mut self) {
        self.journal = Some(Journal {
            rev: self.rev,
            undo: Vec::new(),
        });
    }

    /// Takes back every change since [`Store::begin`], the resourceVersion counter included.
    pub fn rollback(&mut self) {
        let Some(j) = self.journal.take() else {
            return;
        };
        for (ty, id, old) in j.undo.into_iter().rev() {
            let table = self.tables.entry(ty).or_default();
            match old {
                Some(v) => table.insert(id, v),
                None => table.remove(&id),
            };
        }
        self.rev = j.rev;
    }

    /// Every stored object of every type as (type, namespace, name), for a resync.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.tables
            .iter()
            .flat_map(|(ty, t)| {
                t.keys().map(move |(ns, name)| ObjectKey {
                    ty: ty.clone(),
                    ns: ns.clone(),
                    name: name.clone(),
                })
            })
            .collect()
    }

    /// Every stored object as (type, JSON text), for snapshots.
    pub fn iter_raw(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tables
            .iter()
            .flat_map(|(ty, t)| t.values().map(move |v| (ty.as_str(), &**v)))
    }

    /// Every stored object whose JSON text mentions `needle`, parsed.
    fn find_all(&self, needle: &str) -> Vec<(String, Arc<Value>)> {
        self.iter_raw()
            .filter(|(_, raw)| raw.contains(needle))
            .map(|(ty, raw)| (ty.to_string(), decode(raw)))
            .collect()
    }

    /// One object.
    pub fn get(&self, ty: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.tables
            .get(ty)?
            .get(&(ns.to_string(), name.to_string()))
            .map(|raw| decode(raw))
    }

    /// Objects of a type in a namespace (or all), unfiltered.
    pub fn objects(&self, ty: &str, ns: Option<&str>) -> Vec<Arc<Value>> {
        let Some(t) = self.tables.get(ty) else {
            return Vec::new();
        };
        match ns {
            Some(ns) => t
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| decode(v))
                .collect(),
            None => t.values().map(|v| decode(v)).collect(),
        }
    }

    /// Whether a namespace holds any object of any namespaced type.
    pub fn namespace_is_empty(&self, ns: &str) -> bool {
        self.tables.iter().all(|(ty, t)| {
            ty == crate::registry::keys::NAMESPACES
                || t.range((ns.to_string(), String::new())..)
                    .next()
                    .is_none_or(|((n, _), _)| n != ns)
        })
    }

    /// Lists the objects matching the filters, in (namespace, name) order.
    pub fn list(&self, ty: &str, opts: &ListOptions) -> Vec<Arc<Value>> {
        self.objects(ty, opts.namespace.as_deref())
            .into_iter()
            .filter(|o| opts.labels.matches(o.pointer("/metadata/labels")) && opts.fields.matches(o))
            .collect()
    }

    fn next_rev(&mut self) -> u64 {
        self.rev += 1;
        self.rev
    }

    fn stamp(&mut self, obj: &mut Value) -> u64 {
        let rev = self.next_rev();
        set_meta(obj, "resourceVersion", json!(rev.to_string()));
        rev
    }

    fn commit(&mut self, ty: &str, kind: EventType, obj: Value, dry_run: bool) -> (Arc<Value>, Vec<Event>) {
        let obj = Arc::new(obj);
        if dry_run {
            return (obj, Vec::new());
        }
        let rev = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok())
            .unwrap_or(self.rev);
        let key = key_of(ty, &obj);
        let prev = self.get(ty, &key.ns, &key.name);
        let ev = Event {
            ty: ty.to_string(),
            kind,
            object: obj.clone(),
            prev,
            rev,
        };
        self.replay(&ev);
        (obj, vec![ev])
    }
}

mod controllers;
mod delete;
mod write;

#[cfg(test)]
mod tests;
