//! Bound service-account tokens (`TokenRequest`, `kubectl create token`): short-lived JWTs
//! naming the account (and the Pod or Secret they are bound to), signed with the server's key.
//! They stop authenticating when they expire, or when the account or the bound object is
//! deleted or recreated (checked by uid), as Kubernetes' bound tokens do.
//!
//! Signed with HMAC-SHA256 (`HS256`): only this server verifies them, through authentication
//! and `TokenReview`, so no public key needs publishing.

use base64::Engine;
use ring::hmac;
use serde_json::{Value, json};
use subsea_rbac::User;
use subsea_store::registry::keys;
use subsea_store::{ApiError, Store};

/// The audience of tokens for this API server (kube-apiserver's default issuer and audience).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
/// Default and minimum lifetimes (kube-apiserver's).
pub const DEFAULT_SECONDS: i64 = 3600;
const MIN_SECONDS: i64 = 600;
/// Longest lifetime granted; longer requests are shortened, as kube-apiserver caps them.
const MAX_SECONDS: i64 = 48 * 3600;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What a token says.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    /// Namespace of the account.
    pub namespace: String,
    /// Name of the account.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Audiences.
    pub audiences: Vec<String>,
    /// Issued at (seconds since the epoch).
    pub issued: i64,
    /// Expires at.
    pub expires: i64,
    /// The object it is bound to: (kind, name, uid).
    pub bound: Option<(String, String, String)>,
}

/// Signs `claims` into a JWT.
pub fn issue(key: &[u8], c: &Claims) -> String {
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut k8s = json!({"namespace": c.namespace, "serviceaccount": {"name": c.name, "uid": c.uid}});
    if let Some((kind, name, uid)) = &c.bound {
        k8s[kind.to_lowercase()] = json!({"name": name, "uid": uid});
    }
    let payload = json!({
        "iss": API_AUDIENCE, "aud": c.audiences, "sub": format!("system:serviceaccount:{}:{}", c.namespace, c.name),
        "iat": c.issued, "nbf": c.issued, "exp": c.expires, "kubernetes.io": k8s,
    });
    let signed = format!("{header}.{}", b64(payload.to_string().as_bytes()));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), signed.as_bytes());
    format!("{signed}.{}", b64(tag.as_ref()))
}

/// The claims of a token this server signed that is valid at `now`.
pub fn verify(key: &[u8], token: &str, now: i64) -> Option<Claims> {
    let (signed, tag) = token.rsplit_once('.')?;
    let (_, payload) = signed.split_once('.')?;
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tag)
        .ok()?;
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), signed.as_bytes(), &tag).ok()?;
    let p: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?,
    )
    .ok()?;
    let (issued, expires) = (p["nbf"].as_i64()?, p["exp"].as_i64()?);
    if now < issued || now >= expires {
        return None;
    }
    let k = &p["kubernetes.io"];
    let s = |v: &Value| v.as_str().map(String::from);
    let bound = ["pod", "secret"].iter().find_map(|kind| {
        let o = &k[*kind];
        Some((
            if *kind == "pod" { "Pod" } else { "Secret" }.to_string(),
            s(&o["name"])?,
            s(&o["uid"])?,
        ))
    });
    Some(Claims {
        namespace: s(&k["namespace"])?,
        name: s(&k["serviceaccount"]["name"])?,
        uid: s(&k["serviceaccount"]["uid"])?,
        audiences: p["aud"].as_array()?.iter().filter_map(s).collect(),
        issued,
        expires,
        bound,
    })
}

fn uid_of(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The account a token authenticates as, for `audience`: signature, lifetime, audience, and the
/// account and bound object still existing with the same uids.
pub fn authenticate(store: &Store, key: &[u8], token: &str, audience: &str, now: i64) -> Option<User> {
    let c = verify(key, token, now)?;
    if !c.audiences.iter().any(|a| a == audience) {
        return None;
    }
    let sa = store.get(keys::SERVICE_ACCOUNTS, &c.namespace, &c.name)?;
    if uid_of(&sa) != c.uid {
        return None;
    }
    if let Some((kind, name, uid)) = &c.bound {
        let ty = if kind == "Pod" { keys::PODS } else { keys::SECRETS };
        let obj = store.get(ty, &c.namespace, name)?;
        if uid_of(&obj) != uid {
            return None;
        }
    }
    Some(User::service_account(&c.namespace, &c.name))
}

/// Answers a TokenRequest for account `ns/name`: the request with its status filled in.
pub fn request(
    store: &Store,
    key: &[u8],
    ns: &str,
    name: &str,
    mut req: Value,
    now: i64,
) -> Result<Value, ApiError> {
    use subsea_store::error::Cause;
    let sa = store
        .get(keys::SERVICE_ACCOUNTS, ns, name)
        .ok_or_else(|| ApiError::not_found("serviceaccounts", name))?;
    let spec = &req["spec"];
    let seconds = spec["expirationSeconds"].as_i64().unwrap_or(DEFAULT_SECONDS);
    let invalid = |cause| ApiError::invalid("TokenRequest", "authentication.k8s.io", name, vec![cause]);
    if seconds < MIN_SECONDS {
        return Err(invalid(Cause::invalid(
            "spec.expirationSeconds",
            &json!(seconds),
            "may not specify a duration less than 10 minutes",
        )));
    }
    let seconds = seconds.min(MAX_SECONDS);
    let audiences: Vec<String> = match spec["audiences"].as_array() {
        Some(a) if !a.is_empty() => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => vec![API_AUDIENCE.to_string()],
    };
    let bound = match spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        None => None,
        Some(b) => {
            let kind = b["kind"].as_str().unwrap_or_default();
            let ty = match kind {
                "Pod" => keys::PODS,
                "Secret" => keys::SECRETS,
                other => {
                    return Err(invalid(Cause::new(
                        "FieldValueNotSupported",
                        "spec.boundObjectRef.kind",
                        format!("Unsupported value: {other:?}: supported values: \"Pod\", \"Secret\""),
                    )));
                }
            };
            let bname = b["name"].as_str().unwrap_or_default();
            let obj = store
                .get(ty, ns, bname)
                .ok_or_else(|| ApiError::not_found(&ty[1..], bname))?;
            let uid = uid_of(&obj).to_string();
            if b["uid"].as_str().is_some_and(|u| !u.is_empty() && u != uid) {
                return Err(ApiError::conflict_because(
                    &ty[1..],
                    bname,
                    "the uid in boundObjectRef does not match the object",
                ));
            }
            Some((kind.to_string(), bname.to_string(), uid))
        }
    };
    let claims = Claims {
        namespace: ns.into(),
        name: name.into(),
        uid: uid_of(&sa).into(),
        audiences: audiences.clone(),
        issued: now,
        expires: now + seconds,
        bound,
    };
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["kind"] = json!("TokenRequest");
    req["metadata"] =
        json!({"name": name, "namespace": ns, "creationTimestamp": subsea_store::meta::rfc3339(now)});
    req["spec"]["audiences"] = json!(audiences);
    req["spec"]["expirationSeconds"] = json!(seconds);
    req["status"] = json!({"token": issue(key, &claims), "expirationTimestamp": subsea_store::meta::rfc3339(claims.expires)});
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            namespace: "team".into(),
            name: "bot".into(),
            uid: "u1".into(),
            audiences: vec![API_AUDIENCE.into()],
            issued: 1000,
            expires: 4600,
            bound: Some(("Pod".into(), "web".into(), "p1".into())),
        }
    }

    #[test]
    fn tokens_verify_only_with_the_key_and_within_their_lifetime() {
        let t = issue(b"key", &claims());
        assert_eq!(t.split('.').count(), 3);
        assert_eq!(verify(b"key", &t, 2000), Some(claims()));
        assert_eq!(verify(b"other", &t, 2000), None, "another key");
        assert_eq!(verify(b"key", &t, 4600), None, "expired");
        assert_eq!(verify(b"key", &t, 999), None, "not yet valid");
        let mut forged = t.clone();
        forged.insert(forged.find('.').unwrap_or(0) + 2, 'x');
        assert_eq!(verify(b"key", &forged, 2000), None, "tampered");
        assert_eq!(verify(b"key", "a.b", 2000), None);
        assert_eq!(verify(b"key", "subsea-sa.abc", 2000), None);
    }
}
