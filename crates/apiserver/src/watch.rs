//! Watch streams: newline-delimited JSON events (re-framed as protobuf by the reply when asked), resumed from a resourceVersion out of the
//! per-type history, with bookmarks and selector transitions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use subsea_store::store::ListOptions;
use subsea_store::{ApiError, Event, EventType, ResourceInfo};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};

use crate::reply::Reply;
use crate::request::{View, list_options};
use crate::state::Shared;

/// Server-side bookmark period (kube-apiserver's default).
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// Longest watch when the client sets no timeout.
const DEFAULT_TIMEOUT: u64 = 1800;
/// Bytes of events one watcher may have queued and not yet taken by its connection. A watcher
/// further behind is closed, as kube-apiserver closes an unresponsive watcher: the client
/// resumes or relists, writers never wait, and the memory is returned.
const WATCHER_BUDGET: usize = 4 << 20;

/// The sending side of one watch stream, bounded in bytes. Each queued line holds permits for
/// its size until the connection takes it.
struct Outbox {
    tx: mpsc::UnboundedSender<(Bytes, OwnedSemaphorePermit)>,
    budget: Arc<Semaphore>,
}

fn permits(b: &Bytes) -> u32 {
    // A line larger than the whole budget still goes out, alone.
    b.len().clamp(1, WATCHER_BUDGET) as u32
}

impl Outbox {
    fn new() -> (Self, crate::reply::Lines) {
        let (tx, body) = mpsc::unbounded_channel::<(Bytes, OwnedSemaphorePermit)>();
        let budget = Arc::new(Semaphore::new(WATCHER_BUDGET));
        (Self { tx, budget }, body)
    }

    /// Queues a line, waiting for room (the initial list: the client is reading it).
    async fn send(&self, b: Bytes) -> bool {
        let Ok(permit) = self.budget.clone().acquire_many_owned(permits(&b)).await else {
            return false;
        };
        self.tx.send((b, permit)).is_ok()
    }

    /// Queues a live event without waiting; false when the client is gone or too far behind.
    fn offer(&self, b: Bytes) -> bool {
        match self.budget.clone().try_acquire_many_owned(permits(&b)) {
            Ok(permit) => self.tx.send((b, permit)).is_ok(),
            Err(_) => false,
        }
    }

    /// An error line, even past the budget: it is the last thing the watcher is sent.
    fn last_word(&self, b: Bytes) {
        let spare = Arc::new(Semaphore::new(1));
        if let Ok(permit) = spare.try_acquire_owned() {
            let _ = self.tx.send((b, permit));
        }
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn error_line(err: &ApiError) -> Bytes {
    line("ERROR", &err.to_status())
}

fn bookmark(info: &ResourceInfo, rev: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta}),
    )
}

fn matches(opts: &ListOptions, obj: &Value) -> bool {
    if let Some(ns) = &opts.namespace {
        if obj.pointer("/metadata/namespace").and_then(Value::as_str) != Some(ns.as_str()) {
            return false;
        }
    }
    opts.labels.matches(obj.pointer("/metadata/labels")) && opts.fields.matches(obj)
}

/// What a watcher sees of an event, given its filters: objects entering the selection are
/// ADDED, objects leaving it are DELETED.
fn translate(opts: &ListOptions, ev: &Event) -> Option<&'static str> {
    let now = matches(opts, &ev.object);
    let before = ev.prev.as_ref().is_some_and(|p| matches(opts, p));
    match (ev.kind, before, now) {
        (EventType::Added, _, true) => Some("ADDED"),
        (EventType::Modified, true, true) => Some("MODIFIED"),
        (EventType::Modified, false, true) => Some("ADDED"),
        (EventType::Modified, true, false) => Some("DELETED"),
        (EventType::Deleted, _, true) => Some("DELETED"),
        _ => None,
    }
}

/// Starts a watch; the reply streams until timeout, client disconnect, or a 410.
pub fn start(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: Option<&str>,
    query: &HashMap<String, String>,
    view: View,
) -> Result<Reply, ApiError> {
    let opts = list_options(info, ns, query)?;
    let q = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let send_initial = q("sendInitialEvents") == Some("true");
    let bookmarks = q("allowWatchBookmarks") == Some("true");
    let timeout = q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(DEFAULT_TIMEOUT);
    let ty = info.type_key();
    let (out, body) = Outbox::new();
    let reply = Reply::stream(
        body,
        subsea_store::protobuf::understands(&info.api_version(), &info.kind),
    );

    let requested = match q("resourceVersion") {
        None | Some("0") => None,
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {r:?}")))?,
        ),
    };
    let start = {
        let mut hub = shared.hub();
        match requested {
            Some(rev) if !send_initial => {
                let current = shared.store().rev();
                let resumed = if rev > current {
                    // Kubernetes' answer for a resourceVersion from the future (the client
                    // talked to a server with more data, or made it up): not "too old".
                    Err(ApiError::timeout(format!(
                        "Too large resource version: {rev}, current: {current}"
                    )))
                } else {
                    hub.resume(&ty, rev)
                };
                match resumed {
                    Ok((past, rx)) => Ok((Vec::new(), past, rx, rev)),
                    Err(e) => Err(e),
                }
            }
            _ => {
                let store = shared.store();
                let objs: Vec<Arc<Value>> = store
                    .objects(&ty, ns)
                    .into_iter()
                    .filter(|o| matches(&opts, o))
                    .collect();
                let rev = store.rev();
                drop(store);
                Ok((objs, Vec::new(), hub.subscribe(&ty), rev))
            }
        }
    };
    let (initial, past, mut rx, mut last) = match start {
        Ok(s) => s,
        // A resourceVersion from the future is an HTTP error, as kube-apiserver answers it.
        Err(e) if e.code == 504 => return Err(e),
        Err(e) => {
            // A too-old resourceVersion is an ERROR event in a 200 stream, not an HTTP 410:
            // kube-runtime's watcher only relists on the former.
            out.last_word(error_line(&e));
            return Ok(reply);
        }
    };
    let info = info.clone();
    tokio::spawn(async move {
        for obj in initial {
            if !out.send(line("ADDED", &view.one(&info, &obj))).await {
                return;
            }
        }
        if send_initial && !out.send(bookmark(&info, last, true)).await {
            return;
        }
        for ev in past {
            last = ev.rev;
            if let Some(kind) = translate(&opts, &ev) {
                if !out.send(line(kind, &view.one(&info, &ev.object))).await {
                    return;
                }
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    if bookmarks {
                        out.offer(bookmark(&info, last, false));
                    }
                    return;
                }
                _ = out.tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if !out.offer(bookmark(&info, last, false)) {
                        return;
                    }
                }
                r = rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rev <= last {
                            continue;
                        }
                        last = ev.rev;
                        if let Some(kind) = translate(&opts, &ev) {
                            if !out.offer(line(kind, &view.one(&info, &ev.object))) {
                                tracing::info!(ty = %info.type_key(), rev = last, "closing a watcher that fell behind");
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let err = ApiError::expired(format!("too old resource version: {last}: watcher fell behind"));
                        out.last_word(error_line(&err));
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use subsea_store::selector::LabelSelector;

    fn ev(kind: EventType, prev: Option<Value>, now: Value) -> Event {
        Event {
            ty: "/configmaps".into(),
            kind,
            object: Arc::new(now),
            prev: prev.map(Arc::new),
            rev: 1,
        }
    }

    #[test]
    fn objects_leaving_the_selection_are_deleted_for_the_watcher() {
        let opts = ListOptions {
            labels: LabelSelector::parse("app=a").expect("sel"),
            ..Default::default()
        };
        let a = json!({"metadata": {"labels": {"app": "a"}}});
        let b = json!({"metadata": {"labels": {"app": "b"}}});
        assert_eq!(
            translate(&opts, &ev(EventType::Modified, Some(a.clone()), b.clone())),
            Some("DELETED")
        );
        assert_eq!(
            translate(&opts, &ev(EventType::Modified, Some(b.clone()), a.clone())),
            Some("ADDED")
        );
        assert_eq!(
            translate(&opts, &ev(EventType::Modified, Some(a.clone()), a.clone())),
            Some("MODIFIED")
        );
        assert_eq!(
            translate(&opts, &ev(EventType::Modified, Some(b.clone()), b.clone())),
            None
        );
        assert_eq!(translate(&opts, &ev(EventType::Deleted, None, b)), None);
    }
}
