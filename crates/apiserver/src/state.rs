//! Shared server state and the write path: mutate under the store lock, queue the events for
//! the log, acknowledge once they are on disk, then fan them out to watchers.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use subsea_store::{ApiError, Event, History, Registry, Store};
use tokio::sync::{broadcast, watch};

use crate::auth::TokenIndex;
use crate::wal::Wal;

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
        wal: Wal,
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
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.write_loop(wal))
            .expect("spawning the log writer thread at startup");
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

    fn enqueue(&self, events: Vec<Event>) -> Option<u64> {
        lock(&self.tokens).apply(&events);
        let deleted = events
            .iter()
            .filter(|e| e.kind == subsea_store::EventType::Deleted)
            .count() as u64;
        self.deletions
            .fetch_add(deleted, std::sync::atomic::Ordering::Relaxed);
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
    pub async fn write<T>(
        &self,
        f: impl FnOnce(&mut Store, &Registry) -> Result<(T, Vec<Event>), ApiError>,
    ) -> Result<T, ApiError> {
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
    pub async fn write_registry<T>(
        &self,
        f: impl FnOnce(&mut Store, &mut Registry) -> Result<(T, Vec<Event>), ApiError>,
    ) -> Result<T, ApiError> {
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
}
