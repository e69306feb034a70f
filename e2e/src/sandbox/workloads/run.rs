//! The stand-in's I/O: reflectors for the workloads, their pods and the nodes; each pass
//! applies [`super::plan`]. Objects it just created or deleted are remembered until the watch
//! reports them (the controller-manager's "expectations"), so a pass that runs before the
//! watch caught up neither creates a pod twice nor counts a deleted one.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use super::{Action, Resource, World, str_at};

/// How long a write is remembered when the watch never reports it (a lost event).
const EXPECT_FOR: Duration = Duration::from_secs(30);

fn resource(r: Resource) -> ApiResource {
    let (g, v, k, plural) = r.gvk();
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), plural)
}

#[derive(Default)]
struct Expectations {
    created: Vec<(Resource, Value, Instant)>,
    deleted: BTreeMap<(Resource, String, String), Instant>,
}

impl Expectations {
    /// `seen` as the plan should see it: with the objects created and not yet reported, and
    /// without the ones deleted.
    fn view(&mut self, r: Resource, seen: Vec<Value>) -> Vec<Value> {
        let now = Instant::now();
        let uid = |o: &Value| str_at(o, "/metadata/uid").to_string();
        let key = |o: &Value| {
            (
                r,
                str_at(o, "/metadata/namespace").to_string(),
                str_at(o, "/metadata/name").to_string(),
            )
        };
        self.created.retain(|(cr, o, at)| {
            *cr != r || now - *at < EXPECT_FOR && !seen.iter().any(|s| uid(s) == uid(o))
        });
        self.deleted.retain(|(dr, ns, name), at| {
            *dr != r || now - *at < EXPECT_FOR && seen.iter().any(|s| key(s) == (r, ns.clone(), name.clone()))
        });
        let mut out: Vec<Value> = seen
            .into_iter()
            .filter(|o| !self.deleted.contains_key(&key(o)))
            .collect();
        out.extend(
            self.created
                .iter()
                .filter(|(cr, ..)| *cr == r)
                .map(|(_, o, _)| o.clone()),
        );
        out
    }
}

/// Runs until SIGTERM.
pub async fn run(kubeconfig: &Path, context: &str) -> Result<()> {
    let client = subsea_runtime::client::local(Some(kubeconfig), Some(context)).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let kinds = [
        Resource::Deployments,
        Resource::ReplicaSets,
        Resource::StatefulSets,
        Resource::DaemonSets,
        Resource::Pods,
    ];
    let stores: Vec<_> = kinds
        .iter()
        .map(|r| {
            let ar = resource(*r);
            subsea_runtime::reflect::reflect(Api::all_with(client.clone(), &ar), &ar, tx.clone())
        })
        .collect();
    let node_ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Node"), "nodes");
    let nodes = subsea_runtime::reflect::reflect(Api::all_with(client.clone(), &node_ar), &node_ar, tx);
    let expect = std::cell::RefCell::new(Expectations::default());
    subsea_runtime::controller::Loop::new("workload controllers")
        .resync(Duration::from_secs(5))
        .settle(Duration::from_millis(50))
        .run(&mut rx, subsea_runtime::shutdown::signal(), |_| async {
            let seen: Vec<Vec<Value>> = {
                let mut e = expect.borrow_mut();
                kinds
                    .iter()
                    .zip(&stores)
                    .map(|(r, s)| e.view(*r, subsea_runtime::reflect::values(s)))
                    .collect()
            };
            let nodes = subsea_runtime::reflect::values(&nodes);
            let now = format!("{:.0}", jiff::Timestamp::now());
            let actions = super::plan(&World {
                deployments: &seen[0],
                replicasets: &seen[1],
                statefulsets: &seen[2],
                daemonsets: &seen[3],
                pods: &seen[4],
                nodes: &nodes,
                now: &now,
            });
            for action in actions {
                if let Err(e) = apply(&client, &expect, &action).await {
                    // The next pass retries: the plan is recomputed from what is there.
                    eprintln!("workload controllers: {action:?}: {e:#}");
                }
            }
            Ok::<(), std::convert::Infallible>(())
        })
        .await;
    Ok(())
}

async fn apply(
    client: &kube::Client,
    expect: &std::cell::RefCell<Expectations>,
    action: &Action,
) -> Result<()> {
    let api = |r: Resource, ns: &str| -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), ns, &resource(r))
    };
    match action {
        Action::Create(r, obj) => {
            let created = api(*r, str_at(obj, "/metadata/namespace"))
                .create(&PostParams::default(), &serde_json::from_value(obj.clone())?)
                .await?;
            expect
                .borrow_mut()
                .created
                .push((*r, serde_json::to_value(created)?, Instant::now()));
        }
        Action::Delete(r, ns, name) => {
            api(*r, ns).delete(name, &DeleteParams::default()).await?;
            expect
                .borrow_mut()
                .deleted
                .insert((*r, ns.clone(), name.clone()), Instant::now());
        }
        Action::Scale(ns, name, replicas) => {
            api(Resource::ReplicaSets, ns)
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await?;
        }
        Action::Status(r, ns, name, status) => {
            api(*r, ns)
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
        }
    }
    Ok(())
}
