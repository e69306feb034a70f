//! The etcd storage backend: objects live in etcd v3 under kube-apiserver's key layout
//! ([`subsea_store::layout`]); this process keeps a cache of them fed by one etcd watch.
//!
//! A write is decided on the cache tentatively, taken back, and sent as one etcd transaction
//! guarded on the `mod_revision` of every key it read; the caller is answered once the watch
//! has brought the change back into the cache, so every replica applies every change in etcd's
//! revision order and resourceVersions are etcd revisions. A guard that fails means another
//! replica wrote first: the cache catches up and the write is decided again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType as EtcdEvent, GetOptions, Identity,
    KvClient, TlsOptions, Txn, TxnOp, WatchClient, WatchOptions,
};
use serde_json::Value;
use subsea_store::ApiError;
use subsea_store::layout::{Expect, KeyWrite, Layout, object_from_storage};
use subsea_store::store::ObjectKey;
use tokio::sync::mpsc;

use crate::error::{Context, Error, Result};
use crate::state::Shared;

/// How long one etcd request may take before the API request answers 504.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys per range request when loading the cache.
const PAGE: i64 = 500;
/// Largest message read from etcd: a watch event carries an object and its previous state,
/// a load page up to [`PAGE`] objects; gRPC's default of 4 MiB is smaller than either can be.
const MAX_MESSAGE: usize = 512 << 20;
/// etcd's default limit of operations in one transaction (`--max-txn-ops`), less a margin.
pub const MAX_TXN_KEYS: usize = 100;

/// Where etcd is and how to reach it.
#[derive(Clone, Debug, Default)]
pub struct EtcdConfig {
    /// Client URLs of the etcd members (`http://` or `https://`).
    pub servers: Vec<String>,
    /// CA bundle the members' serving certificates are checked against.
    pub ca_file: Option<PathBuf>,
    /// Client certificate, for members that require one.
    pub cert_file: Option<PathBuf>,
    /// Key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// Key prefix, as kube-apiserver's `--etcd-prefix`.
    pub prefix: String,
}

/// A connected etcd backend.
pub struct Etcd {
    kv: KvClient,
    watcher: WatchClient,
    /// The key layout.
    pub layout: Layout,
    servers: String,
    /// `mod_revision` of the Service IP allocation guard key as of the cache's contents:
    /// published together with the changes of its revision, so a decision made on the cache
    /// guards on the allocation state it saw.
    ranges_rev: std::sync::atomic::AtomicU64,
    /// The same, as the feed has read it but maybe not applied yet.
    ranges_seen: std::sync::atomic::AtomicU64,
    progress: mpsc::UnboundedSender<()>,
    progress_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<()>>>,
}

/// One change the watch brought.
pub struct Change {
    /// The object.
    pub key: ObjectKey,
    /// Its content (with resourceVersion), or `None` when it was deleted.
    pub object: Option<Value>,
    /// The revision of the change.
    pub rev: u64,
}

/// How a transaction ended.
pub enum Outcome {
    /// Applied at this revision.
    Committed(u64),
    /// A key changed since the write read it; etcd is at this revision.
    Stale(u64),
}

fn unavailable(servers: &str, e: impl std::fmt::Display) -> ApiError {
    let e = e.to_string();
    if e.contains("request is too large") {
        return ApiError::too_large_for_storage(format!(
            "the object is larger than etcd accepts ({e}); raise the members' --max-request-bytes or store less"
        ));
    }
    ApiError::unavailable(format!(
        "storage is unavailable: etcd at {servers} did not answer ({e}); nothing was changed"
    ))
}

/// Runs one etcd request within [`REQUEST_TIMEOUT`]. A member that refuses the connection is
/// tried again (the client balances over every member, so the retry finds a live one): a
/// request that never reached etcd changed nothing.
async fn timed<T, F>(servers: &str, mut f: impl FnMut() -> F) -> std::result::Result<T, ApiError>
where
    F: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if never_sent(&e) && tokio::time::Instant::now() + RETRY_PAUSE < deadline => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Ok(Err(e)) => return Err(unavailable(servers, e)),
            Err(_) => {
                return Err(ApiError::timeout(format!(
                    "etcd at {servers} did not answer within {} s",
                    REQUEST_TIMEOUT.as_secs()
                )));
            }
        }
    }
}

/// Pause before sending a request again to another member.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Whether the request failed before any member received it.
fn never_sent(e: &etcd_client::Error) -> bool {
    let text = e.to_string();
    text.contains("tcp connect error") || text.contains("Connection refused")
}

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the etcd {what} {}", path.display()))
}

fn tls(cfg: &EtcdConfig) -> Result<Option<TlsOptions>> {
    if cfg.ca_file.is_none() && cfg.cert_file.is_none() && cfg.key_file.is_none() {
        return Ok(None);
    }
    let mut t = TlsOptions::new();
    if let Some(ca) = &cfg.ca_file {
        t = t.ca_certificate(Certificate::from_pem(read(ca, "CA file (--etcd-cafile)")?));
    }
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(c), Some(k)) => {
            t = t.identity(Identity::from_pem(
                read(c, "client certificate (--etcd-certfile)")?,
                read(k, "client key (--etcd-keyfile)")?,
            ))
        }
        (None, None) => {}
        _ => {
            return Err(Error::Corrupt(
                "--etcd-certfile and --etcd-keyfile go together: give both or neither".into(),
            ));
        }
    }
    Ok(Some(t))
}

fn prefix_end(root: &str) -> Vec<u8> {
    let mut end = root.as_bytes().to_vec();
    // The root ends in '/', so the last byte can always be raised.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

impl Etcd {
    /// Connects and checks that the cluster answers; the error names the URLs.
    pub async fn connect(cfg: &EtcdConfig, builtin: &[String]) -> Result<Self> {
        let servers = cfg.servers.join(",");
        let tls = tls(cfg)?;
        if tls.is_some() && cfg.servers.iter().any(|s| !s.starts_with("https://")) {
            return Err(Error::Corrupt(format!(
                "--etcd-servers {servers}: TLS files were given, so every URL must start with https://"
            )));
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3));
        if let Some(t) = tls {
            opts = opts.with_tls(t);
        }
        let client = Client::connect(&cfg.servers, Some(opts))
            .await
            .with_context(|| format!("cannot connect to etcd at {servers} (--etcd-servers)"))?;
        let (progress, rx) = mpsc::unbounded_channel();
        let etcd = Self {
            kv: client.kv_client().max_decoding_message_size(MAX_MESSAGE),
            watcher: client.watch_client().max_decoding_message_size(MAX_MESSAGE),
            layout: Layout::new(&cfg.prefix, builtin.iter().map(String::as_str)),
            servers: servers.clone(),
            ranges_rev: std::sync::atomic::AtomicU64::new(0),
            ranges_seen: std::sync::atomic::AtomicU64::new(0),
            progress,
            progress_rx: std::sync::Mutex::new(Some(rx)),
        };
        etcd.revision().await.map_err(|e| {
            Error::Corrupt(format!(
                "cannot reach etcd at {servers} (--etcd-servers): {}; check that the members run and the URLs and TLS files are right",
                e.message
            ))
        })?;
        Ok(etcd)
    }

    /// etcd's current revision (a linearizable read).
    pub async fn revision(&self) -> std::result::Result<u64, ApiError> {
        let resp = timed(&self.servers, || {
            let mut c = self.kv.clone();
            let root = self.layout.root();
            async move {
                c.get(root, Some(GetOptions::new().with_prefix().with_count_only()))
                    .await
            }
        })
        .await?;
        Ok(resp.header().map(|h| h.revision().max(0) as u64).unwrap_or(0))
    }

    /// Every object under the prefix at one revision, in pages; values that are not objects
    /// are skipped and logged by key.
    pub async fn load(&self) -> std::result::Result<(Vec<(ObjectKey, Value)>, u64), ApiError> {
        let root = self.layout.root();
        let end = prefix_end(&root);
        let mut out = Vec::new();
        let mut from = root.as_bytes().to_vec();
        let mut at = 0i64;
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if at > 0 {
                opts = opts.with_revision(at);
            }
            let resp = timed(&self.servers, || {
                let (mut c, from, opts) = (self.kv.clone(), from.clone(), opts.clone());
                async move { c.get(from, Some(opts)).await }
            })
            .await?;
            if at == 0 {
                at = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            for kv in resp.kvs() {
                if let Some(obj) = self.decode(kv.key(), kv.value(), kv.mod_revision()) {
                    out.push(obj);
                }
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok((out, at.max(0) as u64))
    }

    fn decode(&self, key: &[u8], value: &[u8], rev: i64) -> Option<(ObjectKey, Value)> {
        let key_text = String::from_utf8_lossy(key);
        if key_text == self.layout.service_ips_key() {
            self.ranges_seen
                .fetch_max(rev.max(0) as u64, std::sync::atomic::Ordering::Relaxed);
            return None;
        }
        let Some(k) = self.layout.parse(&key_text) else {
            tracing::debug!(key = %key_text, "skipping an etcd key that is not an object of ours");
            return None;
        };
        match object_from_storage(value, rev.max(0) as u64) {
            Ok(obj) => Some((k, obj)),
            Err(e) => {
                tracing::warn!(key = %key_text, reason = %e.0, "skipping an etcd value that is not a stored object");
                None
            }
        }
    }

    /// What a write sends: its key changes, and when it allocates Service IPs, the allocation
    /// guard first (two writers that picked the same free address cannot both succeed, on one
    /// replica or two; kube-apiserver guards its allocator bitmap the same way).
    /// `known` is [`Etcd::allocation_revision`] read with the cache the write was decided on.
    pub fn plan(&self, events: &[subsea_store::Event], known: u64) -> Vec<KeyWrite> {
        let mut plan = self.layout.plan(events);
        if events.iter().any(allocates_service_ip) {
            plan.insert(
                0,
                KeyWrite {
                    key: self.layout.service_ips_key(),
                    expect: if known == 0 {
                        Expect::Absent
                    } else {
                        Expect::ModRevision(known)
                    },
                    value: Some(r#"{"apiVersion":"v1","kind":"RangeAllocation","metadata":{}}"#.into()),
                },
            );
        }
        plan
    }

    /// The allocation guard's revision as of the cache; read it under the store lock.
    pub fn allocation_revision(&self) -> u64 {
        self.ranges_rev.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes what the feed read of the allocation guard part of the cache; call it under the
    /// store lock, with the changes read alongside it.
    pub fn publish_allocation(&self) {
        let seen = self.ranges_seen.load(std::sync::atomic::Ordering::Relaxed);
        self.ranges_rev
            .fetch_max(seen, std::sync::atomic::Ordering::Relaxed);
    }

    /// Applies one write's key changes as transactions of at most [`MAX_TXN_KEYS`] keys.
    pub async fn commit(&self, plan: &[KeyWrite]) -> std::result::Result<Outcome, ApiError> {
        let mut last = 0;
        for chunk in plan.chunks(MAX_TXN_KEYS) {
            let compares: Vec<Compare> = chunk
                .iter()
                .map(|w| match w.expect {
                    Expect::Absent => Compare::create_revision(w.key.as_str(), CompareOp::Equal, 0),
                    Expect::ModRevision(r) => {
                        Compare::mod_revision(w.key.as_str(), CompareOp::Equal, r as i64)
                    }
                })
                .collect();
            let ops: Vec<TxnOp> = chunk
                .iter()
                .map(|w| match &w.value {
                    Some(v) => TxnOp::put(w.key.as_str(), v.as_str(), None),
                    None => TxnOp::delete(w.key.as_str(), None),
                })
                .collect();
            let txn = Txn::new().when(compares).and_then(ops);
            let resp = timed(&self.servers, || {
                let (mut c, txn) = (self.kv.clone(), txn.clone());
                async move { c.txn(txn).await }
            })
            .await?;
            let rev = resp.header().map(|h| h.revision().max(0) as u64).unwrap_or(0);
            if !resp.succeeded() {
                return Ok(Outcome::Stale(rev));
            }
            last = rev;
        }
        Ok(Outcome::Committed(last))
    }

    /// Asks the watch for a progress notice, so the cache learns it is current.
    pub fn request_progress(&self) {
        let _ = self.progress.send(());
    }
}

/// Whether an event gives a Service a cluster IP or a node port it did not have: such writes
/// go through the allocation guard, so two replicas never hand out the same one.
fn allocates_service_ip(ev: &subsea_store::Event) -> bool {
    let ips = |o: &Value| {
        o.pointer("/spec/clusterIPs")
            .cloned()
            .or_else(|| o.pointer("/spec/clusterIP").cloned())
    };
    let node_ports = |o: &Value| -> Vec<Value> {
        o.pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| p["nodePort"].clone())
                    .filter(|n| !n.is_null())
                    .collect()
            })
            .unwrap_or_default()
    };
    let new_ip = ips(&ev.object).is_some_and(|v| v != Value::Null && v != "None" && v != "")
        && ev.prev.as_deref().map(ips) != Some(ips(&ev.object));
    let new_port = !node_ports(&ev.object).is_empty()
        && ev.prev.as_deref().map(node_ports) != Some(node_ports(&ev.object));
    ev.ty == subsea_store::registry::keys::SERVICES
        && ev.kind != subsea_store::EventType::Deleted
        && (new_ip || new_port)
}

/// Feeds the cache from etcd for as long as the process runs: one watch from the cache's
/// revision; after a compaction took the revisions the cache needs, a fresh load replaces it.
pub async fn feed(shared: Arc<Shared>, etcd: Arc<Etcd>) {
    let Some(mut progress) = etcd.progress_rx.lock().ok().and_then(|mut g| g.take()) else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    let mut outage = false;
    loop {
        let from = shared.applied() + 1;
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(from as i64);
        let mut c = etcd.watcher.clone();
        let stream = match c.watch(etcd.layout.root(), Some(opts)).await {
            Ok(s) => s,
            Err(e) => {
                if !outage {
                    tracing::warn!(etcd = %etcd.servers, error = %e, "lost the etcd watch; retrying");
                    outage = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sender, mut responses) = stream.split();
        loop {
            tokio::select! {
                asked = progress.recv() => {
                    if asked.is_none() { return; }
                    // Several waiters, one notice.
                    while progress.try_recv().is_ok() {}
                    if sender.request_progress().await.is_err() { break; }
                }
                msg = responses.message() => {
                    let resp = match msg {
                        Ok(Some(r)) => r,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(etcd = %etcd.servers, error = %e, "the etcd watch failed; resuming");
                            outage = true;
                            break;
                        }
                    };
                    if outage {
                        tracing::info!(etcd = %etcd.servers, "the etcd watch is back");
                        outage = false;
                    }
                    backoff = Duration::from_millis(100);
                    if resp.canceled() {
                        if resp.compact_revision() > 0 {
                            tracing::warn!(compacted = resp.compact_revision(), "etcd compacted the revisions the cache needs; reloading");
                            match etcd.load().await {
                                Ok((objects, rev)) => shared.resync(objects, rev),
                                Err(e) => tracing::warn!(error = %e.message, "cannot reload from etcd"),
                            }
                        }
                        break;
                    }
                    let changes: Vec<Change> = resp.events().iter().filter_map(|ev| {
                        let kv = ev.kv()?;
                        let rev = kv.mod_revision().max(0) as u64;
                        match ev.event_type() {
                            EtcdEvent::Put => {
                                let (key, obj) = etcd.decode(kv.key(), kv.value(), kv.mod_revision())?;
                                Some(Change { key, object: Some(obj), rev })
                            }
                            EtcdEvent::Delete => {
                                let key = etcd.layout.parse(&String::from_utf8_lossy(kv.key()))?;
                                Some(Change { key, object: None, rev })
                            }
                        }
                    }).collect();
                    let header = resp.header().map(|h| h.revision().max(0) as u64).unwrap_or(0);
                    let last = resp.events().iter().filter_map(|e| e.kv()).map(|kv| kv.mod_revision().max(0) as u64).max();
                    match last {
                        Some(rev) => shared.apply_feed(changes, rev),
                        // A progress notice: every change up to `header` has been sent.
                        None if !resp.created() => shared.advance(header),
                        None => {}
                    }
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_range_of_a_prefix_ends_after_it() {
        assert_eq!(super::prefix_end("/registry/"), b"/registry0".to_vec());
    }
}
