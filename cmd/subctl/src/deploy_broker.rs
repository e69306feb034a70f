//! `subctl deploy-broker`: turn any Kubernetes API into a broker and write `broker-info.subm`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::Rng;
use serde_json::to_value;
use subsea_broker::globalnet;
use subsea_broker::info::BrokerInfo;
use subsea_broker::objects as obj;

use crate::cluster::{self, Target};
use crate::progress::Progress;

/// Options of `deploy-broker`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Broker namespace.
    pub namespace: String,
    /// Enabled components.
    pub components: Vec<String>,
    /// Default custom DNS domains.
    pub custom_domains: Vec<String>,
    /// URL written into the file (default: the kubeconfig's server URL).
    pub broker_url: Option<String>,
    /// URLs of further broker replicas.
    pub broker_replica_urls: Vec<String>,
    /// Reuse the PSK of this broker-info file.
    pub psk_from: Option<PathBuf>,
    /// Globalnet requested: range and default cluster size.
    pub globalnet: Option<(String, u64)>,
    /// ClusterSetIPs on by default for every export: their range.
    pub clusterset_ip: Option<String>,
    /// Where to write `broker-info.subm`.
    pub output: PathBuf,
}

/// Checks the component list.
pub fn validate_components(components: &[String]) -> Result<()> {
    for c in components {
        if !subsea_broker::COMPONENTS.contains(&c.as_str()) {
            bail!(
                "unknown component {c:?}: valid components are {}",
                subsea_broker::COMPONENTS.join(", ")
            );
        }
    }
    if components.is_empty() {
        bail!("no components given: use --components service-discovery,connectivity (or a subset)");
    }
    Ok(())
}

fn read_info(path: &Path) -> Result<BrokerInfo> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    BrokerInfo::decode(&text).with_context(|| format!("{} is not a valid broker-info file", path.display()))
}

/// Writes the file with mode 0600, first renaming an existing one to `<file>.<timestamp>`.
pub fn write_info_file(path: &Path, content: &str, now_rfc3339: &str) -> Result<Option<PathBuf>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut backup = None;
    if path.exists() {
        let b = PathBuf::from(format!("{}.{}", path.display(), now_rfc3339.replace(':', "_")));
        std::fs::rename(path, &b).with_context(|| format!("failed to back up {}", path.display()))?;
        backup = Some(b);
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(backup)
}

/// The current time as RFC 3339 (for backup file names).
pub fn now_rfc3339() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

/// The Globalnet settings in the broker's ConfigMap.
pub fn globalnet_data(cm: &kube::api::DynamicObject) -> Result<globalnet::Info> {
    let data: BTreeMap<String, String> =
        serde_json::from_value(cm.data.get("data").cloned().unwrap_or_default()).unwrap_or_default();
    Ok(globalnet::Info::from_data(&data)?)
}

/// Deploys the broker and writes the info file.
pub async fn run(target: &Target, opts: &Options, p: &mut Progress<'_>) -> Result<()> {
    // Everything is checked before the first write, so a bad flag changes nothing.
    validate_components(&opts.components)?;
    let globalnet = opts
        .globalnet
        .as_ref()
        .map(|(range, size)| globalnet::Settings::new(range, *size))
        .transpose()?;
    if let Some(range) = &opts.clusterset_ip {
        crate::join::clusterset_ip_range(range, "--clusterset-ip-cidr-range")?;
    }
    let ns = opts.namespace.as_str();
    subsea_broker::validate::dns_label(ns, "broker namespace (-n)")?;
    for d in &opts.custom_domains {
        subsea_broker::validate::domain(d, "--custom-domains")?;
    }
    for url in opts.broker_url.iter().chain(&opts.broker_replica_urls) {
        subsea_broker::validate::broker_url(url)?;
    }
    let psk_from = match &opts.psk_from {
        Some(path) => Some(read_info(path).context("failed to read --ipsec-psk-from")?.psk),
        None => None,
    };
    let client = &target.client;
    let existing = cluster::api(client, "v1", "ConfigMap", Some(ns))?
        .get_opt(globalnet::CONFIGMAP)
        .await
        .map_err(cluster::readable)?
        .map(|cm| globalnet_data(&cm))
        .transpose()?
        .unwrap_or_default();
    let gn_info = globalnet::redeploy(&existing, globalnet)?;
    for (_, crd) in subsea_api::crds::all() {
        cluster::apply(client, &to_value(&crd)?).await?;
    }
    p.done("Deployed the broker CRDs");
    cluster::apply(client, &obj::namespace(ns)).await?;
    cluster::apply(
        client,
        &obj::service_account(ns, obj::ADMIN_SA, serde_json::json!({})),
    )
    .await?;
    cluster::apply(client, &obj::admin_role(ns)).await?;
    cluster::apply(
        client,
        &obj::role_binding(ns, obj::ADMIN_ROLE, obj::ADMIN_ROLE, obj::ADMIN_SA),
    )
    .await?;
    cluster::apply(client, &obj::cluster_role(ns)).await?;
    cluster::apply(client, &obj::globalnet_info(ns, &gn_info)).await?;
    p.done(format!(
        "Created the broker namespace {ns:?}, its service account and roles"
    ));
    let mut components = opts.components.clone();
    components.sort();
    components.dedup();
    cluster::apply(
        client,
        &obj::broker(
            ns,
            &components,
            &opts.custom_domains,
            globalnet.as_ref(),
            opts.clusterset_ip.as_deref(),
        ),
    )
    .await?;
    p.done("Created the Broker object");
    if let Some(range) = &opts.clusterset_ip {
        p.done(format!(
            "ClusterSetIPs are on: every export gets a VIP from {range} unless it opts out"
        ));
    }
    if let Some(g) = &globalnet {
        p.done(format!(
            "Globalnet is on: clusters get {} global IPs each from {}",
            g.cluster_size, g.range
        ));
    }
    let secret = cluster::service_account_token(client, ns, obj::ADMIN_SA).await?;
    p.done("Issued the broker admin token");

    let broker_url = opts.broker_url.clone().unwrap_or_else(|| target.url.clone());
    // Reuse the PSK of --ipsec-psk-from, or of the file being replaced when it is for the same
    // broker, so re-running deploy-broker does not cut the tunnels of joined clusters.
    let previous = Some(opts.output.as_path())
        .filter(|p| p.exists())
        .and_then(|p| read_info(p).ok())
        .filter(|info| info.broker_url == broker_url)
        .map(|info| info.psk);
    let psk = match psk_from.or(previous) {
        Some(psk) => psk,
        None => rand::rng()
            .random::<[u8; 32]>()
            .iter()
            .chain(rand::rng().random::<[u8; 16]>().iter())
            .copied()
            .collect(),
    };
    let info = BrokerInfo {
        broker_url,
        replica_urls: opts.broker_replica_urls.clone(),
        ca_crt: cluster::secret_data(&secret, "ca.crt")?,
        namespace: ns.to_string(),
        token: String::from_utf8(cluster::secret_data(&secret, "token")?)?,
        token_secret_name: secret.metadata.name.clone().unwrap_or_default(),
        token_service_account: obj::ADMIN_SA.to_string(),
        psk,
        components,
        custom_domains: if opts.custom_domains.is_empty() {
            None
        } else {
            Some(opts.custom_domains.clone())
        },
    };
    if let Some(b) = write_info_file(&opts.output, &info.encode(), &now_rfc3339())? {
        p.info(format!(
            "Backed up the previous {} to {}",
            opts.output.display(),
            b.display()
        ));
    }
    p.done(format!(
        "Wrote {} (keep it secret: it holds the broker token and the pre-shared key)",
        opts.output.display()
    ));
    Ok(())
}
