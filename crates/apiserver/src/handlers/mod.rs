//! Resource requests: dispatch by verb and subresource, and the reads (get, list, pod logs).
//! Writes are in `write`, deletions in `delete`, the namespace and garbage controllers in
//! `janitor`.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::Method;
use serde_json::{Value, json};
use subsea_store::registry::keys;
use subsea_store::{ApiError, ResourceInfo};

use crate::reply::Reply;
use crate::request::{Request, View, list_options, present};
use crate::state::{Shared, now};
use crate::watch;

mod delete;
mod janitor;
mod write;

use delete::{delete, delete_collection};
pub use janitor::{collect_garbage, finalize_namespaces};
use write::{create, patch_object, scale_of, update};

pub(crate) use subsea_store::registry::Strategy;

/// Handles one resource request.
pub async fn handle(shared: &Arc<Shared>, req: Request) -> Result<Reply, ApiError> {
    let info = {
        let reg = shared.registry();
        reg.find(&req.path.group, &req.path.version, &req.path.plural)
            .cloned()
            .ok_or_else(ApiError::no_route)?
    };
    let p = &req.path;
    if (!info.namespaced && p.namespace.is_some())
        || (info.namespaced && p.namespace.is_none() && p.name.is_some())
    {
        return Err(ApiError::no_route());
    }
    let ns = p.namespace.clone().unwrap_or_default();
    match (info.group.as_str(), info.plural.as_str()) {
        ("authorization.k8s.io", "selfsubjectaccessreviews") => {
            return crate::reviews::self_access(shared, &req);
        }
        ("authorization.k8s.io", "subjectaccessreviews") => {
            return crate::reviews::subject_access(shared, &req);
        }
        ("authentication.k8s.io", "tokenreviews") => return crate::reviews::token(shared, &req),
        _ => {}
    }
    let sub = p.sub.as_deref();
    match sub {
        None => {}
        Some("status") if info.status => {}
        Some("scale") if info.scale.is_some() => {}
        Some("token")
            if info.group.is_empty() && info.plural == "serviceaccounts" && req.method == Method::POST =>
        {
            let name = p.name.as_deref().unwrap_or_default();
            let body = req.json_body()?;
            let answer =
                crate::tokens::request(&shared.store(), &shared.signing_key, &ns, name, body, now())?;
            return Ok(Reply::json(201, answer));
        }
        Some("log") if info.group.is_empty() && info.plural == "pods" && req.method == Method::GET => {
            return pod_log(shared, &ns, p.name.as_deref().unwrap_or_default(), &req.query).await;
        }
        Some(_) => return Err(ApiError::no_route()),
    }
    // A read without a resourceVersion is answered from a cache as fresh as the storage.
    if req.method == Method::GET
        && req.q("resourceVersion").is_none_or(str::is_empty)
        && req.q("continue").is_none()
    {
        shared.fresh().await?;
    } else if req.method == Method::GET
        && let Some(rev) = req.q("resourceVersion").and_then(|r| r.parse::<u64>().ok())
    {
        shared.reached(rev).await;
    }
    match (&req.method, p.name.clone()) {
        (&Method::GET, Some(name)) => get(shared, &info, &ns, &name, sub, View::from_headers(&req.headers)),
        (&Method::GET, None) => {
            if matches!(req.q("watch"), Some("true" | "1")) {
                watch::start(
                    shared,
                    &info,
                    p.namespace.as_deref(),
                    &req.query,
                    View::from_headers(&req.headers),
                )
            } else {
                list(shared, &info, p.namespace.as_deref(), &req)
            }
        }
        (&Method::POST, None) => create(shared, &info, &ns, &req).await,
        (&Method::PUT, Some(name)) => update(shared, &info, &ns, &name, sub, &req).await,
        (&Method::PATCH, Some(name)) => patch_object(shared, &info, &ns, &name, sub, &req).await,
        (&Method::DELETE, Some(name)) => delete(shared, &info, &ns, &name, &req).await,
        (&Method::DELETE, None) => delete_collection(shared, &info, p.namespace.as_deref(), &req).await,
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource: {m}"
        ))),
    }
}

/// A pod's log, from its node's kubelet.
pub(crate) async fn pod_log(
    shared: &Shared,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Reply, ApiError> {
    let (pod, node) = {
        let store = shared.store();
        let pod = store
            .get(keys::PODS, ns, name)
            .ok_or_else(|| ApiError::not_found("pods", name))?;
        let node_name = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let node = store.get(keys::NODES, "", &node_name);
        (pod, node)
    };
    let (host, port, path) = crate::logs::kubelet_target(&pod, node.as_deref(), query)?;
    let body = crate::logs::fetch(&host, port, &path).await?;
    Ok(Reply::text(200, body))
}

pub(crate) fn get(
    shared: &Shared,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    view: View,
) -> Result<Reply, ApiError> {
    let obj = shared
        .store()
        .get(&info.type_key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&info.qualified(), name))?;
    match sub {
        Some("scale") => Ok(Reply::json(200, scale_of(info, &obj))),
        _ => Ok(Reply::json(200, view.one(info, &obj))),
    }
}

pub(crate) fn list(
    shared: &Shared,
    info: &ResourceInfo,
    ns: Option<&str>,
    req: &Request,
) -> Result<Reply, ApiError> {
    let opts = list_options(info, ns, &req.query)?;
    let limit = req
        .q("limit")
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}: must be a number")))
        })
        .transpose()?;
    let now_i = std::time::Instant::now();
    // A continue token is bound to the list it came from and to its caller: RBAC checked this
    // request's resource and namespace, so a token must not carry another list's objects.
    let scope = format!(
        "{}\n{}\n{}\n{}\n{}",
        info.type_key(),
        ns.unwrap_or_default(),
        req.q("labelSelector").unwrap_or_default(),
        req.q("fieldSelector").unwrap_or_default(),
        req.user.name
    );
    let page = match req.q("continue") {
        Some(token) => shared.pager().next(token, limit, now_i, &scope)?,
        None => {
            let (items, rev) = {
                let store = shared.store();
                (store.list(&info.type_key(), &opts), store.rev())
            };
            shared.pager().first(items, rev, limit, now_i, &scope)
        }
    };
    let items: Vec<Value> = page.items.iter().map(|o| present(info, o)).collect();
    let mut meta = json!({"resourceVersion": page.rev.to_string()});
    if let Some(c) = page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        meta["remainingItemCount"] = json!(r);
    }
    let body = match View::from_headers(&req.headers) {
        View::Full => {
            json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": meta, "items": items})
        }
        View::Table => {
            let mut t = subsea_store::table::table(info, &items, None, now());
            t["metadata"] = meta;
            t
        }
        View::Metadata => {
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "items": items.iter().map(subsea_store::table::partial_metadata).collect::<Vec<_>>()})
        }
    };
    Ok(Reply::json(200, body))
}
