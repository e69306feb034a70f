//! Reflectors: a store kept in step with a watch, waking a controller on every change.

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
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
    let writer = reflector::store::Writer::new(dt);
    let store = writer.as_reader();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff())
        .touched_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!(error = %e, "watch error; retrying with backoff");
            }
            // A full channel already holds a wake-up.
            let _ = tx.try_send(());
        }
    });
    Reflector { store, task }
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
