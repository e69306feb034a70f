//! Creates and updates: metadata defaults, optimistic concurrency, generation, finalizers,
//! ClusterIP allocation, and the namespace rules of namespaced writes.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::error::{ApiError, Cause, Result};
use crate::meta;
use crate::registry::ResourceInfo;

impl Store {
    pub(super) fn assign_cluster_ips(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        obj: &mut Value,
        previous: Option<&Value>,
    ) -> Result<()> {
        if info.strategy() != crate::registry::Strategy::Service {
            return Ok(());
        }
        let others: Vec<Arc<Value>> = self
            .objects(crate::registry::keys::SERVICES, None)
            .into_iter()
            .filter(|o| !(meta_str(o, "namespace") == Some(ns) && meta_str(o, "name") == Some(name)))
            .collect();
        crate::services::assign(obj, &others, &self.service_cidrs, previous)
            .and_then(|()| crate::services::assign_node_ports(obj, &others, previous))
            .map_err(|causes| ApiError::invalid(&info.kind, &info.group, name, causes))
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
        if ty == crate::registry::keys::NAMESPACES {
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

    pub(super) fn check_namespace_open(&self, ns: &str) -> Result<()> {
        match self.get(crate::registry::keys::NAMESPACES, "", ns) {
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
        if ty == crate::registry::keys::NAMESPACES && part == Part::Main {
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
            && !(ty == crate::registry::keys::NAMESPACES && !self.namespace_is_empty(name))
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
}
