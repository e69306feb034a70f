//! Resource requests: get, list, create, update, patch, delete, deletecollection, and the
//! status and scale subresources.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use serde_json::{Value, json};
use subsea_store::admit::{FieldValidation, admit_custom, check_type_meta};
use subsea_store::selector::{FieldSelector, LabelSelector};
use subsea_store::store::{Deleted, ListOptions, Part, Preconditions};
use subsea_store::{ApiError, Registry, ResourceInfo, Store, crd, managed, meta, patch};

use crate::http::Reply;
use crate::route::ResourcePath;
use crate::state::{Shared, now};
use crate::watch;
use crate::{auth, authz};
use subsea_rbac::User;

const CRD_TYPE: &str = "apiextensions.k8s.io/customresourcedefinitions";

/// A parsed resource request.
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Path parts.
    pub path: ResourcePath,
    /// Query parameters.
    pub query: HashMap<String, String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
    /// The authenticated caller.
    pub user: User,
    /// The cluster ID the caller's writes are confined to (broker cluster tokens).
    pub cluster: Option<String>,
}

/// How objects are rendered in a response (from the Accept header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Full objects.
    Full,
    /// `meta.k8s.io/v1` Table (kubectl get).
    Table,
    /// `PartialObjectMetadata` (kube-rs `*_metadata`).
    Metadata,
}

impl View {
    /// The view an Accept header asks for.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        // The first media type we understand wins; plain JSON is the fallback.
        for part in accept.split(',') {
            if part.contains("as=Table") {
                return Self::Table;
            }
            if part.contains("as=PartialObjectMetadata") {
                return Self::Metadata;
            }
            if part.trim().starts_with("application/json") && !part.contains("as=") {
                return Self::Full;
            }
        }
        Self::Full
    }

    /// One object in this view.
    pub fn one(self, info: &ResourceInfo, obj: &Arc<Value>) -> Value {
        match self {
            Self::Full => present(info, obj),
            Self::Table => subsea_store::table::table(info, &[present(info, obj)], None, now()),
            Self::Metadata => subsea_store::table::partial_metadata(obj),
        }
    }
}

impl Request {
    fn is_apply(&self) -> bool {
        self.content_type() == "application/apply-patch+yaml"
    }

    /// The field manager: `fieldManager`, else the client's name from its User-Agent, as
    /// Kubernetes does.
    fn manager(&self) -> String {
        if let Some(m) = self.q("fieldManager") {
            return m.to_string();
        }
        self.headers
            .get(hyper::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|m| !m.is_empty())
            .unwrap_or("unknown")
            .to_string()
    }

    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.q("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other}; only All is supported"
            ))),
        }
    }

    fn content_type(&self) -> String {
        self.headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default()
    }

    pub(crate) fn json_body(&self) -> Result<Value, ApiError> {
        use subsea_store::body;
        let ct = self.content_type();
        let accepted = if self.method == Method::PATCH {
            PATCH_TYPES
        } else {
            body::OBJECT_TYPES
        };
        let format = body::format(&ct, accepted)?;
        // Decoding a large body is CPU work measured in milliseconds: off the async workers, so
        // one client's upload cannot stall every other request on this worker.
        if self.body.len() > 64 * 1024 {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                    return tokio::task::block_in_place(|| body::decode(format, &self.body));
                }
            }
        }
        body::decode(format, &self.body)
    }
}

/// Media types a PATCH accepts.
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// The object as seen at the requested version.
pub fn present(info: &ResourceInfo, obj: &Arc<Value>) -> Value {
    let mut v = (**obj).clone();
    if v.get("apiVersion").and_then(Value::as_str) != Some(info.api_version().as_str()) {
        v["apiVersion"] = json!(info.api_version());
    }
    if v.get("kind").is_none() {
        v["kind"] = json!(info.kind);
    }
    v
}

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
async fn pod_log(
    shared: &Shared,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Reply, ApiError> {
    let (pod, node) = {
        let store = shared.store();
        let pod = store
            .get("/pods", ns, name)
            .ok_or_else(|| ApiError::not_found("pods", name))?;
        let node_name = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let node = store.get("/nodes", "", &node_name);
        (pod, node)
    };
    let (host, port, path) = crate::logs::kubelet_target(&pod, node.as_deref(), query)?;
    let body = crate::logs::fetch(&host, port, &path).await?;
    Ok(Reply::text(200, body))
}

fn get(
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

/// Parses list/watch filters.
pub fn list_options(
    info: &ResourceInfo,
    ns: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<ListOptions, ApiError> {
    let get = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(t) = get("timeoutSeconds") {
        if t.parse::<u64>().is_err() {
            return Err(ApiError::bad_request(format!(
                "invalid timeoutSeconds {t:?}: must be a whole number of seconds"
            )));
        }
    }
    Ok(ListOptions {
        namespace: ns.map(String::from),
        labels: LabelSelector::parse(get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(get("fieldSelector").unwrap_or(""), &info.field_selectors())?,
    })
}

fn list(shared: &Shared, info: &ResourceInfo, ns: Option<&str>, req: &Request) -> Result<Reply, ApiError> {
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

/// Checks type metadata and applies a custom resource's schema; returns warnings.
fn admit(info: &ResourceInfo, obj: &mut Value, fv: FieldValidation) -> Result<Vec<String>, ApiError> {
    check_type_meta(info, obj)?;
    if info.custom {
        admit_custom(info, obj, fv)
    } else {
        let warnings = subsea_store::admit::admit_builtin(&info.group, &info.plural, obj, fv)?;
        subsea_store::builtin::check(&info.kind, obj)?;
        Ok(warnings)
    }
}

async fn create(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let mut obj = req.json_body()?;
    let fv = FieldValidation::parse(req.q("fieldValidation"))?;
    let dry = req.dry_run()?;
    let warnings = admit(info, &mut obj, fv)?;
    let created = if info.type_key() == CRD_TYPE {
        crd::validate_and_default(&mut obj)?;
        shared
            .write_registry(|store, reg| {
                let (created, mut evs) = create_locked(shared, store, info, ns, obj, dry, req)?;
                if dry {
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
            .write(|store, _| create_locked(shared, store, info, ns, obj, dry, req))
            .await?
    };
    Ok(Reply::json(201, present(info, &created)).with_warnings(warnings))
}

/// Writes the served status of a stored CRD.
fn set_crd_status(
    store: &mut Store,
    info: &ResourceInfo,
    name: &str,
    previous: Option<&Value>,
) -> Result<(Arc<Value>, Vec<subsea_store::Event>), ApiError> {
    let current = store
        .get(CRD_TYPE, "", name)
        .ok_or_else(|| ApiError::not_found(&info.qualified(), name))?;
    let mut with_status = (*current).clone();
    with_status["status"] = crd::served_status(&current, previous, now());
    store.update(info, "", name, with_status, Part::Status, false)
}

async fn update(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    req: &Request,
) -> Result<Reply, ApiError> {
    let obj = req.json_body()?;
    let fv = FieldValidation::parse(req.q("fieldValidation"))?;
    let dry = req.dry_run()?;
    if sub == Some("scale") {
        let replicas = obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
        let rv = obj.pointer("/metadata/resourceVersion").cloned();
        return write_scale(shared, info, ns, name, replicas, rv, dry, req).await;
    }
    finish_update(shared, info, ns, name, obj, sub, fv, dry, req).await
}

/// Which part of the object a subresource path writes.
fn part_of(sub: Option<&str>) -> Part {
    if sub == Some("status") {
        Part::Status
    } else {
        Part::Main
    }
}

/// Admits the new content of an object and commits it (PUT and non-apply PATCH).
#[allow(clippy::too_many_arguments)]
async fn finish_update(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    mut obj: Value,
    sub: Option<&str>,
    fv: FieldValidation,
    dry: bool,
    req: &Request,
) -> Result<Reply, ApiError> {
    let warnings = admit(info, &mut obj, fv)?;
    let updated = commit_update(shared, info, ns, name, obj, part_of(sub), dry, req).await?;
    Ok(Reply::json(200, present(info, &updated)).with_warnings(warnings))
}

#[allow(clippy::too_many_arguments)]
async fn commit_update(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    mut obj: Value,
    part: Part,
    dry: bool,
    req: &Request,
) -> Result<Arc<Value>, ApiError> {
    if info.type_key() == CRD_TYPE {
        if part == Part::Main {
            crd::validate_and_default(&mut obj)?;
        }
        return shared
            .write_registry(|store, reg| {
                let previous = store.get(CRD_TYPE, "", name);
                let (updated, mut evs) = update_locked(shared, store, info, ns, name, obj, part, dry, req)?;
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
        .write(|store, _| update_locked(shared, store, info, ns, name, obj, part, dry, req))
        .await
}

/// A Secret's `stringData` is write-only: Kubernetes merges it into `data` (base64) on write.
fn fold_string_data(secret: &mut Value) {
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
fn guard(req: &Request, current: Option<&Value>, new: Option<&Value>, verb: &str) -> Result<(), ApiError> {
    let Some(cluster) = &req.cluster else {
        return Ok(());
    };
    for obj in current.into_iter().chain(new) {
        authz::check_cluster_owned(cluster, &req.user, obj, verb)?;
    }
    Ok(())
}

/// A create, inside the store lock: the per-cluster rule and the token controller apply here.
#[allow(clippy::too_many_arguments)]
fn create_locked(
    shared: &Shared,
    store: &mut Store,
    info: &ResourceInfo,
    ns: &str,
    mut obj: Value,
    dry: bool,
    req: &Request,
) -> Result<(Arc<Value>, Vec<subsea_store::Event>), ApiError> {
    guard(req, None, Some(&obj), "create")?;
    if info.group == subsea_rbac::RBAC_GROUP {
        authz::check_rbac_write(store, &req.user, &info.plural, ns, None, &obj)?;
    }
    if info.type_key() == "/secrets" {
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
#[allow(clippy::too_many_arguments)]
fn update_locked(
    shared: &Shared,
    store: &mut Store,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    mut obj: Value,
    part: Part,
    dry: bool,
    req: &Request,
) -> Result<(Arc<Value>, Vec<subsea_store::Event>), ApiError> {
    let current = store.get(&info.type_key(), ns, name);
    guard(req, current.as_deref(), Some(&obj), "update")?;
    if info.group == subsea_rbac::RBAC_GROUP {
        authz::check_rbac_write(store, &req.user, &info.plural, ns, current.as_deref(), &obj)?;
    }
    if info.type_key() == "/secrets" && part == Part::Main {
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

fn apply_patch(info: &ResourceInfo, ct: &str, target: &mut Value, body: &Value) -> Result<(), ApiError> {
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

async fn patch_object(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    req: &Request,
) -> Result<Reply, ApiError> {
    let ct = req.content_type();
    let body = req.json_body()?;
    let fv = FieldValidation::parse(req.q("fieldValidation"))?;
    let dry = req.dry_run()?;
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
        return server_side_apply(shared, info, ns, name, sub, body, fv, dry, req).await;
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
        return write_scale(shared, info, ns, name, replicas, rv, dry, req).await;
    }
    let mut target = present(info, &current);
    apply_patch(info, &ct, &mut target, &body)?;
    finish_update(shared, info, ns, name, target, sub, fv, dry, req).await
}

/// Server-side apply: field ownership, conflicts (409 unless `force=true`), create if missing.
#[allow(clippy::too_many_arguments)]
async fn server_side_apply(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    body: Value,
    fv: FieldValidation,
    dry: bool,
    req: &Request,
) -> Result<Reply, ApiError> {
    let manager = req.manager();
    let force = req.q("force") == Some("true");
    let is_crd = info.type_key() == CRD_TYPE;
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
                None => create_locked(shared, store, info, ns, obj, dry, req)?,
                Some(_) => update_locked(shared, store, info, ns, name, obj, part, dry, req)?,
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

fn json_pointer(path: &str) -> String {
    path.replace('.', "/")
}

/// The `autoscaling/v1` Scale view of a custom resource.
fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
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

#[allow(clippy::too_many_arguments)]
async fn write_scale(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    replicas: Value,
    rv: Option<Value>,
    dry: bool,
    req: &Request,
) -> Result<Reply, ApiError> {
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
            if let Some(rv) = rv.filter(|r| r.as_str().is_some_and(|s| !s.is_empty())) {
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

fn delete_options(req: &Request) -> Result<(Preconditions, bool, bool), ApiError> {
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
fn validate_delete_options(
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

fn success_status(info: &ResourceInfo, obj: &Value) -> Value {
    let m = &obj["metadata"];
    let mut details = json!({"name": m["name"], "kind": info.plural, "uid": m["uid"]});
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

async fn delete(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let (pre, dry, orphan) = delete_options(req)?;
    let is_crd = info.type_key() == CRD_TYPE;
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
    if info.type_key() == "/namespaces" {
        finalize_namespaces(shared).await;
    }
    Ok(match outcome {
        Deleted::Gone(obj) => Reply::json(200, success_status(info, &obj)),
        Deleted::Pending(obj) => Reply::json(200, present(info, &obj)),
    })
}

async fn delete_collection(
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

/// Runs the garbage collector when something was deleted since `seen` deletions; returns the
/// new count.
pub async fn collect_garbage(shared: &Arc<Shared>, seen: u64) -> u64 {
    let now_seen = shared.deletions.load(std::sync::atomic::Ordering::Relaxed);
    if now_seen == seen {
        return seen;
    }
    let _ = shared
        .write(|store, reg: &Registry| {
            let mut types = std::collections::HashSet::new();
            let infos: Vec<&ResourceInfo> = reg.all().iter().filter(|i| types.insert(i.type_key())).collect();
            Ok(((), store.collect_garbage(&infos, now())))
        })
        .await;
    now_seen
}

/// Runs the namespace controller step: empties terminating namespaces and removes empty ones.
pub async fn finalize_namespaces(shared: &Arc<Shared>) {
    let terminating = shared
        .store()
        .objects("/namespaces", None)
        .iter()
        .any(|n| n.pointer("/metadata/deletionTimestamp").is_some());
    if !terminating {
        return;
    }
    let _ = shared
        .write(|store, reg: &Registry| {
            let mut seen = std::collections::HashSet::new();
            let infos: Vec<&ResourceInfo> = reg.all().iter().filter(|i| seen.insert(i.type_key())).collect();
            Ok(((), store.finalize_namespaces(&infos, now())))
        })
        .await;
}
