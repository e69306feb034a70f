//! A parsed resource request and how its answer is rendered: the caller, the query, the body
//! (decoded by media type), the field manager, the view (full, Table, metadata).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use serde_json::{Value, json};
use subsea_store::selector::{FieldSelector, LabelSelector};
use subsea_store::store::ListOptions;
use subsea_store::{ApiError, ResourceInfo};

use crate::route::ResourcePath;
use crate::state::now;
use subsea_rbac::User;

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
    pub(crate) fn is_apply(&self) -> bool {
        self.content_type() == "application/apply-patch+yaml"
    }

    /// The field manager: `fieldManager`, else the client's name from its User-Agent, as
    /// Kubernetes does.
    pub(crate) fn manager(&self) -> String {
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

    pub(crate) fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(crate) fn dry_run(&self) -> Result<bool, ApiError> {
        match self.q("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other}; only All is supported"
            ))),
        }
    }

    pub(crate) fn content_type(&self) -> String {
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
pub(crate) const PATCH_TYPES: &[&str] = &[
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
