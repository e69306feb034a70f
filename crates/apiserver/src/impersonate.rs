//! User impersonation (`kubectl --as`, `--as-group`, `--as-uid`): the `Impersonate-*` headers,
//! authorized with the `impersonate` verb exactly as kube-apiserver does, so that a request
//! never silently runs as the caller when it asked to run as someone else.

use hyper::HeaderMap;
use subsea_rbac::{Attributes, User};
use subsea_store::{ApiError, Store};

use crate::authz;

/// What a request asks to act as.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    user: String,
    groups: Vec<String>,
    uid: Option<String>,
    extras: Vec<(String, String)>,
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Result<Vec<&'a str>, ApiError> {
    headers
        .get_all(name)
        .iter()
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request(format!("the {name} header is not valid text")))
        })
        .collect()
}

/// The impersonation a request asks for, if any.
pub fn wanted(headers: &HeaderMap) -> Result<Option<Wanted>, ApiError> {
    let users = values(headers, "impersonate-user")?;
    let groups = values(headers, "impersonate-group")?;
    let uid = values(headers, "impersonate-uid")?;
    let mut extras = Vec::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix("impersonate-extra-") {
            let v = value
                .to_str()
                .map_err(|_| ApiError::bad_request(format!("the {name} header is not valid text")))?;
            // The key is percent-encoded in the header name.
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .into_owned();
            extras.extend(v.split(',').map(|x| (key.clone(), x.trim().to_string())));
        }
    }
    if users.is_empty() {
        if !groups.is_empty() || !uid.is_empty() || !extras.is_empty() {
            return Err(ApiError::bad_request(
                "requested impersonation of groups, a UID or extra fields without impersonating a user: add Impersonate-User (kubectl --as)",
            ));
        }
        return Ok(None);
    }
    if users.len() > 1 || uid.len() > 1 {
        return Err(ApiError::bad_request(
            "only one Impersonate-User and one Impersonate-Uid header may be given",
        ));
    }
    Ok(Some(Wanted {
        user: users[0].to_string(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        uid: uid.first().map(|u| u.to_string()),
        extras,
    }))
}

/// The `impersonate` checks a request needs, each with its attributes (Kubernetes' order).
fn checks(w: &Wanted) -> Vec<Attributes> {
    let attrs = |group: &str, resource: &str, ns: &str, name: &str| Attributes {
        verb: "impersonate".into(),
        api_group: group.into(),
        resource: resource.into(),
        subresource: String::new(),
        namespace: ns.into(),
        name: name.into(),
    };
    let mut out = Vec::new();
    match w
        .user
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, name)) => out.push(attrs("", "serviceaccounts", ns, name)),
        None => out.push(attrs("", "users", "", &w.user)),
    }
    for g in &w.groups {
        out.push(attrs("", "groups", "", g));
    }
    if let Some(uid) = &w.uid {
        out.push(attrs("authentication.k8s.io", "uids", "", uid));
    }
    for (key, value) in &w.extras {
        out.push(attrs(
            "authentication.k8s.io",
            &format!("userextras/{key}"),
            "",
            value,
        ));
    }
    out
}

/// The identity the request acts as: the impersonated one when the caller may impersonate it.
pub fn resolve(store: &Store, caller: User, w: Option<Wanted>) -> Result<User, ApiError> {
    let Some(w) = w else {
        return Ok(caller);
    };
    for a in checks(&w) {
        let mut rbac = a.clone();
        // `userextras/<key>` is a resource with a slash: RBAC sees resource and subresource.
        if let Some((res, sub)) = a.resource.split_once('/') {
            rbac.resource = res.into();
            rbac.subresource = sub.into();
        }
        if !authz::allowed(store, &caller, &rbac) {
            return Err(authz::forbidden(&caller, &a));
        }
    }
    let mut groups = w.groups;
    if groups.is_empty() {
        if let Some((ns, _)) = w
            .user
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
        {
            groups = vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
    }
    if w.user != "system:anonymous" && !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Ok(User { name: w.user, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn headers_become_checks_on_users_service_accounts_groups_and_extras() {
        assert_eq!(wanted(&headers(&[])).expect("none"), None);
        let w = wanted(&headers(&[
            ("Impersonate-User", "system:serviceaccount:team:bot"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Extra-Scopes%2Fx", "a, b"),
        ]))
        .expect("parsed")
        .expect("some");
        let c = checks(&w);
        assert_eq!(
            (
                c[0].resource.as_str(),
                c[0].namespace.as_str(),
                c[0].name.as_str()
            ),
            ("serviceaccounts", "team", "bot")
        );
        assert_eq!((c[1].resource.as_str(), c[1].name.as_str()), ("groups", "devs"));
        assert_eq!(c[2].resource, "userextras/scopes/x");
        assert_eq!(c.len(), 4);
        let e = wanted(&headers(&[("Impersonate-Group", "devs")])).expect_err("group alone");
        assert_eq!(e.code, 400);
    }

    #[test]
    fn the_admin_may_impersonate_and_the_identity_changes() {
        let store = Store::new();
        let w = wanted(&headers(&[(
            "Impersonate-User",
            "system:serviceaccount:team:bot",
        )]))
        .expect("parsed");
        let u = resolve(&store, User::admin(), w).expect("allowed");
        assert_eq!(u, User::service_account("team", "bot"));
        let w = wanted(&headers(&[("Impersonate-User", "bob")])).expect("parsed");
        let e = resolve(&store, User::service_account("team", "bot"), w).expect_err("not allowed");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "users \"bob\" is forbidden: User \"system:serviceaccount:team:bot\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        );
    }
}
