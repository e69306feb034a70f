//! The object store: current objects, the global resourceVersion, and the rules of every write.
//!
//! Every successful write returns the [`Event`]s it caused; the caller persists them (they are
//! the write-ahead log records) and fans them out to watchers. Replaying the same events with
//! [`Store::replay`] rebuilds the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{ApiError, Cause, Result};
use crate::meta;
use crate::registry::ResourceInfo;
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

fn key_of(ty: &str, obj: &Value) -> ObjectKey {
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

    fn assign_cluster_ips(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        obj: &mut Value,
        previous: Option<&Value>,
    ) -> Result<()> {
        if info.type_key() != "/services" {
            return Ok(());
        }
        let others: Vec<Arc<Value>> = self
            .objects("/services", None)
            .into_iter()
            .filter(|o| !(meta_str(o, "namespace") == Some(ns) && meta_str(o, "name") == Some(name)))
            .collect();
        crate::services::assign(obj, &others, &self.service_cidrs, previous)
            .map_err(|causes| ApiError::invalid(&info.kind, &info.group, name, causes))
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
        match ev.kind {
            EventType::Deleted => {
                table.remove(&(key.ns, key.name));
            }
            _ => {
                table.insert((key.ns, key.name), encode(&ev.object));
            }
        }
        self.rev = self.rev.max(ev.rev);
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
            ty == "/namespaces"
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

    /// Creates an object. `ns` is the request's namespace (empty for cluster-scoped types).
    pub fn create(
        &mut self,
        info: &ResourceInfo,
        ns: &str,
        mut obj: Value,
        now: i64,
        dry_run: bool,
    ) -> Result<(Arc<Value>, Vec<Event>)> {
        let ty = info.type_key();
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        if info.namespaced {
            match meta_str(&obj, "namespace") {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => set_meta(&mut obj, "namespace", json!(ns)),
            }
            self.check_namespace_open(ns)?;
        } else {
            remove_meta(&mut obj, "namespace");
        }
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            if let Some(prefix) = meta_str(&obj, "generateName").filter(|p| !p.is_empty()) {
                name = meta::generate_name(prefix);
                set_meta(&mut obj, "name", json!(name));
            }
        }
        let mut causes: Vec<Cause> = meta::validate_name(&name, info.name_is_label())
            .into_iter()
            .collect();
        causes.extend(meta::validate_labels_and_annotations(&obj["metadata"]));
        if !causes.is_empty() {
            return Err(ApiError::invalid(&info.kind, &info.group, &name, causes));
        }
        if self.get(&ty, ns, &name).is_some() {
            return Err(ApiError::already_exists(&info.qualified(), &name));
        }
        set_meta(&mut obj, "uid", json!(meta::new_uid()));
        set_meta(&mut obj, "creationTimestamp", json!(meta::rfc3339(now)));
        // managedFields are computed by the caller (subsea_store::managed) and kept as given.
        for f in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            remove_meta(&mut obj, f);
        }
        if info.generation {
            set_meta(&mut obj, "generation", json!(1));
        } else {
            remove_meta(&mut obj, "generation");
        }
        if info.custom && info.status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        if ty == "/namespaces" {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
            // Kubernetes labels every namespace with its own name (selectors rely on it).
            if !obj["metadata"]["labels"].is_object() {
                obj["metadata"]["labels"] = json!({});
            }
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        self.assign_cluster_ips(info, ns, &name, &mut obj, None)?;
        if !dry_run {
            self.stamp(&mut obj);
        }
        Ok(self.commit(&ty, EventType::Added, obj, dry_run))
    }

    fn check_namespace_open(&self, ns: &str) -> Result<()> {
        match self.get("/namespaces", "", ns) {
            None => Err(ApiError::not_found("namespaces", ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::forbidden(
                format!("unable to create new content in namespace {ns} because it is being terminated"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Replaces an object (PUT, or the result of a patch). `precondition_rv` is the
    /// resourceVersion the writer based its change on, if it said.
    pub fn update(
        &mut self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        mut obj: Value,
        part: Part,
        dry_run: bool,
    ) -> Result<(Arc<Value>, Vec<Event>)> {
        let ty = info.type_key();
        let current = self
            .get(&ty, ns, name)
            .ok_or_else(|| ApiError::not_found(&info.qualified(), name))?;
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        match meta_str(&obj, "name") {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => set_meta(&mut obj, "name", json!(name)),
        }
        if info.namespaced {
            match meta_str(&obj, "namespace") {
                Some(b) if !b.is_empty() && b != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => set_meta(&mut obj, "namespace", json!(ns)),
            }
        }
        let current_rv = meta_str(&current, "resourceVersion").unwrap_or_default();
        match meta_str(&obj, "resourceVersion").filter(|r| !r.is_empty()) {
            Some(rv) if rv != current_rv => return Err(ApiError::conflict(&info.qualified(), name)),
            Some(_) => {}
            None if !info.unconditional_update => {
                return Err(ApiError::invalid(
                    &info.kind,
                    &info.group,
                    name,
                    vec![Cause::new(
                        "FieldValueInvalid",
                        "metadata.resourceVersion",
                        "Invalid value: 0x0: must be specified for an update",
                    )],
                ));
            }
            None => {}
        }
        // Status isolation: a main write keeps the stored status; a status write keeps
        // everything but status.
        let status_isolated = info.status;
        if part == Part::Status {
            let mut merged = (*current).clone();
            match obj.get("status") {
                Some(s) => merged["status"] = s.clone(),
                None => {
                    if let Some(m) = merged.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            obj = merged;
        } else if status_isolated {
            match current.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        // Server-owned metadata.
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match current.pointer(&format!("/metadata/{f}")) {
                Some(v) => set_meta(&mut obj, f, v.clone()),
                None => remove_meta(&mut obj, f),
            }
        }
        if ty == "/namespaces" && part == Part::Main {
            obj["spec"] = current.get("spec").cloned().unwrap_or(json!({}));
        }
        if part == Part::Main {
            self.assign_cluster_ips(info, ns, name, &mut obj, Some(&current))?;
        }
        let mut causes = meta::validate_labels_and_annotations(&obj["metadata"]);
        let terminating = current.pointer("/metadata/deletionTimestamp").is_some();
        if terminating {
            let before = finalizers(&current);
            if finalizers(&obj).iter().any(|f| !before.contains(f)) {
                causes.push(Cause::new(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(&info.kind, &info.group, name, causes));
        }
        if info.generation
            && generation_relevant(&obj, status_isolated) != generation_relevant(&current, status_isolated)
        {
            let g = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            set_meta(&mut obj, "generation", json!(g + 1));
        }
        set_meta(&mut obj, "resourceVersion", json!(current_rv));
        if terminating
            && finalizers(&obj).is_empty()
            && !(ty == "/namespaces" && !self.namespace_is_empty(name))
        {
            if !dry_run {
                self.stamp(&mut obj);
            }
            return Ok(self.commit(&ty, EventType::Deleted, obj, dry_run));
        }
        if obj == *current {
            return Ok((current, Vec::new()));
        }
        if !dry_run {
            self.stamp(&mut obj);
        }
        Ok(self.commit(&ty, EventType::Modified, obj, dry_run))
    }

    /// Deletes an object, or marks it for deletion when finalizers hold it.
    pub fn delete(
        &mut self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        pre: &Preconditions,
        now: i64,
        dry_run: bool,
    ) -> Result<(Deleted, Vec<Event>)> {
        let ty = info.type_key();
        let current = self
            .get(&ty, ns, name)
            .ok_or_else(|| ApiError::not_found(&info.qualified(), name))?;
        if let Some(uid) = &pre.uid {
            if meta_str(&current, "uid") != Some(uid.as_str()) {
                return Err(ApiError::conflict_because(
                    &info.qualified(),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&current, "uid").unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(rv) = &pre.resource_version {
            if meta_str(&current, "resourceVersion") != Some(rv.as_str()) {
                return Err(ApiError::conflict_because(
                    &info.qualified(),
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta_str(&current, "resourceVersion").unwrap_or_default()
                    ),
                ));
            }
        }
        let is_namespace = ty == "/namespaces";
        if current.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok((Deleted::Pending(current), Vec::new()));
        }
        if !finalizers(&current).is_empty() || is_namespace {
            let mut obj = (*current).clone();
            set_meta(&mut obj, "deletionTimestamp", json!(meta::rfc3339(now)));
            set_meta(&mut obj, "deletionGracePeriodSeconds", json!(0));
            if info.generation {
                let g = obj
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if g > 0 {
                    set_meta(&mut obj, "generation", json!(g + 1));
                }
            }
            if is_namespace {
                obj["status"] = json!({"phase": "Terminating"});
            }
            if !dry_run {
                self.stamp(&mut obj);
            }
            let (obj, evs) = self.commit(&ty, EventType::Modified, obj, dry_run);
            return Ok((Deleted::Pending(obj), evs));
        }
        let mut obj = (*current).clone();
        if !dry_run {
            self.stamp(&mut obj);
        }
        let (obj, evs) = self.commit(&ty, EventType::Deleted, obj, dry_run);
        Ok((Deleted::Gone(obj), evs))
    }

    /// Namespace controller step: deletes the contents of terminating namespaces and removes
    /// the namespaces that are empty. `infos` lists one entry per namespaced type.
    pub fn finalize_namespaces(&mut self, infos: &[&ResourceInfo], now: i64) -> Vec<Event> {
        let mut events = Vec::new();
        let terminating: Vec<String> = self
            .objects("/namespaces", None)
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
                if let Some(n) = self.get("/namespaces", "", &ns) {
                    if finalizers(&n).is_empty() {
                        let mut obj = (*n).clone();
                        self.stamp(&mut obj);
                        events.extend(self.commit("/namespaces", EventType::Deleted, obj, false).1);
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

#[cfg(test)]
mod tests;
