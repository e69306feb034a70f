//! API errors and their Kubernetes `Status` representation.

use serde_json::{Value, json};

/// One field-level problem, rendered as a `details.causes` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: String,
    /// Full message, e.g. `Invalid value: "x": spec.a in body must be of type integer: "string"`.
    pub message: String,
    /// Dotted path of the field.
    pub field: String,
}

/// An API failure that maps onto a Kubernetes `Status` object.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Kubernetes reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Object the error is about: (name, group, kind).
    pub details: Option<(String, String, String)>,
    /// Field-level causes (for `Invalid`).
    pub causes: Vec<Cause>,
}

/// Result with an [`ApiError`].
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            causes: Vec::new(),
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 404 for a path nothing is served at.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 404 NotFound for a named object; `resource` is `plural[.group]`.
    pub fn not_found(resource: &str, name: &str) -> Self {
        let (plural, group) = split_resource(resource);
        Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
            .with_details(name, group, plural)
    }

    /// 409 AlreadyExists.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        let (plural, group) = split_resource(resource);
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
        .with_details(name, group, plural)
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn conflict(resource: &str, name: &str) -> Self {
        Self::conflict_because(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a specific explanation.
    pub fn conflict_because(resource: &str, name: &str, why: &str) -> Self {
        let (plural, group) = split_resource(resource);
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {resource} \"{name}\": {why}"),
        )
        .with_details(name, group, plural)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410 Expired (too old resourceVersion or continue token).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 413 RequestEntityTooLarge, from the storage rather than the body limit.
    pub fn too_large_for_storage(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    /// 406 NotAcceptable: no representation the client accepts.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 422 Invalid with field causes. `kind` is the Kind, `group` its group.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = match list.len() {
            0 => format!("{qualified} \"{name}\" is invalid"),
            1 => format!("{qualified} \"{name}\" is invalid: {}", list[0]),
            _ => format!("{qualified} \"{name}\" is invalid: [{}]", list.join(", ")),
        };
        let mut err = Self::new(422, "Invalid", message).with_details(name, group, kind);
        err.causes = causes;
        err
    }

    /// 504 Timeout.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// 503 ServiceUnavailable: the storage cannot be reached; the request changed nothing.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    fn with_details(mut self, name: &str, group: &str, kind: &str) -> Self {
        self.details = Some((name.to_string(), group.to_string(), kind.to_string()));
        self
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((name, group, kind)) = &self.details {
            let mut details = json!({"name": name, "kind": kind});
            if !group.is_empty() {
                details["group"] = json!(group);
            }
            if !self.causes.is_empty() {
                details["causes"] = self
                    .causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
            }
            status["details"] = details;
        }
        status
    }
}

impl Cause {
    /// A cause with the given reason, field and message.
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// `FieldValueRequired`.
    pub fn required(field: impl Into<String>) -> Self {
        Self::new("FieldValueRequired", field, "Required value")
    }

    /// `FieldValueInvalid` with the offending value quoted as Kubernetes does.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", render_value(value)),
        )
    }
}

/// Renders a value the way Kubernetes field errors quote it.
pub fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".to_string(),
        Value::Array(_) => "\"array\"".to_string(),
        other => other.to_string(),
    }
}

fn split_resource(resource: &str) -> (&str, &str) {
    resource.split_once('.').unwrap_or((resource, ""))
}
