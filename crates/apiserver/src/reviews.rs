//! The review APIs other components and `kubectl auth` ask: `SelfSubjectAccessReview` (may I?),
//! `SubjectAccessReview` (may this user?), `TokenReview` (whose token is this?).

use hyper::Method;
use serde_json::{Value, json};
use subsea_rbac::{Attributes, User};
use subsea_store::ApiError;

use crate::authz;
use crate::reply::Reply;
use crate::request::Request;
use crate::state::{Shared, now};

fn create_only(req: &Request, plural: &str) -> Result<Value, ApiError> {
    if req.method != Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "{plural} only supports create"
        )));
    }
    req.json_body()
}

/// The RBAC attributes of a review's `spec.resourceAttributes`, if it has them.
fn attributes(spec: &Value) -> Option<Attributes> {
    let ra = spec.get("resourceAttributes").filter(|r| r.is_object())?;
    let s = |k: &str| ra.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Some(Attributes {
        verb: s("verb"),
        api_group: s("group"),
        resource: s("resource"),
        subresource: s("subresource"),
        namespace: s("namespace"),
        name: s("name"),
    })
}

fn answer(mut review: Value, group: &str, kind: &str, status: Value) -> Reply {
    review["status"] = status;
    review["apiVersion"] = json!(format!("{group}/v1"));
    review["kind"] = json!(kind);
    Reply::json(201, review)
}

/// `SelfSubjectAccessReview`: may the caller do this? (`kubectl auth can-i`)
pub fn self_access(shared: &Shared, req: &Request) -> Result<Reply, ApiError> {
    let review = create_only(req, "selfsubjectaccessreviews")?;
    let allowed = attributes(&review["spec"]).is_some_and(|a| authz::allowed(&shared.store(), &req.user, &a));
    Ok(answer(
        review,
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        json!({"allowed": allowed}),
    ))
}

/// `SubjectAccessReview`: may `spec.user` (with `spec.groups`) do this?
pub fn subject_access(shared: &Shared, req: &Request) -> Result<Reply, ApiError> {
    let review = create_only(req, "subjectaccessreviews")?;
    let spec = &review["spec"];
    let user = spec["user"].as_str().unwrap_or_default();
    let groups: Vec<String> = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(String::from))
        .collect();
    if user.is_empty() && groups.is_empty() {
        return Err(ApiError::invalid(
            "SubjectAccessReview",
            "authorization.k8s.io",
            "",
            vec![subsea_store::error::Cause::invalid(
                "spec.user",
                &json!(""),
                "at least one of user or group must be specified",
            )],
        ));
    }
    let Some(a) = attributes(spec) else {
        return Err(ApiError::invalid(
            "SubjectAccessReview",
            "authorization.k8s.io",
            "",
            vec![subsea_store::error::Cause::required("spec.resourceAttributes")],
        ));
    };
    let subject = User {
        name: user.to_string(),
        groups,
    };
    let allowed = authz::allowed(&shared.store(), &subject, &a);
    let status = if allowed {
        json!({"allowed": true})
    } else {
        json!({"allowed": false, "reason": subsea_rbac::forbidden_message(&subject, &a)})
    };
    Ok(answer(
        review,
        "authorization.k8s.io",
        "SubjectAccessReview",
        status,
    ))
}

/// `TokenReview`: whose token is `spec.token`, for `spec.audiences` (default: this server)?
pub fn token(shared: &Shared, req: &Request) -> Result<Reply, ApiError> {
    let review = create_only(req, "tokenreviews")?;
    let token = review["spec"]["token"].as_str().unwrap_or_default().to_string();
    let wanted: Vec<String> = review["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let wanted = if wanted.is_empty() {
        vec![crate::tokens::API_AUDIENCE.to_string()]
    } else {
        wanted
    };
    // A bound token is good for the audiences it names; the others (Secret tokens, the admin
    // token) only for this server.
    let found = if token.split('.').count() == 3 {
        wanted.iter().find_map(|aud| {
            let store = shared.store();
            crate::tokens::authenticate(&store, &shared.signing_key, &token, aud, now())
                .map(|u| (u, aud.clone()))
        })
    } else if wanted.iter().any(|a| a == crate::tokens::API_AUDIENCE) {
        let user = if crate::auth::same_secret(&token, &shared.admin_token) {
            Some(User::admin())
        } else {
            shared.authenticate_token(&token)
        };
        user.map(|u| (u, crate::tokens::API_AUDIENCE.to_string()))
    } else {
        None
    };
    let status = match found {
        Some((u, aud)) => {
            json!({"authenticated": true, "user": {"username": u.name, "groups": u.groups}, "audiences": [aud]})
        }
        None => {
            json!({"authenticated": false, "error": "the token is invalid, expired, revoked, or not for these audiences"})
        }
    };
    Ok(answer(review, "authentication.k8s.io", "TokenReview", status))
}
