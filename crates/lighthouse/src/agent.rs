//! The Lighthouse agent's I/O: reflect local exports, services and endpoint slices and the
//! broker's imports and slices, and on every change apply what [`crate::export`] decides.
//! Level-triggered: each pass recomputes everything from the full lists, so restarts, broker
//! outages and missed events converge.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use subsea_runtime::controller::Loop;
use subsea_runtime::reflect::{Reflector, reflect, values};

use crate::export;
use crate::labels::*;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig of the local cluster (else the pod's service account).
    pub kubeconfig: Option<PathBuf>,
    /// Context.
    pub context: Option<String>,
}

/// Marks the aggregated imports the agent writes in service namespaces.
const AGGREGATE_LABEL: &str = "app.kubernetes.io/managed-by";

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn exports_ar() -> ApiResource {
    ar(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceExport",
        "serviceexports",
    )
}
fn imports_ar() -> ApiResource {
    ar(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceImport",
        "serviceimports",
    )
}
fn slices_ar() -> ApiResource {
    ar("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices")
}
fn services_ar() -> ApiResource {
    ar("", "v1", "Service", "services")
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn label<'a>(v: &'a Value, key: &str) -> &'a str {
    s(v, &format!("/metadata/labels/{}", key.replace('/', "~1")))
}

struct Ctx {
    cluster: String,
    broker_ns: String,
    local: Client,
    broker: Client,
    exports: Reflector<DynamicObject>,
    services: Reflector<DynamicObject>,
    slices: Reflector<DynamicObject>,
    broker_imports: Reflector<DynamicObject>,
    broker_slices: Reflector<DynamicObject>,
    local_imports: Reflector<DynamicObject>,
}

/// The broker connection from the `ServiceDiscovery` object `subctl join` wrote.
struct Join {
    cluster: String,
    url: String,
    token: String,
    ca: Vec<u8>,
    namespace: String,
    verify: bool,
}

fn join_settings(obj: &Value) -> Result<Join> {
    use base64::Engine;
    let spec = &obj["spec"];
    let host = s(spec, "/brokerK8sApiServer");
    if host.is_empty() || s(spec, "/clusterID").is_empty() {
        return Err(anyhow!(
            "the ServiceDiscovery object lacks brokerK8sApiServer or clusterID; re-run `subctl join`"
        ));
    }
    Ok(Join {
        cluster: s(spec, "/clusterID").into(),
        url: if host.contains("://") {
            host.into()
        } else {
            format!("https://{host}")
        },
        token: s(spec, "/brokerK8sApiServerToken").into(),
        ca: base64::engine::general_purpose::STANDARD
            .decode(s(spec, "/brokerK8sCA"))
            .context("the ServiceDiscovery object's brokerK8sCA is not base64; re-run `subctl join`")?,
        namespace: s(spec, "/brokerK8sRemoteNamespace").into(),
        verify: spec.get("brokerK8sInsecure").and_then(Value::as_bool) != Some(true),
    })
}

async fn wait_for_join(client: &Client) -> Result<Join> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "submariner-operator",
        &ar(
            "submariner.io",
            "v1alpha1",
            "ServiceDiscovery",
            "servicediscoveries",
        ),
    );
    let mut told = false;
    loop {
        match api.get_opt("service-discovery").await {
            Ok(Some(o)) => return join_settings(&serde_json::to_value(&o)?),
            Ok(None) | Err(kube::Error::Api(_)) if !told => {
                tracing::info!("waiting for `subctl join` to create submariner-operator/service-discovery");
                told = true;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(opts: Options) -> Result<()> {
    let local = subsea_runtime::client::local(opts.kubeconfig.as_deref(), opts.context.as_deref()).await?;
    let j = wait_for_join(&local).await?;
    let broker = subsea_runtime::client::broker(&j.url, &j.ca, &j.token, &j.namespace, j.verify)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let all = |r: &ApiResource, c: &Client| -> Api<DynamicObject> { Api::all_with(c.clone(), r) };
    let in_broker =
        |r: &ApiResource| -> Api<DynamicObject> { Api::namespaced_with(broker.clone(), &j.namespace, r) };
    let ctx = Ctx {
        exports: reflect(all(&exports_ar(), &local), &exports_ar(), tx.clone()),
        services: reflect(all(&services_ar(), &local), &services_ar(), tx.clone()),
        slices: reflect(all(&slices_ar(), &local), &slices_ar(), tx.clone()),
        broker_imports: reflect(in_broker(&imports_ar()), &imports_ar(), tx.clone()),
        broker_slices: reflect(in_broker(&slices_ar()), &slices_ar(), tx.clone()),
        local_imports: reflect(all(&imports_ar(), &local), &imports_ar(), tx),
        cluster: j.cluster,
        broker_ns: j.namespace,
        local,
        broker,
    };
    for st in [
        &ctx.exports,
        &ctx.services,
        &ctx.slices,
        &ctx.broker_imports,
        &ctx.broker_slices,
        &ctx.local_imports,
    ] {
        st.wait_until_ready()
            .await
            .map_err(|e| anyhow!("watch failed to start: {e}"))?;
    }
    tracing::info!(cluster = %ctx.cluster, "lighthouse agent running");
    Loop::new("lighthouse-agent")
        .run(&mut rx, subsea_runtime::shutdown::signal(), |_| async {
            reconcile(&ctx).await.map_err(|e| format!("{e:#}"))
        })
        .await;
    Ok(())
}

fn api_of(client: &Client, r: &ApiResource, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, r)
}

/// Writes `obj` unless `existing` (from a reflector) already holds it: a pass over unchanged
/// state costs no API calls.
async fn ensure(client: &Client, r: &ApiResource, obj: &Value, existing: &[Value]) -> Result<()> {
    let (ns, name) = (s(obj, "/metadata/namespace"), s(obj, "/metadata/name"));
    let current = existing
        .iter()
        .find(|e| s(e, "/metadata/namespace") == ns && s(e, "/metadata/name") == name);
    if current.is_some_and(|c| export::covers(c, obj)) {
        return Ok(());
    }
    put(client, r, obj).await
}

/// Creates or updates `obj`, then its status through the status subresource.
async fn put(client: &Client, r: &ApiResource, obj: &Value) -> Result<()> {
    let (stored, _) = subsea_runtime::objects::apply(client, obj).await?;
    if let Some(status) = obj.get("status") {
        let current = serde_json::to_value(&stored)?;
        if current.get("status") != Some(status) {
            api_of(client, r, s(obj, "/metadata/namespace"))
                .patch_status(
                    &stored.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
                .context("failed to write a ServiceImport status")?;
        }
    }
    Ok(())
}

async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    match api.delete(name, &DeleteParams::default()).await {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        r => r.map(|_| ()).with_context(|| format!("failed to delete {name}")),
    }
}

fn same_conditions(a: &[Value], b: &[Value]) -> bool {
    let strip = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(o) = c.as_object_mut() {
                    o.remove("lastTransitionTime");
                }
                c
            })
            .collect()
    };
    strip(a) == strip(b)
}

async fn reconcile(ctx: &Ctx) -> Result<()> {
    let exports = values(&ctx.exports);
    let services = values(&ctx.services);
    let (lh_slices, k8s_slices): (Vec<Value>, Vec<Value>) = values(&ctx.slices)
        .into_iter()
        .partition(|sl| label(sl, MANAGED_BY) == MANAGER);
    let local_imports = values(&ctx.local_imports);
    let broker_imports = values(&ctx.broker_imports);
    let broker_slices = values(&ctx.broker_slices);
    let imports_refs: Vec<&Value> = broker_imports.iter().collect();
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();

    // Publish: this cluster's part of every valid export.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for e in exports
        .iter()
        .filter(|e| e.pointer("/metadata/deletionTimestamp").is_none())
    {
        let (ns, name) = (s(e, "/metadata/namespace"), s(e, "/metadata/name"));
        let svc = services
            .iter()
            .find(|v| s(v, "/metadata/namespace") == ns && s(v, "/metadata/name") == name);
        let valid = export::validate(svc);
        let mut conflict = None;
        if let (Ok(()), Some(svc)) = (&valid, svc) {
            let backends: Vec<&Value> = k8s_slices
                .iter()
                .filter(|sl| s(sl, "/metadata/namespace") == ns && label(sl, K8S_SERVICE_NAME) == name)
                .collect();
            let si = export::cluster_import(
                &ctx.cluster,
                &ctx.broker_ns,
                svc,
                s(e, "/metadata/creationTimestamp"),
            );
            conflict = export::conflict(&ctx.cluster, &si, &imports_refs);
            if !conflict.as_ref().is_some_and(|c| c.blocking) {
                ensure(&ctx.broker, &imports_ar(), &si, &broker_imports).await?;
                wanted.insert(export::broker_name(name, ns, &ctx.cluster));
                for sl in export::cluster_slices(&ctx.cluster, &ctx.broker_ns, svc, &backends) {
                    ensure(&ctx.broker, &slices_ar(), &sl, &broker_slices).await?;
                    wanted.insert(s(&sl, "/metadata/name").to_string());
                }
            }
        }
        let exported = broker_imports
            .iter()
            .any(|i| s(i, "/metadata/name") == export::broker_name(name, ns, &ctx.cluster));
        let old: Vec<Value> = e
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let blocked = conflict.as_ref().is_some_and(|c| c.blocking);
        let conds = export::conditions(&old, &valid, exported && !blocked, conflict.as_ref(), &now);
        if !same_conditions(&old, &conds) {
            api_of(&ctx.local, &exports_ar(), ns)
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"conditions": conds}})),
                )
                .await
                .with_context(|| format!("failed to write the status of ServiceExport {ns}/{name}"))?;
        }
    }
    // Withdraw what this cluster no longer exports.
    for (r, list) in [(imports_ar(), &broker_imports), (slices_ar(), &broker_slices)] {
        for o in list.iter().filter(|o| label(o, CLUSTER_ID) == ctx.cluster) {
            let name = s(o, "/metadata/name");
            if !wanted.contains(name) {
                tracing::info!(name, "withdrawing an export from the broker");
                delete(&api_of(&ctx.broker, &r, &ctx.broker_ns), name).await?;
            }
        }
    }

    // Import: every exported service, aggregated, into its namespace here.
    let keys: BTreeSet<(String, String)> = broker_imports
        .iter()
        .map(|i| {
            (
                label(i, SOURCE_NAMESPACE).to_string(),
                label(i, SERVICE_NAME).to_string(),
            )
        })
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
        .collect();
    for (ns, name) in &keys {
        if let Some(mut agg) = export::aggregate(ns, name, &imports_refs) {
            agg["metadata"]["labels"] = json!({AGGREGATE_LABEL: MANAGER});
            if let Err(e) = ensure(&ctx.local, &imports_ar(), &agg, &local_imports).await {
                // The namespace does not exist here: MCS imports only into existing namespaces.
                tracing::debug!(error = %e, %ns, %name, "not importing");
            }
        }
    }
    for i in local_imports
        .iter()
        .filter(|i| label(i, AGGREGATE_LABEL) == MANAGER)
    {
        let key = (
            s(i, "/metadata/namespace").to_string(),
            s(i, "/metadata/name").to_string(),
        );
        if !keys.contains(&key) {
            delete(&api_of(&ctx.local, &imports_ar(), &key.0), &key.1).await?;
        }
    }
    let mut copies: BTreeSet<(String, String)> = BTreeSet::new();
    for bs in &broker_slices {
        let local = export::local_slice(bs);
        let key = (
            s(&local, "/metadata/namespace").to_string(),
            s(&local, "/metadata/name").to_string(),
        );
        if let Err(e) = ensure(&ctx.local, &slices_ar(), &local, &lh_slices).await {
            tracing::debug!(error = %e, ns = %key.0, "not importing an EndpointSlice");
        }
        copies.insert(key);
    }
    for sl in &lh_slices {
        let key = (
            s(sl, "/metadata/namespace").to_string(),
            s(sl, "/metadata/name").to_string(),
        );
        if !copies.contains(&key) {
            delete(&api_of(&ctx.local, &slices_ar(), &key.0), &key.1).await?;
        }
    }
    Ok(())
}
