//! Consistent pagination: the first page of a limited list snapshots the whole result; later
//! pages are served from that snapshot, like Kubernetes serving every page at the first page's
//! resourceVersion. Snapshots expire (410 Expired, as when etcd compacted the revision).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::Rng;
use serde_json::Value;
use subsea_store::ApiError;

/// How long a continue token stays valid (kube-apiserver's compaction interval).
const TTL: Duration = Duration::from_secs(300);
/// Most snapshots kept at once; the oldest go first.
const MAX_SNAPSHOTS: usize = 256;

struct Snapshot {
    created: Instant,
    /// What the list was of and for whom; a token only continues the same list.
    scope: String,
    rev: u64,
    rest: Vec<Arc<Value>>,
}

/// Open list snapshots by token id.
#[derive(Default)]
pub struct Pager {
    snapshots: HashMap<u64, Snapshot>,
}

/// One page of a list.
pub struct Page {
    /// Items of this page.
    pub items: Vec<Arc<Value>>,
    /// resourceVersion of the whole list.
    pub rev: u64,
    /// Token of the next page.
    pub continue_token: Option<String>,
    /// Items after this page.
    pub remaining: Option<usize>,
}

fn expired() -> ApiError {
    ApiError::expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    )
}

impl Pager {
    fn sweep(&mut self, now: Instant) {
        self.snapshots.retain(|_, s| now.duration_since(s.created) < TTL);
        while self.snapshots.len() >= MAX_SNAPSHOTS {
            let Some(oldest) = self
                .snapshots
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.snapshots.remove(&oldest);
        }
    }

    /// Pages a fresh list result. `scope` names the list (resource, namespace, selectors) and
    /// the caller: only the same scope can continue it.
    pub fn first(
        &mut self,
        items: Vec<Arc<Value>>,
        rev: u64,
        limit: Option<usize>,
        now: Instant,
        scope: &str,
    ) -> Page {
        self.sweep(now);
        self.page(items, rev, limit, now, scope)
    }

    /// The next page of a snapshot; the snapshot keeps the age of its first page. A token from
    /// another list or another caller is refused, and the snapshot stays for its owner.
    pub fn next(
        &mut self,
        token: &str,
        limit: Option<usize>,
        now: Instant,
        scope: &str,
    ) -> Result<Page, ApiError> {
        let (id, _) = decode(token)?;
        self.sweep(now);
        match self.snapshots.get(&id) {
            None => return Err(expired()),
            Some(s) if s.scope != scope => return Err(not_this_list()),
            Some(_) => {}
        }
        let snap = self.snapshots.remove(&id).ok_or_else(expired)?;
        Ok(self.page(snap.rest, snap.rev, limit, snap.created, scope))
    }

    fn page(
        &mut self,
        mut items: Vec<Arc<Value>>,
        rev: u64,
        limit: Option<usize>,
        created: Instant,
        scope: &str,
    ) -> Page {
        match limit.filter(|l| *l > 0 && items.len() > *l) {
            None => Page {
                items,
                rev,
                continue_token: None,
                remaining: None,
            },
            Some(l) => {
                let rest = items.split_off(l);
                let id: u64 = rand::rng().random();
                let remaining = rest.len();
                self.snapshots.insert(
                    id,
                    Snapshot {
                        created,
                        scope: scope.to_string(),
                        rev,
                        rest,
                    },
                );
                Page {
                    items,
                    rev,
                    continue_token: Some(encode(id, rev)),
                    remaining: Some(remaining),
                }
            }
        }
    }
}

fn not_this_list() -> ApiError {
    ApiError::bad_request(
        "continue key is not valid: it continues a different list (another resource, namespace, selector or user); start a new list without the continue parameter",
    )
}

fn encode(id: u64, rev: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{{\"id\":{id},\"rv\":{rev}}}"))
}

fn decode(token: &str) -> Result<(u64, u64), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid: it was not issued by this server");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v["id"].as_u64().ok_or_else(bad)?,
        v["rv"].as_u64().ok_or_else(bad)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objs(n: usize) -> Vec<Arc<Value>> {
        (0..n).map(|i| Arc::new(json!({"i": i}))).collect()
    }

    #[test]
    fn pages_come_from_one_snapshot() {
        let mut p = Pager::default();
        let now = Instant::now();
        let first = p.first(objs(5), 42, Some(2), now, "s");
        assert_eq!((first.items.len(), first.remaining), (2, Some(3)));
        let second = p
            .next(first.continue_token.as_deref().expect("token"), Some(2), now, "s")
            .expect("page 2");
        assert_eq!((second.rev, second.remaining), (42, Some(1)));
        let third = p
            .next(
                second.continue_token.as_deref().expect("token"),
                Some(2),
                now,
                "s",
            )
            .expect("page 3");
        assert_eq!(third.items[0]["i"], 4);
        assert!(third.continue_token.is_none());
        assert_eq!(
            p.next(first.continue_token.as_deref().expect("token"), Some(2), now, "s")
                .err()
                .map(|e| e.code),
            Some(410),
            "tokens are single use"
        );
    }

    #[test]
    fn a_token_continues_only_its_own_list() {
        let mut p = Pager::default();
        let now = Instant::now();
        let first = p.first(objs(3), 7, Some(1), now, "/secrets|ns|admin");
        let token = first.continue_token.expect("token");
        let other = p
            .next(&token, Some(1), now, "/configmaps|ns|sa")
            .err()
            .map(|e| e.code);
        assert_eq!(other, Some(400), "another resource or caller is refused");
        let own = p
            .next(&token, Some(1), now, "/secrets|ns|admin")
            .expect("owner continues");
        assert_eq!(own.items[0]["i"], 1);
    }

    #[test]
    fn tokens_expire_and_garbage_is_rejected() {
        let mut p = Pager::default();
        let t0 = Instant::now();
        let first = p.first(objs(3), 1, Some(1), t0, "s");
        let later = t0 + TTL + Duration::from_secs(1);
        assert_eq!(
            p.next(
                first.continue_token.as_deref().expect("token"),
                Some(1),
                later,
                "s"
            )
            .err()
            .map(|e| e.code),
            Some(410)
        );
        assert_eq!(p.next("!!!", Some(1), t0, "s").err().map(|e| e.code), Some(400));
    }
}
