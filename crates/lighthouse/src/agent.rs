//! The Lighthouse agent's I/O: reflect local exports, services and endpoint slices and the
//! broker's imports and slices, and on every change carry out what
//! [`subsea_lighthouse_core::agent::plan_with`] decides. Level-triggered: each pass recomputes
//! everything from the full lists, so restarts, broker outages and missed events converge; a
//! converged pass makes no API call.

use std::path::PathBuf;

use futures::StreamExt;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use subsea_api::globalnet::GlobalIngressIP;
use subsea_api::mcs::v1alpha1::{ServiceExport, ServiceImport};
use subsea_lighthouse_core::agent::{
    Action, Cached, Export, Kind, Memo, Object, Stale, Target, World, plan_with,
};
use subsea_runtime::controller::Loop;
use subsea_runtime::reflect::{Reflector, reflect, reflect_waking, reflect_with, values};

use crate::{Error, Result, refs};

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig of the local cluster (else the pod's service account).
    pub kubeconfig: Option<PathBuf>,
    /// Context.
    pub context: Option<String>,
    /// ServiceExport condition reasons in the MCS API's words, not Lighthouse's.
    pub mcs_reasons: bool,
}

struct Ctx {
    cluster: String,
    broker_ns: String,
    local: Client,
    broker: Client,
    /// Untyped: a v1alpha1 ServiceExport usually has no spec, which the derived type requires.
    exports: Reflector<DynamicObject>,
    services: Reflector<Service>,
    slices: Reflector<EndpointSlice>,
    broker_imports: Reflector<ServiceImport>,
    broker_slices: Reflector<EndpointSlice>,
    local_imports: Reflector<ServiceImport>,
    /// With Globalnet: the cluster's GlobalIngressIPs, whose addresses are published instead.
    ingress: Option<Reflector<GlobalIngressIP>>,
    /// ClusterSetIP settings from `subctl join`.
    vips: subsea_lighthouse_core::vip::Settings,
    /// Condition reasons in the MCS API's words.
    mcs_reasons: bool,
    /// The last pass's memo of local writes found unnecessary: a pass on a large cluster set
    /// costs lookups, not a comparison of every imported object.
    memo: std::sync::Mutex<Memo>,
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(opts: Options) -> Result<()> {
    let local = subsea_runtime::client::local(opts.kubeconfig.as_deref(), opts.context.as_deref()).await?;
    let join = subsea_runtime::join::service_discovery(&local).await?;
    let access = subsea_runtime::join::broker_access(&join)?;
    let vips = vip_settings(&join)?;
    let broker = access.client()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let exports_ar = ApiResource::erase::<ServiceExport>(&());
    let ctx = Ctx {
        exports: reflect(Api::all_with(local.clone(), &exports_ar), &exports_ar, tx.clone()),
        services: reflect_with(Api::all(local.clone()), (), tx.clone()),
        // The agent's own slice copies and aggregated imports do not wake it (their echoes
        // would each cost a pass); Kubernetes' slices, the exports' backends, do.
        slices: reflect_waking(Api::all(local.clone()), (), tx.clone(), |sl| {
            !subsea_lighthouse_core::agent::written_here(&sl.metadata)
        }),
        broker_imports: reflect_with(Api::namespaced(broker.clone(), &access.namespace), (), tx.clone()),
        broker_slices: reflect_with(Api::namespaced(broker.clone(), &access.namespace), (), tx.clone()),
        local_imports: reflect_waking(Api::all(local.clone()), (), tx.clone(), |i| {
            !subsea_lighthouse_core::agent::written_here(&i.metadata)
        }),
        ingress: join
            .globalnet_enabled
            .then(|| reflect_with(Api::all(local.clone()), (), tx)),
        memo: Default::default(),
        vips,
        mcs_reasons: opts.mcs_reasons,
        cluster: access.cluster_id.clone(),
        broker_ns: access.namespace.clone(),
        local,
        broker,
    };
    tokio::try_join!(
        ctx.exports.wait_until_ready(),
        ctx.services.wait_until_ready(),
        ctx.slices.wait_until_ready(),
        ctx.broker_imports.wait_until_ready(),
        ctx.broker_slices.wait_until_ready(),
        ctx.local_imports.wait_until_ready(),
    )
    .map_err(|e| Error::Watch(format!("a watch ended before its first list: {e}")))?;
    if let Some(i) = &ctx.ingress {
        i.wait_until_ready().await.map_err(|e| {
            Error::Watch(format!(
                "the GlobalIngressIP watch ended before its first list ({e}): are the Globalnet CRDs installed?"
            ))
        })?;
    }
    tracing::info!(cluster = %ctx.cluster, globalnet = ctx.ingress.is_some(), "lighthouse agent running");
    let agent = Loop::new("lighthouse-agent").paced();
    let cost = agent.cost();
    agent
        .run(&mut rx, subsea_runtime::shutdown::signal(), |_| async {
            reconcile(&ctx, &cost).await.map_err(|e| e.to_string())
        })
        .await;
    Ok(())
}

/// The ClusterSetIP settings `subctl join` wrote: the cluster set's default and its range
/// (Submariner's default range when none is given).
fn vip_settings(
    join: &subsea_api::operator::ServiceDiscoverySpec,
) -> Result<subsea_lighthouse_core::vip::Settings> {
    let s = subsea_lighthouse_core::vip::Settings {
        default_on: join.clusterset_ip_enabled,
        ..Default::default()
    }
    .with_ranges(&join.clusterset_ip_cidr)
    .map_err(|e| {
        subsea_runtime::Error::Invalid(format!(
            "the ServiceDiscovery object's clustersetIPCIDR: {e}; re-run `subctl join` with --clusterset-ip-cidr"
        ))
    })?;
    tracing::info!(default_on = s.default_on, range = %s.range, range_v6 = %s.range_v6, "clusterset IPs");
    Ok(s)
}

/// The exports, typed; one that does not decode is skipped with a warning (it cannot be acted on).
fn exports(ctx: &Ctx) -> Vec<Export> {
    values(&ctx.exports)
        .into_iter()
        .filter_map(|v| match serde_json::from_value::<Export>(v) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "skipping a ServiceExport that does not decode");
                None
            }
        })
        .collect()
}

/// One pass; paced on its planning (`cost`), not on the writes it waits for.
async fn reconcile(ctx: &Ctx, cost: &subsea_runtime::controller::Cost) -> Result<()> {
    let actions = cost.measure(|| plan(ctx));
    execute_all(ctx, actions).await
}

/// What this pass must write, from the reflected lists (synchronous: no await).
fn plan(ctx: &Ctx) -> Vec<Action> {
    let exports = exports(ctx);
    let (services, slices) = (ctx.services.state(), ctx.slices.state());
    let (local_imports, broker_imports, broker_slices) = (
        ctx.local_imports.state(),
        ctx.broker_imports.state(),
        ctx.broker_slices.state(),
    );
    let now = format!("{:.0}", k8s_openapi::jiff::Timestamp::now());
    let ingress = ctx.ingress.as_ref().map(|i| i.state()).unwrap_or_default();
    let global = ctx
        .ingress
        .as_ref()
        .map(|_| subsea_lighthouse_core::globalnet::GlobalIps::from_ingress(&refs(&ingress)));
    let last = std::mem::take(&mut *ctx.memo.lock().unwrap_or_else(|e| e.into_inner()));
    let (actions, memo) = plan_with(
        &World {
            cluster: &ctx.cluster,
            broker_ns: &ctx.broker_ns,
            exports: &exports.iter().collect::<Vec<_>>(),
            services: &refs(&services),
            slices: &refs(&slices),
            local_imports: &refs(&local_imports),
            broker_imports: &refs(&broker_imports),
            broker_slices: &refs(&broker_slices),
            now: &now,
            globalnet: global.as_ref(),
            vips: &ctx.vips,
            mcs_reasons: ctx.mcs_reasons,
        },
        &last,
    );
    *ctx.memo.lock().unwrap_or_else(|e| e.into_inner()) = memo;
    actions
}

/// Carries out one pass's writes.
async fn execute_all(ctx: &Ctx, actions: Vec<Action>) -> Result<()> {
    // Writes go out several at a time: each is durable before the server answers, so one at a
    // time the agent would wait out a disk sync per object (minutes for a first sync of 10,000
    // imports); concurrent writes share the server's syncs. No two actions of a pass touch the
    // same object, and results come back in plan order.
    // A broker failure ends the pass (the broker is likely unreachable: the backoff retries);
    // a local one is reported after the other actions ran, so one bad object blocks no other.
    let mut first_local_error = None;
    let mut results = futures::stream::iter(actions.into_iter().map(|action| {
        let local = matches!(
            action,
            Action::Apply(Target::Local, ..)
                | Action::Delete {
                    target: Target::Local,
                    ..
                }
        );
        async move { (local, execute(ctx, action).await) }
    }))
    .buffered(IN_FLIGHT);
    while let Some((local, result)) = results.next().await {
        match result {
            Ok(()) => {}
            // MCS imports only into namespaces that exist here; the rest waits for them.
            Err(e) if local && e.code() == Some(404) => tracing::debug!(error = %e, "not importing"),
            Err(e) if local => {
                tracing::warn!(error = %e, "a local write failed; carrying on with the others");
                first_local_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    first_local_error.map_or(Ok(()), Err)
}

/// Writes of one pass in flight at once.
const IN_FLIGHT: usize = 16;

fn client(ctx: &Ctx, target: Target) -> &Client {
    match target {
        Target::Broker => &ctx.broker,
        Target::Local => &ctx.local,
    }
}

async fn execute(ctx: &Ctx, action: Action) -> Result<()> {
    match action {
        Action::Apply(target, Object::Import(si, stale), cached) => {
            put(client(ctx, target), si, &stale, cached).await
        }
        Action::Apply(target, Object::Slice(sl), cached) => {
            write(client(ctx, target), &serde_json::to_value(&sl)?, cached).await?;
            Ok(())
        }
        Action::Delete {
            target,
            kind,
            namespace,
            name,
        } => {
            if target == Target::Broker {
                tracing::info!(%name, "withdrawing an export from the broker");
            }
            let ar = match kind {
                Kind::ServiceImport => ApiResource::erase::<ServiceImport>(&()),
                Kind::EndpointSlice => ApiResource::erase::<EndpointSlice>(&()),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client(ctx, target).clone(), &namespace, &ar);
            Ok(subsea_runtime::objects::delete(&api, &name).await?)
        }
        Action::ExportConditions {
            namespace,
            name,
            conditions,
        } => {
            let ar = ApiResource::erase::<ServiceExport>(&());
            let api: Api<DynamicObject> = Api::namespaced_with(ctx.local.clone(), &namespace, &ar);
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"conditions": conditions}})),
            )
            .await
            .map_err(|e| {
                subsea_runtime::Error::api(
                    format!("failed to write the status of ServiceExport {namespace}/{name}"),
                    e,
                )
            })?;
            Ok(())
        }
    }
}

/// Creates or patches an object as the cache saw it, without reading it first: at 10,000
/// imports a read per write doubled the requests of a first sync.
async fn write(client: &Client, obj: &serde_json::Value, cached: Cached) -> Result<DynamicObject> {
    Ok(subsea_runtime::objects::apply_known(client, obj, cached == Cached::Present).await?)
}

/// Creates or updates a ServiceImport, removing the `stale` labels and annotations, then its
/// status through the status subresource.
async fn put(client: &Client, si: ServiceImport, stale: &Stale, cached: Cached) -> Result<()> {
    let mut obj = serde_json::to_value(&si)?;
    for (field, keys) in [("labels", &stale.labels), ("annotations", &stale.annotations)] {
        for k in keys {
            obj["metadata"][field][k.as_str()] = serde_json::Value::Null;
        }
    }
    if stale.ips {
        obj["spec"]["ips"] = serde_json::Value::Null;
    }
    let stored = write(client, &obj, cached).await?;
    let Some(status) = si.status.as_ref() else {
        return Ok(());
    };
    if stored.data.get("status") != Some(&serde_json::to_value(status)?) {
        let ns = si.meta().namespace.clone().unwrap_or_default();
        let api: Api<ServiceImport> = Api::namespaced(client.clone(), &ns);
        api.patch_status(
            &stored.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .map_err(|e| subsea_runtime::Error::api("failed to write a ServiceImport status", e))?;
    }
    Ok(())
}
