//! The kube-rs side of a syncer: reflect both sides, re-plan on every change (and on a timer),
//! apply the plan. Level-triggered, so restarts and reconnects converge.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::plan::{self, Action, Config};

/// Re-plans at least this often, to retry writes that failed.
const RESYNC: Duration = Duration::from_secs(10);

/// One resource type synced in one direction.
pub struct Syncer {
    /// The synced type.
    pub resource: ApiResource,
    /// Direction and namespaces.
    pub config: Config,
    /// Client of the source side.
    pub source: Client,
    /// Client of the target side.
    pub target: Client,
}

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

impl Syncer {
    /// Runs until the task is dropped.
    pub async fn run(self) {
        let ar = &self.resource;
        let src_api: Api<DynamicObject> = match &self.config.source_namespace {
            Some(ns) => Api::namespaced_with(self.source.clone(), ns, ar),
            None => Api::all_with(self.source.clone(), ar),
        };
        let tgt_api: Api<DynamicObject> =
            Api::namespaced_with(self.target.clone(), &self.config.target_namespace, ar);
        let (tx, mut rx) = mpsc::channel(1);
        let src = reflect(src_api, ar, tx.clone());
        let tgt = reflect(tgt_api.clone(), ar, tx);
        // Both sides fully listed before the first plan: otherwise a half-read target looks like
        // missing objects and a half-read source like orphans.
        if src.wait_until_ready().await.is_err() || tgt.wait_until_ready().await.is_err() {
            return;
        }
        loop {
            let actions = plan::reconcile(&self.config, &values(&src), &values(&tgt));
            for action in actions {
                if let Err(e) = apply(&tgt_api, &tgt, action).await {
                    tracing::warn!(error = %e, kind = %ar.kind, "sync write failed; will retry");
                }
            }
            match tokio::time::timeout(RESYNC, rx.recv()).await {
                Ok(None) => return,
                Ok(Some(())) | Err(_) => {}
            }
            // Let a burst of events settle into one plan.
            tokio::time::sleep(Duration::from_millis(20)).await;
            while rx.try_recv().is_ok() {}
        }
    }
}

async fn apply(
    api: &Api<DynamicObject>,
    current: &Store<DynamicObject>,
    action: Action,
) -> Result<(), kube::Error> {
    match action {
        Action::Create(obj) => {
            let obj: DynamicObject = serde_json::from_value(obj).map_err(kube::Error::SerdeError)?;
            match api.create(&PostParams::default(), &obj).await {
                // Someone else's copy appeared first; the next plan updates it.
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                r => r.map(|_| ()),
            }
        }
        Action::Update(obj) => {
            let mut obj: DynamicObject = serde_json::from_value(obj).map_err(kube::Error::SerdeError)?;
            let name = obj.name_any();
            let Some(existing) = current.state().into_iter().find(|o| o.name_any() == name) else {
                return Ok(());
            };
            obj.metadata.resource_version = existing.resource_version();
            match api.replace(&name, &PostParams::default(), &obj).await {
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(()),
                r => r.map(|_| ()),
            }
        }
        Action::Delete(name) => match api.delete(&name, &DeleteParams::default()).await {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            r => r.map(|_| ()),
        },
    }
}
