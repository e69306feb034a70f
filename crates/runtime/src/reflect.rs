//! Reflectors: a store kept in step with a watch, waking a controller on every change.

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;

/// A store kept in step with a watch. The watch runs in its own task, which ends when this
/// is dropped, so an aborted controller (a gateway that lost its lease) leaves no watch behind.
pub struct Reflector<K: kube::Resource + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: kube::Resource + 'static> std::ops::Deref for Reflector<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    type Target = Store<K>;
    fn deref(&self) -> &Store<K> {
        &self.store
    }
}

impl<K: kube::Resource + 'static> Drop for Reflector<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reflects `api` into a store, waking `tx` on every change (and retrying with backoff).
pub fn reflect_with<K>(api: Api<K>, dt: K::DynamicType, tx: mpsc::Sender<()>) -> Reflector<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    reflect_waking(api, dt, tx, |_| true)
}

/// [`reflect_with`], waking `tx` only for objects `wakes` picks: a controller's own output
/// (objects it alone writes) is kept in the store for its next pass but does not start one,
/// since each write's echo would cost a whole pass that finds nothing to do. What changes such
/// objects behind the controller's back is corrected at its next resync.
pub fn reflect_waking<K>(
    api: Api<K>,
    dt: K::DynamicType,
    tx: mpsc::Sender<()>,
    wakes: fn(&K) -> bool,
) -> Reflector<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let writer = reflector::store::Writer::new(dt);
    let store = writer.as_reader();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).backoff(WatchBackoff::new()),
    )
    .touched_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(o) if !wakes(&o) => continue,
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "watch error; retrying with backoff"),
            }
            // A full channel already holds a wake-up.
            let _ = tx.try_send(());
        }
    });
    Reflector { store, task }
}

/// Reconnect delays of a watch: 200 ms doubling up to 5 s, each lengthened by up to a quarter
/// at random so that the agents of many clusters do not return in step; back to 200 ms once an
/// event arrives. kube-runtime's default (client-go's) grows to 30 s and adds up to 100 %, so
/// after a minute-long broker outage an agent could go another minute without watching; at
/// most 6.25 s here keeps a reconnect within a resync period.
pub struct WatchBackoff {
    attempt: u32,
    random: u64,
}

/// The first reconnect delay.
const FIRST: Duration = Duration::from_millis(200);
/// The longest reconnect delay before jitter.
const MAX: Duration = Duration::from_secs(5);

impl WatchBackoff {
    /// A fresh backoff, its jitter seeded from the clock and the process.
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
        Self {
            attempt: 0,
            random: (nanos ^ (u64::from(std::process::id()) << 32)) | 1,
        }
    }
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self::new()
    }
}

/// The delay before reconnect `attempt` (0 first), `jitter` in [0, 1) lengthening it by up
/// to a quarter.
pub fn reconnect_delay(attempt: u32, jitter: f64) -> Duration {
    let base = FIRST
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(MAX);
    base.mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 4.0)
}

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        // xorshift64: enough to spread reconnects, no dependency.
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let jitter = (self.random >> 11) as f64 / (1u64 << 53) as f64;
        let d = reconnect_delay(self.attempt, jitter);
        self.attempt = self.attempt.saturating_add(1);
        Some(d)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// [`reflect_with`] for untyped objects.
pub fn reflect(api: Api<DynamicObject>, ar: &ApiResource, tx: mpsc::Sender<()>) -> Reflector<DynamicObject> {
    reflect_with(api, ar.clone(), tx)
}

/// The store's objects as JSON.
pub fn values(store: &Store<DynamicObject>) -> Vec<Value> {
    store
        .state()
        .iter()
        .filter_map(|o| serde_json::to_value(&**o).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_double_from_200ms_and_stay_within_six_and_a_quarter_seconds() {
        assert_eq!(reconnect_delay(0, 0.0), Duration::from_millis(200));
        assert_eq!(reconnect_delay(1, 0.0), Duration::from_millis(400));
        assert_eq!(reconnect_delay(4, 0.0), Duration::from_millis(3200));
        assert_eq!(reconnect_delay(5, 0.0), MAX);
        assert_eq!(reconnect_delay(u32::MAX, 0.0), MAX);
        let longest = reconnect_delay(u32::MAX, 0.999_999);
        assert!(longest > Duration::from_millis(6249) && longest <= Duration::from_millis(6250));
        assert_eq!(reconnect_delay(0, 7.0), Duration::from_millis(250));
    }

    #[test]
    fn the_backoff_jitters_grows_and_resets_after_an_event() {
        use kube::runtime::utils::Backoff;
        let mut b = WatchBackoff::new();
        let first: Vec<Duration> = b.by_ref().take(12).collect();
        assert!(first[0] >= FIRST && first[0] <= FIRST.mul_f64(1.25));
        assert!(first.iter().all(|d| *d <= MAX.mul_f64(1.25)), "{first:?}");
        assert!(first[11] >= MAX);
        assert!(first[6..].windows(2).any(|w| w[0] != w[1]), "jittered: {first:?}");
        b.reset();
        assert!(b.next().is_some_and(|d| d <= FIRST.mul_f64(1.25)));
    }
}
