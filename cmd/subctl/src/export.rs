//! `subctl export service` and `subctl unexport service`.

use anyhow::{Context, Result, bail};
use kube::Client;
use serde_json::json;

use crate::cluster::{api, apply, delete, readable};
use crate::progress::Progress;

/// Creates the ServiceExport for `ns/name` (idempotent), with the ClusterSetIP annotation when
/// `use_clusterset_ip` says.
pub async fn export(
    client: &Client,
    ns: &str,
    name: &str,
    use_clusterset_ip: Option<bool>,
    p: &mut Progress<'_>,
) -> Result<()> {
    let svcs = api(client, "v1", "Service", Some(ns))?;
    if svcs.get_opt(name).await.map_err(readable)?.is_none() {
        bail!(
            "Service {ns}/{name} does not exist: create it first (the export would stay invalid until it does)"
        );
    }
    let mut export = json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": ns}});
    if let Some(on) = use_clusterset_ip {
        export["metadata"]["annotations"] =
            json!({subsea_lighthouse_core::vip::USE_CLUSTERSET_IP: on.to_string()});
    }
    let (_, created) = apply(client, &export).await.context(
        "failed to create the ServiceExport (are the subsea CRDs installed? run `subctl join` first)",
    )?;
    p.done(if created {
        format!("Service {ns}/{name} exported")
    } else {
        format!("Service {ns}/{name} was already exported")
    });
    Ok(())
}

/// Deletes the ServiceExport for `ns/name`.
pub async fn unexport(client: &Client, ns: &str, name: &str, p: &mut Progress<'_>) -> Result<()> {
    let exports = api(
        client,
        "multicluster.x-k8s.io/v1alpha1",
        "ServiceExport",
        Some(ns),
    )?;
    if exports.get_opt(name).await.map_err(readable)?.is_none() {
        bail!("Service {ns}/{name} is not exported (no ServiceExport {ns}/{name})");
    }
    delete(&exports, name).await?;
    p.done(format!("Service {ns}/{name} unexported"));
    Ok(())
}
