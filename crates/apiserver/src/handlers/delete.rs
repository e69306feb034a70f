//! Deletions: DeleteOptions (validated as Kubernetes does), delete and deletecollection.

use std::sync::Arc;

use serde_json::{Value, json};
use subsea_store::store::{Deleted, Preconditions};
use subsea_store::{ApiError, ResourceInfo};

use super::write::guard;
use super::*;
use crate::reply::Reply;
use crate::request::{Request, list_options, present};
use crate::state::{Shared, now};

pub(crate) fn delete_options(req: &Request) -> Result<(Preconditions, bool, bool), ApiError> {
    let mut dry = req.dry_run()?;
    let mut pre = Preconditions::default();
    let mut policy = req.q("propagationPolicy").map(|p| json!(p));
    let mut grace = req
        .q("gracePeriodSeconds")
        .map(|g| {
            g.parse::<i64>().map(|g| json!(g)).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid gracePeriodSeconds {g:?}: must be a whole number of seconds"
                ))
            })
        })
        .transpose()?;
    let mut orphan = req.q("orphanDependents") == Some("true");
    if !req.body.is_empty() {
        let v: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        pre.uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        pre.resource_version = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
        if let Some(d) = v.get("dryRun").and_then(Value::as_array) {
            dry |= d.iter().any(|x| x == "All");
        }
        if let Some(p) = v.get("propagationPolicy").filter(|p| !p.is_null()) {
            policy = Some(p.clone());
        }
        if let Some(g) = v.get("gracePeriodSeconds").filter(|g| !g.is_null()) {
            grace = Some(g.clone());
        }
        orphan |= v["orphanDependents"] == true;
    }
    validate_delete_options(policy.as_ref(), grace.as_ref(), orphan)?;
    orphan |= policy.as_ref().is_some_and(|p| p == "Orphan");
    Ok((pre, dry, orphan))
}

/// Kubernetes' DeleteOptions validation (422 `DeleteOptions.meta.k8s.io`).
pub(crate) fn validate_delete_options(
    policy: Option<&Value>,
    grace: Option<&Value>,
    orphan: bool,
) -> Result<(), ApiError> {
    use subsea_store::error::Cause;
    let mut causes = Vec::new();
    if let Some(p) = policy {
        if !matches!(p.as_str(), Some("Foreground" | "Background" | "Orphan")) {
            causes.push(Cause::new(
                "FieldValueNotSupported",
                "propagationPolicy",
                format!(
                    "Unsupported value: {}: supported values: \"Foreground\", \"Background\", \"Orphan\"",
                    subsea_store::error::render_value(p)
                ),
            ));
        } else if orphan && p != "Orphan" {
            causes.push(Cause::invalid(
                "propagationPolicy",
                p,
                "orphanDependents and propagationPolicy cannot both be set",
            ));
        }
    }
    if let Some(g) = grace {
        if !g.as_i64().is_some_and(|g| g >= 0) {
            causes.push(Cause::invalid(
                "gracePeriodSeconds",
                g,
                "must be greater than or equal to 0",
            ));
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid("DeleteOptions", "meta.k8s.io", "", causes))
}

pub(crate) fn success_status(info: &ResourceInfo, obj: &Value) -> Value {
    let m = &obj["metadata"];
    let mut details = json!({"name": m["name"], "kind": info.plural, "uid": m["uid"]});
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

pub(crate) async fn delete(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let (pre, dry, orphan) = delete_options(req)?;
    let is_crd = info.strategy() == Strategy::CustomResourceDefinition;
    let outcome = shared
        .write_registry(|store, reg| {
            guard(
                req,
                store.get(&info.type_key(), ns, name).as_deref(),
                None,
                "delete",
            )?;
            let (outcome, mut evs) = store.delete(info, ns, name, &pre, now(), dry)?;
            if let (Deleted::Gone(obj), true, false) = (&outcome, orphan, dry) {
                if let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str) {
                    evs.extend(store.orphan_dependents(uid));
                }
            }
            if let (Deleted::Gone(obj), true, false) = (&outcome, is_crd, dry) {
                // Custom resources go with their definition.
                let ty = format!(
                    "{}/{}",
                    obj["spec"]["group"].as_str().unwrap_or_default(),
                    obj["spec"]["names"]["plural"].as_str().unwrap_or_default()
                );
                evs.extend(store.drop_type(&ty));
                reg.remove_crd(name);
            }
            Ok((outcome, evs))
        })
        .await?;
    if info.strategy() == Strategy::Namespace {
        finalize_namespaces(shared).await;
    }
    Ok(match outcome {
        Deleted::Gone(obj) => Reply::json(200, success_status(info, &obj)),
        Deleted::Pending(obj) => Reply::json(200, present(info, &obj)),
    })
}

pub(crate) async fn delete_collection(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: Option<&str>,
    req: &Request,
) -> Result<Reply, ApiError> {
    let (_, dry, _) = delete_options(req)?;
    let opts = list_options(info, ns, &req.query)?;
    let deleted = shared
        .write(|store, _| {
            let items = store.list(&info.type_key(), &opts);
            for obj in &items {
                guard(req, Some(obj), None, "delete")?;
            }
            let mut out = Vec::new();
            let mut events = Vec::new();
            for obj in items {
                let o_ns = obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let o_name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
                if let Ok((d, evs)) =
                    store.delete(info, &o_ns, &o_name, &Preconditions::default(), now(), dry)
                {
                    out.push(match d {
                        Deleted::Gone(o) | Deleted::Pending(o) => present(info, &o),
                    });
                    events.extend(evs);
                }
            }
            Ok((out, events))
        })
        .await?;
    let rev = shared.store().rev();
    Ok(Reply::json(
        200,
        json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(),
        "metadata": {"resourceVersion": rev.to_string()}, "items": deleted}),
    ))
}
