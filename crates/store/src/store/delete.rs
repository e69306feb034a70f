//! Deletions: preconditions, finalizers (deletionTimestamp first) and namespaces that wait
//! for their contents.

use serde_json::{Value, json};

use super::*;
use crate::error::{ApiError, Result};
use crate::meta;
use crate::registry::ResourceInfo;

impl Store {
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
        let is_namespace = ty == crate::registry::keys::NAMESPACES;
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
}
