//! Shared server state and the write path: mutate under the store lock, queue the events for
//! the log, acknowledge once they are on disk, then fan them out to watchers.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use subsea_store::{ApiError, Event, History, Registry, Store};
use tokio::sync::{broadcast, watch};

use crate::auth::TokenIndex;
use crate::etcd::{Change, Etcd, Outcome};
use crate::wal::Wal;

/// Where writes are made durable.
pub enum Backend {
    /// The embedded write-ahead log in the data directory.
    Wal(Wal),
    /// An etcd cluster shared with other replicas.
    Etcd(Arc<Etcd>),
}

/// Times a write is decided again after other replicas changed what it read.
const WRITE_ATTEMPTS: usize = 16;
/// How long a request waits for the cache to reach a revision etcd reported.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(10);

/// A write's answer, whose resourceVersions are set once the backend has decided them.
pub trait Restamp {
    /// Replaces every resourceVersion in `provisional` with `rev`.
    fn restamp(&mut self, provisional: &std::collections::HashSet<String>, rev: u64);
}

impl Restamp for serde_json::Value {
    fn restamp(&mut self, provisional: &std::collections::HashSet<String>, rev: u64) {
        if let Some(rv) = self.pointer_mut("/metadata/resourceVersion") {
            if rv.as_str().is_some_and(|r| provisional.contains(r)) {
                *rv = serde_json::Value::String(rev.to_string());
            }
        }
    }
}

impl Restamp for Arc<serde_json::Value> {
    fn restamp(&mut self, provisional: &std::collections::HashSet<String>, rev: u64) {
        Arc::make_mut(self).restamp(provisional, rev);
    }
}

impl<A: Restamp, E> Restamp for Result<A, E> {
    fn restamp(&mut self, provisional: &std::collections::HashSet<String>, rev: u64) {
        if let Ok(a) = self {
            a.restamp(provisional, rev);
        }
    }
}

impl Restamp for () {
    fn restamp(&mut self, _: &std::collections::HashSet<String>, _: u64) {}
}

impl<T: Restamp> Restamp for Vec<T> {
    fn restamp(&mut self, provisional: &std::collections::HashSet<String>, rev: u64) {
        for item in self {
            item.restamp(provisional, rev);
        }
    }
}

/// A server-side apply's answer: the object, its warnings, whether it was created.
impl<A: Restamp, B, C> Restamp for (A, B, C) {
    fn restamp(&mut self, provisional: &std::collections::HashSet<String>, rev: u64) {
        self.0.restamp(provisional, rev);
    }
}

impl Restamp for subsea_store::store::Deleted {
    fn restamp(&mut self, provisional: &std::collections::HashSet<String>, rev: u64) {
        match self {
            Self::Gone(o) | Self::Pending(o) => o.restamp(provisional, rev),
        }
    }
}

/// Capacity of each type's live event channel; a watcher further behind is sent 410.
const CHANNEL_CAPACITY: usize = 1024;

/// Watch fan-out: recent history and live channels, per type.
pub struct Hub {
    history: History,
    senders: HashMap<String, broadcast::Sender<Event>>,
}

impl Hub {
    fn publish(&mut self, ev: Event) {
        if let Some(tx) = self.senders.get(&ev.ty) {
            // No receivers is fine: nobody watches this type.
            let _ = tx.send(ev.clone());
        }
        self.history.push(ev);
    }

    /// Events of `ty` after `rev` (410 when too old) and a receiver for the ones after them.
    pub fn resume(
        &mut self,
        ty: &str,
        rev: u64,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>), ApiError> {
        let past = self.history.since(ty, rev)?;
        Ok((past, self.subscribe(ty)))
    }

    /// A receiver of live events of `ty`.
    pub fn subscribe(&mut self, ty: &str) -> broadcast::Receiver<Event> {
        self.senders
            .entry(ty.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }
}

/// Everything request handlers share.
pub struct Shared {
    store: Mutex<Store>,
    registry: RwLock<Registry>,
    hub: Mutex<Hub>,
    queue: Mutex<Vec<Event>>,
    wake: Condvar,
    durable: watch::Sender<u64>,
    tokens: Mutex<TokenIndex>,
    pager: Mutex<crate::paging::Pager>,
    /// Deletions so far, so the garbage collector only scans after something was deleted.
    pub deletions: std::sync::atomic::AtomicU64,
    /// Bearer token with full access.
    pub admin_token: String,
    /// PEM of the CA, put into service-account token Secrets.
    pub ca_pem: String,
    /// The key bound service-account tokens (TokenRequest) are signed with.
    pub signing_key: Vec<u8>,
    /// The etcd backend, when objects live there.
    etcd: Option<Arc<Etcd>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Shared {
    /// Builds the state around a loaded store and starts the log writer thread.
    pub fn start(
        store: Store,
        registry: Registry,
        backend: Backend,
        watch_cache_size: usize,
        admin_token: String,
        ca_pem: String,
        signing_key: Vec<u8>,
    ) -> Arc<Self> {
        let rev = store.rev();
        let tokens = Mutex::new(TokenIndex::build(&store));
        let (durable, _) = watch::channel(rev);
        let shared = Arc::new(Self {
            store: Mutex::new(store),
            registry: RwLock::new(registry),
            hub: Mutex::new(Hub {
                history: History::new(watch_cache_size, rev),
                senders: HashMap::new(),
            }),
            queue: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            durable,
            tokens,
            pager: Mutex::new(crate::paging::Pager::default()),
            deletions: std::sync::atomic::AtomicU64::new(0),
            admin_token,
            ca_pem,
            signing_key,
            etcd: match &backend {
                Backend::Etcd(e) => Some(e.clone()),
                Backend::Wal(_) => None,
            },
        });
        match backend {
            Backend::Wal(wal) => {
                let writer = shared.clone();
                std::thread::Builder::new()
                    .name("wal-writer".into())
                    .spawn(move || writer.write_loop(wal))
                    .expect("spawning the log writer thread at startup");
            }
            Backend::Etcd(etcd) => {
                tokio::spawn(crate::etcd::feed(shared.clone(), etcd));
            }
        }
        shared
    }

    fn write_loop(&self, mut wal: Wal) {
        loop {
            let batch = {
                let mut q = lock(&self.queue);
                while q.is_empty() {
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                std::mem::take(&mut *q)
            };
            if let Err(e) = wal.append(&batch) {
                // Acknowledging writes that may not be on disk would lose data silently; stop
                // instead, as etcd does when fsync fails.
                tracing::error!(error = %e, "failed to write the log; stopping to protect acknowledged data");
                std::process::exit(70);
            }
            let last = batch.last().map(|e| e.rev).unwrap_or(0);
            {
                let mut hub = lock(&self.hub);
                for ev in batch {
                    hub.publish(ev);
                }
            }
            self.durable.send_replace(last);
            if wal.needs_compaction() {
                let snapshot = lock(&self.store).clone();
                if let Err(e) = wal.compact(&snapshot) {
                    tracing::error!(error = %e, "failed to compact the log");
                    std::process::exit(70);
                }
            }
        }
    }

    /// The registry, for reading.
    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The store, for reading or for changes that produce no events.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Open list snapshots.
    pub fn pager(&self) -> MutexGuard<'_, crate::paging::Pager> {
        lock(&self.pager)
    }

    /// The watch hub.
    pub fn hub(&self) -> MutexGuard<'_, Hub> {
        lock(&self.hub)
    }

    /// Who a service-account token belongs to.
    pub fn authenticate_token(&self, token: &str) -> Option<subsea_rbac::User> {
        let store = self.store();
        if token.split('.').count() == 3 {
            return crate::tokens::authenticate(
                &store,
                &self.signing_key,
                token,
                crate::tokens::API_AUDIENCE,
                now(),
            );
        }
        lock(&self.tokens).authenticate(token, &store)
    }

    /// Keeps the token index and the deletion count in step with applied events.
    fn note(&self, events: &[Event]) {
        lock(&self.tokens).apply(events);
        let deleted = events
            .iter()
            .filter(|e| e.kind == subsea_store::EventType::Deleted)
            .count() as u64;
        self.deletions
            .fetch_add(deleted, std::sync::atomic::Ordering::Relaxed);
    }

    fn enqueue(&self, events: Vec<Event>) -> Option<u64> {
        self.note(&events);
        let last = events.last().map(|e| e.rev)?;
        lock(&self.queue).extend(events);
        self.wake.notify_one();
        Some(last)
    }

    async fn wait_durable(&self, rev: u64) {
        let mut rx = self.durable.subscribe();
        // The sender lives as long as `self`.
        let _ = rx.wait_for(|d| *d >= rev).await;
    }

    /// Runs a change under the store lock and returns once its events are durable.
    pub async fn write<T: Restamp>(
        &self,
        mut f: impl FnMut(&mut Store, &Registry) -> Result<(T, Vec<Event>), ApiError>,
    ) -> Result<T, ApiError> {
        if let Some(etcd) = self.etcd.clone() {
            return self.write_etcd(&etcd, f).await;
        }
        let (out, last) = {
            let reg = self.registry();
            let mut store = lock(&self.store);
            let (out, events) = f(&mut store, &reg)?;
            (out, self.enqueue(events))
        };
        if let Some(rev) = last {
            self.wait_durable(rev).await;
        }
        Ok(out)
    }

    /// Like [`Shared::write`], for changes that also change which types are served (CRDs): the
    /// registry changes in the same critical section, so a client that sees the CRD established
    /// can use the new type at once.
    pub async fn write_registry<T: Restamp>(
        &self,
        mut f: impl FnMut(&mut Store, &mut Registry) -> Result<(T, Vec<Event>), ApiError>,
    ) -> Result<T, ApiError> {
        if let Some(etcd) = self.etcd.clone() {
            // The copy is discarded: the registry follows CRD events from the watch.
            return self
                .write_etcd(&etcd, |store, reg| f(store, &mut reg.clone()))
                .await;
        }
        let (out, last) = {
            let mut reg = self.registry.write().unwrap_or_else(|e| e.into_inner());
            let mut store = lock(&self.store);
            let (out, events) = f(&mut store, &mut reg)?;
            (out, self.enqueue(events))
        };
        if let Some(rev) = last {
            self.wait_durable(rev).await;
        }
        Ok(out)
    }

    /// The etcd write path: decide tentatively on the cache, take it back, commit guarded on
    /// what was read, answer once the watch has applied the change. CRDs take effect when
    /// their events arrive, on every replica alike.
    async fn write_etcd<T: Restamp>(
        &self,
        etcd: &Etcd,
        mut f: impl FnMut(&mut Store, &Registry) -> Result<(T, Vec<Event>), ApiError>,
    ) -> Result<T, ApiError> {
        for _ in 0..WRITE_ATTEMPTS {
            let (mut out, events, allocation) = {
                let reg = self.registry();
                let mut store = lock(&self.store);
                let allocation = etcd.allocation_revision();
                store.begin();
                let decided = f(&mut store, &reg);
                store.rollback();
                let (out, events) = decided?;
                (out, events, allocation)
            };
            if events.is_empty() {
                return Ok(out);
            }
            match etcd.commit(&etcd.plan(&events, allocation)).await? {
                Outcome::Committed(rev) => {
                    let provisional = events.iter().map(|e| e.rev.to_string()).collect();
                    out.restamp(&provisional, rev);
                    self.catch_up(rev).await?;
                    return Ok(out);
                }
                Outcome::Stale(rev) => {
                    etcd.request_progress();
                    self.catch_up(rev).await?;
                }
            }
        }
        Err(ApiError::timeout(
            "the write kept meeting concurrent changes by other API server replicas; retry it",
        ))
    }

    /// Whether other replicas may serve the same objects (the etcd backend).
    pub fn replicated(&self) -> bool {
        self.etcd.is_some()
    }

    /// The revision the cache has applied (the last durable one with the embedded log).
    pub fn applied(&self) -> u64 {
        *self.durable.borrow()
    }

    async fn catch_up(&self, rev: u64) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            // etcd drops a progress request while the watch is still replaying history, so
            // ask again until the cache is there.
            let step = tokio::time::timeout(std::time::Duration::from_millis(200), self.wait_durable(rev));
            if step.await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::timeout(format!(
                    "etcd is at revision {rev}, but this server's watch of etcd has not caught up within {} s",
                    CATCH_UP.as_secs()
                )));
            }
            if let Some(etcd) = &self.etcd {
                etcd.request_progress();
            }
        }
    }

    /// Waits (up to 3 s, as kube-apiserver's watch cache does) until the cache holds revision
    /// `rev`: a client that read from another replica may ask for a revision this one has not
    /// applied yet. Past the wait, the request goes on and meets the cache as it is.
    pub async fn reached(&self, rev: u64) {
        let Some(etcd) = &self.etcd else {
            return;
        };
        if self.applied() >= rev {
            return;
        }
        etcd.request_progress();
        let wait = async {
            while self.applied() < rev {
                if tokio::time::timeout(std::time::Duration::from_millis(200), self.wait_durable(rev))
                    .await
                    .is_err()
                {
                    etcd.request_progress();
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), wait).await;
    }

    /// Waits until the cache holds everything etcd holds now, so a read without a
    /// resourceVersion is as fresh as kube-apiserver's quorum read. Nothing to do with the
    /// embedded log, whose store is the truth.
    pub async fn fresh(&self) -> Result<(), ApiError> {
        let Some(etcd) = &self.etcd else {
            return Ok(());
        };
        let rev = etcd.revision().await?;
        if self.applied() >= rev {
            return Ok(());
        }
        etcd.request_progress();
        self.catch_up(rev).await
    }

    /// Applies changes the etcd watch brought, through revision `rev`.
    pub(crate) fn apply_feed(&self, changes: Vec<Change>, rev: u64) {
        let events = {
            let mut reg = self.registry.write().unwrap_or_else(|e| e.into_inner());
            let mut store = lock(&self.store);
            let mut events = Vec::with_capacity(changes.len());
            for ch in changes {
                let prev = store.get(&ch.key.ty, &ch.key.ns, &ch.key.name);
                let (kind, object) = match ch.object {
                    Some(o) if prev.is_some() => (subsea_store::EventType::Modified, Arc::new(o)),
                    Some(o) => (subsea_store::EventType::Added, Arc::new(o)),
                    None => {
                        let Some(p) = &prev else { continue };
                        let mut o = (**p).clone();
                        o["metadata"]["resourceVersion"] = serde_json::Value::String(ch.rev.to_string());
                        (subsea_store::EventType::Deleted, Arc::new(o))
                    }
                };
                let ev = Event {
                    ty: ch.key.ty,
                    kind,
                    object,
                    prev,
                    rev: ch.rev,
                };
                store.replay(&ev);
                if ev.ty == subsea_store::registry::keys::CRDS {
                    match ev.kind {
                        subsea_store::EventType::Deleted => reg.remove_crd(&ch.key.name),
                        _ => reg.set_crd(&ev.object),
                    }
                }
                events.push(ev);
            }
            store.bump_rev_to(rev);
            if let Some(etcd) = &self.etcd {
                etcd.publish_allocation();
            }
            events
        };
        self.note(&events);
        {
            let mut hub = lock(&self.hub);
            for ev in events {
                hub.publish(ev);
            }
        }
        self.mark_applied(rev);
    }

    /// Records that every change through `rev` has been applied (a progress notice: the store
    /// holds all of them, so only its counter moves).
    pub(crate) fn advance(&self, rev: u64) {
        lock(&self.store).bump_rev_to(rev);
        self.mark_applied(rev);
    }

    fn mark_applied(&self, rev: u64) {
        self.durable.send_if_modified(|d| {
            let newer = rev > *d;
            *d = (*d).max(rev);
            newer
        });
    }

    /// Replaces the cache with a fresh load at `rev` (after etcd compacted the revisions the
    /// watch needed), telling watchers what changed meanwhile.
    pub(crate) fn resync(&self, objects: Vec<(subsea_store::ObjectKey, serde_json::Value)>, rev: u64) {
        let mut changes = Vec::new();
        {
            let store = lock(&self.store);
            let loaded: std::collections::HashSet<subsea_store::ObjectKey> =
                objects.iter().map(|(k, _)| k.clone()).collect();
            for key in store.keys() {
                if !loaded.contains(&key) {
                    changes.push(Change {
                        key,
                        object: None,
                        rev,
                    });
                }
            }
            for (key, obj) in objects {
                let cached = store.get(&key.ty, &key.ns, &key.name);
                let same = cached.is_some_and(|c| {
                    c.pointer("/metadata/resourceVersion") == obj.pointer("/metadata/resourceVersion")
                });
                if !same {
                    changes.push(Change {
                        key,
                        object: Some(obj),
                        rev,
                    });
                }
            }
        }
        self.apply_feed(changes, rev);
    }
}
