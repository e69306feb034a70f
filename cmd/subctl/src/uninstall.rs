//! `subctl uninstall`: remove subsea from a cluster, and the cluster's records from the broker.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use subsea_broker::{OPERATOR_NAMESPACE, corefile};

use crate::cluster::{self, Target, api};
use crate::progress::Progress;

/// Uninstalls; `yes` is the user's confirmation.
pub async fn run(t: &Target, yes: bool, p: &mut Progress<'_>) -> Result<()> {
    if !yes {
        bail!(
            "this removes subsea from the cluster of context {:?} and its records from the broker; re-run with -y to confirm",
            t.context
        );
    }
    let sub = cluster::submariner_object(&t.client)
        .await
        .ok()
        .flatten()
        .and_then(|s| serde_json::to_value(s).ok());
    // The components first: a gateway or agent still running would publish its records again
    // right after the broker is cleaned.
    stop_components(t, STOP_TIMEOUT, p).await?;
    if let Some(sub) = &sub {
        let spec = &sub["spec"];
        let id = spec["clusterID"].as_str().unwrap_or_default();
        let b = cluster::broker_access(spec);
        let url = &b.url;
        match remove_from_broker(&b, id).await {
            Ok(n) => p.done(format!("Removed {n} objects of cluster {id:?} from the broker")),
            Err(e) => p.warn(format!("could not clean the broker at {url} ({e:#}); its records of cluster {id:?} remain until you re-run uninstall")),
        }
        if let Some(cm) = spec["coreDNSCustomConfig"].as_object() {
            let (cns, name) = (
                cm["namespace"].as_str().unwrap_or("kube-system"),
                cm["configMapName"].as_str().unwrap_or_default(),
            );
            let cms = api(&t.client, "v1", "ConfigMap", Some(cns))?;
            let _ = cms
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"lighthouse.server": null}})),
                )
                .await;
        }
    }
    let cms = api(&t.client, "v1", "ConfigMap", Some("kube-system"))?;
    if let Some(cm) = cms.get_opt("coredns").await.ok().flatten() {
        let current = cm
            .data
            .pointer("/data/Corefile")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let cleaned = corefile::without_lighthouse_block(&current);
        if cleaned != current {
            cms.patch(
                "coredns",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"Corefile": cleaned}})),
            )
            .await
            .map_err(cluster::readable)?;
            p.done("Removed the clusterset.local forwarding from CoreDNS");
        }
    }
    let nodes = api(&t.client, "v1", "Node", None)?;
    for n in nodes
        .list(&ListParams::default().labels("submariner.io/gateway=true"))
        .await
        .map_err(cluster::readable)?
        .items
    {
        let name = n.metadata.name.unwrap_or_default();
        nodes
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"submariner.io/gateway": null}}})),
            )
            .await
            .map_err(cluster::readable)?;
        p.done(format!("Unlabelled gateway node {name:?}"));
    }
    // Globalnet's internal Services live in the exported Services' namespaces, and the gateway
    // nodes carry their global IPs.
    let services = api(&t.client, "v1", "Service", None)?;
    let internal = services
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=subsea-globalnet"))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    for s in &internal {
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        let name = s.metadata.name.clone().unwrap_or_default();
        cluster::delete(&api(&t.client, "v1", "Service", Some(&ns))?, &name).await?;
    }
    for n in nodes
        .list(&ListParams::default())
        .await
        .map_err(cluster::readable)?
        .items
    {
        let has = n
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(subsea_api::globalnet::NODE_GLOBAL_IP_ANNOTATION));
        if has {
            nodes
                .patch(
                    n.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {subsea_api::globalnet::NODE_GLOBAL_IP_ANNOTATION: null}}})),
                )
                .await
                .map_err(cluster::readable)?;
        }
    }
    if !internal.is_empty() {
        p.done(format!(
            "Removed Globalnet's {} internal Service(s) and the nodes' global IPs",
            internal.len()
        ));
    }
    cluster::delete(&api(&t.client, "v1", "Namespace", None)?, OPERATOR_NAMESPACE).await?;
    p.done(format!(
        "Deleted namespace {OPERATOR_NAMESPACE:?} and everything in it"
    ));
    // The cluster-scoped RBAC join applied with the workloads: not in the namespace.
    let docs = workloads()?;
    for d in docs
        .iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("ClusterRole" | "ClusterRoleBinding")))
    {
        if let Some(name) = d["metadata"]["name"].as_str() {
            cluster::delete(&cluster::api_for(&t.client, d)?, name).await?;
        }
    }
    p.done("Deleted the cluster roles and bindings of the components");
    let crds = api(
        &t.client,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
    )?;
    for (file, _) in subsea_api::crds::all() {
        cluster::delete(&crds, file.trim_end_matches(".yaml")).await?;
    }
    p.done("Deleted the subsea CRDs");
    Ok(())
}

/// How long the components' pods get to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// The bundled workloads (`manifests/deploy/`), every one `join` may have deployed.
fn workloads() -> Result<Vec<Value>> {
    let mut docs = crate::workloads::connectivity("unused")?;
    docs.extend(crate::workloads::service_discovery("unused", false)?);
    docs.extend(crate::workloads::globalnet("unused")?);
    Ok(docs)
}

/// Deletes the components' DaemonSets and Deployments and their pods, and waits (up to
/// `timeout`) until no pod of theirs is left. Pods that outlive the wait are reported, not
/// fatal: uninstall goes on, and says how to finish.
async fn stop_components(t: &Target, timeout: Duration, p: &mut Progress<'_>) -> Result<()> {
    let docs = workloads()?;
    let controllers: Vec<&Value> = docs
        .iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("DaemonSet" | "Deployment")))
        .collect();
    let apps: Vec<&str> = controllers
        .iter()
        .filter_map(|d| d["spec"]["selector"]["matchLabels"]["app"].as_str())
        .collect();
    for d in &controllers {
        if let Some(name) = d["metadata"]["name"].as_str() {
            let api = api(
                &t.client,
                d["apiVersion"].as_str().unwrap_or("apps/v1"),
                d["kind"].as_str().unwrap_or_default(),
                Some(OPERATOR_NAMESPACE),
            )?;
            match api.delete(name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(cluster::readable(e)),
            }
        }
    }
    let pods = api(&t.client, "v1", "Pod", Some(OPERATOR_NAMESPACE))?;
    let selector = ListParams::default().labels(&format!("app in ({})", apps.join(",")));
    let remaining = || async {
        pods.list(&selector)
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|p| p.metadata.name)
                    .collect::<Vec<_>>()
            })
            .map_err(cluster::readable)
    };
    let first = remaining().await?;
    if first.is_empty() {
        return Ok(());
    }
    // What their controllers' deletion would do in time, at once: a cluster whose controllers
    // are gone (or never managed them) has no one else to delete them.
    for name in &first {
        match pods.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(cluster::readable(e)),
        }
    }
    p.info(format!("Waiting for {} component pod(s) to stop", first.len()));
    let start = Instant::now();
    loop {
        let left = remaining().await?;
        if left.is_empty() {
            p.done(format!(
                "Stopped the components ({} pod(s)) in {:.1} s",
                first.len(),
                start.elapsed().as_secs_f64()
            ));
            return Ok(());
        }
        if start.elapsed() > timeout {
            p.warn(format!(
                "{} component pod(s) still running after {} s ({}): they may publish this cluster's records to the broker again; once they are gone, re-run `subctl uninstall`",
                left.len(),
                timeout.as_secs(),
                left.join(", ")
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn remove_from_broker(b: &cluster::BrokerAccess, id: &str) -> Result<usize> {
    let broker = b.client()?;
    let ns = b.namespace.as_str();
    let mut n = 0;
    let selector = ListParams::default().labels(&format!("submariner-io/clusterID={id}"));
    // Its gateway records, and what its Lighthouse agent published: the other clusters then
    // drop its exports from their imports and answers.
    for (av, kind) in [
        ("submariner.io/v1", "Endpoint"),
        ("submariner.io/v1", "Cluster"),
        ("multicluster.x-k8s.io/v1alpha1", "ServiceImport"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("coordination.k8s.io/v1", "Lease"),
    ] {
        let a = api(&broker, av, kind, Some(ns))?;
        let listed = match a.list(&selector).await {
            // A broker deployed before gateway heartbeats grants no Leases: there are none.
            Err(kube::Error::Api(s)) if s.code == 403 && kind == "Lease" => continue,
            r => r.map_err(cluster::readable)?,
        };
        for o in listed.items {
            let name = o.metadata.name.unwrap_or_default();
            match a.delete(&name, &DeleteParams::default()).await {
                Ok(_) => n += 1,
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(cluster::readable(e)),
            }
        }
    }
    // Last, the cluster's credential revokes itself: its account goes, and with it (owner
    // references) its token Secret and RoleBinding. Nothing it did before needs it any more.
    let sa = subsea_broker::objects::cluster_sa_name(id);
    let accounts = api(&broker, "v1", "ServiceAccount", Some(ns))?;
    match accounts.delete(&sa, &DeleteParams::background()).await {
        Ok(_) => n += 1,
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(kube::Error::Api(s)) if s.code == 403 => bail!(
            "the broker refused to delete service account {ns}/{sa} ({}); a cluster joined by an older subctl cannot revoke itself: a broker administrator removes it with `kubectl -n {ns} delete serviceaccount {sa}` and `kubectl -n {ns} delete rolebinding {}`",
            s.message,
            subsea_broker::objects::cluster_binding_name(id)
        ),
        Err(e) => return Err(cluster::readable(e)),
    }
    Ok(n)
}
