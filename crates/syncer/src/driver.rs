//! The kube-rs side of a syncer: reflect both sides, re-plan on every change (and on a timer),
//! apply the plan. Level-triggered, so restarts and reconnects converge.

use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use subsea_runtime::controller::Loop;
use subsea_runtime::reflect::{reflect, values};
use tokio::sync::mpsc;

use crate::plan::{self, Action, Config};

/// Re-plans at least this often, to retry writes that failed.
const RESYNC: Duration = Duration::from_secs(10);

/// A sync write that failed (retried by the next pass).
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} sync writes of {kind} failed; the last: {last}")]
pub struct SyncFailed {
    kind: String,
    failed: usize,
    total: usize,
    last: kube::Error,
}

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
        let sync = Loop::new(format!("syncer {}", ar.kind)).resync(RESYNC);
        sync.run(&mut rx, std::future::pending(), |_| async {
            let actions = plan::reconcile(&self.config, &values(&src), &values(&tgt));
            let total = actions.len();
            let mut failed = 0;
            let mut last = None;
            for action in actions {
                if let Err(e) = apply(&tgt_api, &tgt, action).await {
                    failed += 1;
                    last = Some(e);
                }
            }
            match last {
                None => Ok(()),
                Some(last) => Err(SyncFailed {
                    kind: ar.kind.clone(),
                    failed,
                    total,
                    last,
                }),
            }
        })
        .await;
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
