//! Authentication (bearer tokens: the admin token and service-account tokens) and the
//! service-account token controller, which fills in token Secrets as Kubernetes does.

use std::collections::HashMap;

use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};
use subsea_rbac::User;
use subsea_store::registry::keys;
use subsea_store::{Event, EventType, Store};

/// Type of Secrets that hold a service-account token.
pub const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

fn b64(s: &str) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(s))
}

fn decoded(v: &Value) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.as_str()?)
        .ok()?;
    String::from_utf8(raw).ok()
}

/// The token controller: a token Secret for an existing service account gets `token`, `ca.crt`
/// and `namespace` (and the account's uid annotation) filled in, if it has no token yet.
pub fn fill_token_secret(store: &Store, ns: &str, secret: &mut Value, ca_pem: &str) {
    if secret["type"] != SA_TOKEN_TYPE {
        return;
    }
    let Some(sa_name) = secret
        .pointer(&format!(
            "/metadata/annotations/{}",
            SA_NAME_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .map(String::from)
    else {
        return;
    };
    let Some(sa) = store.get(keys::SERVICE_ACCOUNTS, ns, &sa_name) else {
        return;
    };
    if secret
        .pointer("/data/token")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        return;
    }
    let bytes: [u8; 32] = rand::rng().random();
    let token = format!(
        "subsea-sa.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    if !secret["data"].is_object() {
        secret["data"] = json!({});
    }
    secret["data"]["token"] = b64(&token);
    secret["data"]["ca.crt"] = b64(ca_pem);
    secret["data"]["namespace"] = b64(ns);
    if let Some(uid) = sa.pointer("/metadata/uid") {
        if secret["metadata"]["annotations"].is_object() {
            secret["metadata"]["annotations"][SA_UID_ANNOTATION] = uid.clone();
        }
    }
}

/// Index of service-account tokens: token → (namespace, service account).
#[derive(Default)]
pub struct TokenIndex(HashMap<String, (String, String)>);

fn token_of(secret: &Value) -> Option<(String, String, String)> {
    if secret["type"] != SA_TOKEN_TYPE {
        return None;
    }
    let token = decoded(secret.pointer("/data/token")?)?;
    let ns = secret.pointer("/metadata/namespace")?.as_str()?.to_string();
    let sa = secret
        .pointer("/metadata/annotations")?
        .get(SA_NAME_ANNOTATION)?
        .as_str()?
        .to_string();
    Some((token, ns, sa))
}

impl TokenIndex {
    /// Builds the index from every stored Secret.
    pub fn build(store: &Store) -> Self {
        let mut idx = Self::default();
        for s in store.objects(keys::SECRETS, None) {
            if let Some((t, ns, sa)) = token_of(&s) {
                idx.0.insert(t, (ns, sa));
            }
        }
        idx
    }

    /// Follows the Secret changes among `events`.
    pub fn apply(&mut self, events: &[Event]) {
        for ev in events.iter().filter(|e| e.ty == keys::SECRETS) {
            if let Some((t, _, _)) = ev.prev.as_deref().and_then(token_of) {
                self.0.remove(&t);
            }
            if ev.kind != EventType::Deleted {
                if let Some((t, ns, sa)) = token_of(&ev.object) {
                    self.0.insert(t, (ns, sa));
                }
            }
        }
    }

    /// The service account a token belongs to, if the account still exists.
    pub fn authenticate(&self, token: &str, store: &Store) -> Option<User> {
        let (ns, sa) = self.0.get(token)?;
        store.get(keys::SERVICE_ACCOUNTS, ns, sa)?;
        Some(User::service_account(ns, sa))
    }
}

/// Constant-time comparison, so timing does not reveal a prefix of a secret.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
