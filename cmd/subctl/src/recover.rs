//! `subctl recover-broker-info`: rebuild `broker-info.subm` from a joined cluster.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use subsea_broker::info::BrokerInfo;
use subsea_broker::{OPERATOR_NAMESPACE, objects as obj};

use crate::cluster::{self, Target, api};
use crate::deploy_broker::{now_rfc3339, write_info_file};
use crate::progress::Progress;

/// Rebuilds the file from `cluster`'s Submariner object; the admin token is re-read with the
/// broker administrator's credentials (`broker`), since a cluster's own token cannot see it.
pub async fn run(
    cluster: &Target,
    broker: Option<&Target>,
    broker_url: Option<String>,
    output: &Path,
    p: &mut Progress<'_>,
) -> Result<()> {
    let sub = cluster::submariner_object(&cluster.client)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "context {:?} has no Submariner object in {OPERATOR_NAMESPACE}: is this cluster joined?",
                cluster.context
            )
        })?;
    let spec = &sub.data["spec"];
    let s = |k: &str| spec[k].as_str().unwrap_or_default().to_string();
    let b64 = |k: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s(k))
            .with_context(|| format!("Submariner field {k} is not base64"))
    };
    let ns = s("brokerK8sRemoteNamespace");
    let broker = broker.ok_or_else(|| {
        anyhow!("the broker admin token cannot be read with a cluster's own broker credentials (by design: they are scoped to that cluster); pass the broker's kubeconfig with --broker-kubeconfig/--broker-context")
    })?;
    let secret = cluster::service_account_token(&broker.client, &ns, obj::ADMIN_SA).await?;
    let brokers = api(&broker.client, "submariner.io/v1alpha1", "Broker", Some(&ns))?;
    let b = brokers
        .get_opt(obj::BROKER_NAME)
        .await
        .map_err(cluster::readable)?;
    let components: Vec<String> = b
        .as_ref()
        .and_then(|b| b.data["spec"]["components"].as_array().cloned())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_else(|| subsea_broker::COMPONENTS.iter().map(|c| c.to_string()).collect());
    let domains: Vec<String> = b
        .as_ref()
        .and_then(|b| b.data["spec"]["defaultCustomDomains"].as_array().cloned())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let info = BrokerInfo {
        broker_url: broker_url.unwrap_or_else(|| format!("https://{}", s("brokerK8sApiServer"))),
        replica_urls: spec["brokerK8sApiServerReplicas"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|h| format!("https://{h}"))
                    .collect()
            })
            .unwrap_or_default(),
        ca_crt: b64("brokerK8sCA")?,
        namespace: ns,
        token: String::from_utf8(cluster::secret_data(&secret, "token")?)?,
        token_secret_name: secret.metadata.name.clone().unwrap_or_default(),
        token_service_account: obj::ADMIN_SA.into(),
        psk: b64("ceIPSecPSK")?,
        components,
        custom_domains: if domains.is_empty() { None } else { Some(domains) },
    };
    if let Some(b) = write_info_file(output, &info.encode(), &now_rfc3339())? {
        p.info(format!(
            "Backed up the previous {} to {}",
            output.display(),
            b.display()
        ));
    }
    p.done(format!(
        "Recovered {} from cluster context {:?}",
        output.display(),
        cluster.context
    ));
    Ok(())
}
