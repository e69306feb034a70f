//! Writes: create, update, patch, server-side apply and the scale subresource, each admitted
//! and then committed inside the store lock (where the per-cluster rule, RBAC escalation checks
//! and the token controller run on the exact object written).

use std::sync::Arc;

use serde_json::{Value, json};
use subsea_store::admit::{FieldValidation, admit_custom, check_type_meta};
use subsea_store::store::Part;
use subsea_store::{ApiError, ResourceInfo, Store, crd, managed, meta, patch};

use super::*;
use crate::reply::Reply;
use crate::request::{Request, present};
use crate::state::{Shared, now};
use crate::{auth, authz};

/// What every step of one write shares: the server, the type, the namespace, the request
/// (caller, manager, query) and whether it is a dry run.
#[derive(Clone, Copy)]
pub(crate) struct Write<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) info: &'a ResourceInfo,
    pub(crate) ns: &'a str,
    pub(crate) req: &'a Request,
    pub(crate) dry: bool,
}

impl<'a> Write<'a> {
    /// The context of a write request, and its field validation, from its query.
    fn of(
        shared: &'a Arc<Shared>,
        info: &'a ResourceInfo,
        ns: &'a str,
        req: &'a Request,
    ) -> Result<(Self, FieldValidation), ApiError> {
        let fv = FieldValidation::parse(req.q("fieldValidation"))?;
        let dry = req.dry_run()?;
        Ok((
            Self {
                shared,
                info,
                ns,
                req,
                dry,
            },
            fv,
        ))
    }
}

/// Checks type metadata and applies a custom resource's schema; returns warnings.
pub(crate) fn admit(
    info: &ResourceInfo,
    obj: &mut Value,
    fv: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    check_type_meta(info, obj)?;
    if info.custom {
        admit_custom(info, obj, fv)
    } else {
        let warnings = subsea_store::admit::admit_builtin(&info.group, &info.plural, obj, fv)?;
        subsea_store::builtin::check(&info.kind, obj)?;
        subsea_store::defaults::apply(&info.kind, obj);
        Ok(warnings)
    }
}

pub(crate) async fn create(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let mut obj = req.json_body()?;
    let (w, fv) = Write::of(shared, info, ns, req)?;
    let warnings = admit(info, &mut obj, fv)?;
    let created = if info.strategy() == Strategy::CustomResourceDefinition {
        crd::validate_and_default(&mut obj)?;
        shared
            .write_registry(|store, reg| {
                let (created, mut evs) = create_locked(&w, store, obj.clone())?;
                if w.dry {
                    return Ok((created, evs));
                }
                let name = created["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let (served, more) = set_crd_status(store, info, &name, None)?;
                evs.extend(more);
                reg.set_crd(&served);
                Ok((served, evs))
            })
            .await?
    } else {
        shared
            .write(|store, _| create_locked(&w, store, obj.clone()))
            .await?
    };
    Ok(Reply::json(201, present(info, &created)).with_warnings(warnings))
}

/// Writes the served status of a stored CRD.
pub(crate) fn set_crd_status(
    store: &mut Store,
    info: &ResourceInfo,
    name: &str,
    previous: Option<&Value>,
) -> Result<(Arc<Value>, Vec<subsea_store::Event>), ApiError> {
    let current = store
        .get(subsea_store::registry::keys::CRDS, "", name)
        .ok_or_else(|| ApiError::not_found(&info.qualified(), name))?;
    let mut with_status = (*current).clone();
    with_status["status"] = crd::served_status(&current, previous, now());
    store.update(info, "", name, with_status, Part::Status, false)
}

pub(crate) async fn update(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    req: &Request,
) -> Result<Reply, ApiError> {
    let obj = req.json_body()?;
    let (w, fv) = Write::of(shared, info, ns, req)?;
    if sub == Some("scale") {
        let replicas = obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
        let rv = obj.pointer("/metadata/resourceVersion").cloned();
        return write_scale(&w, name, replicas, rv).await;
    }
    finish_update(&w, name, obj, sub, fv).await
}

/// Which part of the object a subresource path writes.
pub(crate) fn part_of(sub: Option<&str>) -> Part {
    if sub == Some("status") {
        Part::Status
    } else {
        Part::Main
    }
}

/// Admits the new content of an object and commits it (PUT and non-apply PATCH).
pub(crate) async fn finish_update(
    w: &Write<'_>,
    name: &str,
    mut obj: Value,
    sub: Option<&str>,
    fv: FieldValidation,
) -> Result<Reply, ApiError> {
    let info = w.info;
    let warnings = admit(info, &mut obj, fv)?;
    let updated = commit_update(w, name, obj, part_of(sub)).await?;
    Ok(Reply::json(200, present(info, &updated)).with_warnings(warnings))
}

pub(crate) async fn commit_update(
    w: &Write<'_>,
    name: &str,
    mut obj: Value,
    part: Part,
) -> Result<Arc<Value>, ApiError> {
    let Write {
        shared, info, dry, ..
    } = *w;
    if info.strategy() == Strategy::CustomResourceDefinition {
        if part == Part::Main {
            crd::validate_and_default(&mut obj)?;
        }
        return shared
            .write_registry(|store, reg| {
                let previous = store.get(subsea_store::registry::keys::CRDS, "", name);
                let (updated, mut evs) = update_locked(w, store, name, obj.clone(), part)?;
                if dry || evs.iter().any(|e| e.kind == subsea_store::EventType::Deleted) {
                    return Ok((updated, evs));
                }
                let (served, more) = set_crd_status(store, info, name, previous.as_deref())?;
                evs.extend(more);
                reg.set_crd(&served);
                Ok((served, evs))
            })
            .await;
    }
    shared
        .write(|store, _| update_locked(w, store, name, obj.clone(), part))
        .await
}

/// A Secret's `stringData` is write-only: Kubernetes merges it into `data` (base64) on write.
pub(crate) fn fold_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(sd) = secret.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    if !secret["data"].is_object() {
        secret["data"] = json!({});
    }
    for (k, v) in sd.as_object().into_iter().flatten() {
        let text = v.as_str().unwrap_or_default();
        secret["data"][k.as_str()] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// Enforces the per-cluster broker rule for a scoped caller on the objects a write touches.
pub(crate) fn guard(
    req: &Request,
    current: Option<&Value>,
    new: Option<&Value>,
    verb: &str,
) -> Result<(), ApiError> {
    let Some(cluster) = &req.cluster else {
        return Ok(());
    };
    for obj in current.into_iter().chain(new) {
        authz::check_cluster_owned(cluster, &req.user, obj, verb)?;
    }
    Ok(())
}

/// A create, inside the store lock: the per-cluster rule and the token controller apply here.
pub(crate) fn create_locked(
    w: &Write<'_>,
    store: &mut Store,
    mut obj: Value,
) -> Result<(Arc<Value>, Vec<subsea_store::Event>), ApiError> {
    let Write {
        shared,
        info,
        ns,
        req,
        dry,
    } = *w;
    guard(req, None, Some(&obj), "create")?;
    if info.strategy() == Strategy::Rbac {
        authz::check_rbac_write(store, &req.user, &info.plural, ns, None, &obj)?;
    }
    if info.strategy() == Strategy::Secret {
        fold_string_data(&mut obj);
        auth::fill_token_secret(store, ns, &mut obj, &shared.ca_pem);
    }
    if !req.is_apply() {
        managed::record_update(
            None,
            &mut obj,
            &req.manager(),
            &info.api_version(),
            &meta::rfc3339(now()),
        );
    }
    store.create(info, ns, obj, now(), dry)
}

/// An update, inside the store lock (see [`create_locked`]).
pub(crate) fn update_locked(
    w: &Write<'_>,
    store: &mut Store,
    name: &str,
    mut obj: Value,
    part: Part,
) -> Result<(Arc<Value>, Vec<subsea_store::Event>), ApiError> {
    let Write {
        shared,
        info,
        ns,
        req,
        dry,
    } = *w;
    let current = store.get(&info.type_key(), ns, name);
    guard(req, current.as_deref(), Some(&obj), "update")?;
    if info.strategy() == Strategy::Rbac {
        authz::check_rbac_write(store, &req.user, &info.plural, ns, current.as_deref(), &obj)?;
    }
    if info.strategy() == Strategy::Secret && part == Part::Main {
        fold_string_data(&mut obj);
        auth::fill_token_secret(store, ns, &mut obj, &shared.ca_pem);
    }
    if !req.is_apply() {
        managed::record_update(
            current.as_deref(),
            &mut obj,
            &req.manager(),
            &info.api_version(),
            &meta::rfc3339(now()),
        );
    }
    store.update(info, ns, name, obj, part, dry)
}

pub(crate) fn apply_patch(
    info: &ResourceInfo,
    ct: &str,
    target: &mut Value,
    body: &Value,
) -> Result<(), ApiError> {
    let result = match ct {
        "application/json-patch+json" => patch::json_patch(target, body),
        "application/merge-patch+json" | "application/apply-patch+yaml" => {
            patch::merge(target, body);
            Ok(())
        }
        "application/strategic-merge-patch+json" if !info.custom => patch::strategic_merge(target, body),
        "application/strategic-merge-patch+json" => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (strategic merge patch is not supported for custom resource {}; use --type merge or --type json)",
                info.qualified()
            )));
        }
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
            )));
        }
    };
    result.map_err(|e| match e {
        patch::PatchError::Malformed(m) => ApiError::bad_request(m),
        patch::PatchError::Failed(m) => {
            let mut err = ApiError::invalid(&info.kind, &info.group, "", Vec::new());
            err.message = m;
            err.details = None;
            err
        }
    })
}

pub(crate) async fn patch_object(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    req: &Request,
) -> Result<Reply, ApiError> {
    let ct = req.content_type();
    let body = req.json_body()?;
    let (w, fv) = Write::of(shared, info, ns, req)?;
    let is_apply = ct == "application/apply-patch+yaml";
    if is_apply && req.q("fieldManager").is_none() {
        return Err(ApiError::invalid(
            &info.kind,
            &info.group,
            name,
            vec![subsea_store::error::Cause::required("fieldManager")],
        ));
    }
    if is_apply && sub != Some("scale") {
        return server_side_apply(&w, name, sub, body, fv).await;
    }
    let current = shared.store().get(&info.type_key(), ns, name);
    let Some(current) = current else {
        return Err(ApiError::not_found(&info.qualified(), name));
    };
    if sub == Some("scale") {
        let mut scale = scale_of(info, &current);
        apply_patch(info, &ct, &mut scale, &body)?;
        let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
        let rv = scale.pointer("/metadata/resourceVersion").cloned();
        return write_scale(&w, name, replicas, rv).await;
    }
    let mut target = present(info, &current);
    apply_patch(info, &ct, &mut target, &body)?;
    finish_update(&w, name, target, sub, fv).await
}

/// Server-side apply: field ownership, conflicts (409 unless `force=true`), create if missing.
pub(crate) async fn server_side_apply(
    w: &Write<'_>,
    name: &str,
    sub: Option<&str>,
    body: Value,
    fv: FieldValidation,
) -> Result<Reply, ApiError> {
    let Write {
        shared,
        info,
        ns,
        req,
        dry,
    } = *w;
    let manager = req.manager();
    let force = req.q("force") == Some("true");
    let is_crd = info.strategy() == Strategy::CustomResourceDefinition;
    // Under the registry write lock, so applying a CRD changes what is served atomically.
    let (obj, warnings, created) = shared
        .write_registry(|store, reg| {
            let current = store.get(&info.type_key(), ns, name);
            if current.is_none() && sub.is_some() {
                return Err(ApiError::not_found(&info.qualified(), name));
            }
            let wanted_rv = body
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty());
            let current_rv = current
                .as_ref()
                .and_then(|c| c.pointer("/metadata/resourceVersion"))
                .and_then(Value::as_str);
            if wanted_rv.is_some() && wanted_rv != current_rv {
                return Err(ApiError::conflict(&info.qualified(), name));
            }
            let base = current.as_ref().map(|c| present(info, c));
            let mut obj = managed::apply(
                base.as_ref(),
                &body,
                &manager,
                force,
                &info.api_version(),
                &meta::rfc3339(now()),
            )
            .map_err(|mut e| {
                e.details = Some((name.to_string(), info.group.clone(), info.plural.clone()));
                e
            })?;
            if obj.pointer("/metadata/name").is_none() {
                obj["metadata"]["name"] = json!(name);
            }
            // Without a status subresource, status is part of the applied object (Submariner's
            // Gateway has only status); field ownership is tracked for the rest.
            if (!info.status || sub == Some("status")) && body.get("status").is_some() {
                obj["status"] = body["status"].clone();
            }
            let warnings = admit(info, &mut obj, fv)?;
            if is_crd {
                crd::validate_and_default(&mut obj)?;
            }
            let part = if sub == Some("status") {
                Part::Status
            } else {
                Part::Main
            };
            let was_new = current.is_none();
            let (mut stored, mut evs) = match &current {
                None => create_locked(w, store, obj)?,
                Some(_) => update_locked(w, store, name, obj, part)?,
            };
            if is_crd && !dry && part == Part::Main {
                let (served, more) = set_crd_status(store, info, name, current.as_deref())?;
                evs.extend(more);
                reg.set_crd(&served);
                stored = served;
            }
            Ok(((stored, warnings, was_new), evs))
        })
        .await?;
    let code = if created { 201 } else { 200 };
    Ok(Reply::json(code, present(info, &obj)).with_warnings(warnings))
}

pub(crate) fn json_pointer(path: &str) -> String {
    path.replace('.', "/")
}

/// The `autoscaling/v1` Scale view of a custom resource.
pub(crate) fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let Some(paths) = &info.scale else {
        return Value::Null;
    };
    let spec = obj
        .pointer(&json_pointer(&paths.spec_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let status = obj
        .pointer(&json_pointer(&paths.status_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let mut st = json!({"replicas": status});
    if let Some(sel) = paths
        .label_selector
        .as_deref()
        .and_then(|p| obj.pointer(&json_pointer(p)))
    {
        st["selector"] = sel.clone();
    }
    let m = &obj["metadata"];
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": spec}, "status": st})
}

pub(crate) async fn write_scale(
    w: &Write<'_>,
    name: &str,
    replicas: Value,
    rv: Option<Value>,
) -> Result<Reply, ApiError> {
    let Write {
        shared,
        info,
        ns,
        req,
        dry,
    } = *w;
    let Some(paths) = info.scale.clone() else {
        return Err(ApiError::no_route());
    };
    let updated = shared
        .write(|store, _| {
            let current = store
                .get(&info.type_key(), ns, name)
                .ok_or_else(|| ApiError::not_found(&info.qualified(), name))?;
            guard(req, Some(&current), None, "update")?;
            let mut obj = (*current).clone();
            if let Some(rv) = rv.clone().filter(|r| r.as_str().is_some_and(|s| !s.is_empty())) {
                obj["metadata"]["resourceVersion"] = rv;
            }
            let mut parts = paths.spec_replicas.trim_start_matches('.').split('.').peekable();
            let mut cur = &mut obj;
            while let Some(p) = parts.next() {
                if parts.peek().is_none() {
                    cur[p] = replicas.clone();
                    break;
                }
                if !cur[p].is_object() {
                    cur[p] = json!({});
                }
                cur = &mut cur[p];
            }
            store.update(info, ns, name, obj, Part::Main, dry)
        })
        .await?;
    Ok(Reply::json(200, scale_of(info, &updated)))
}
