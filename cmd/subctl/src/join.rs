//! `subctl join`: register a cluster with the broker and configure it, step by step as
//! Submariner does, refusing what Submariner would silently get wrong (duplicate IDs,
//! overlapping CIDRs) and leaving nothing half-made on the broker when it fails.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use kube::Client;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use subsea_broker::info::BrokerInfo;
use subsea_broker::objects::{self as obj, JoinSettings};
use subsea_broker::{Cidr, OPERATOR_NAMESPACE, cluster_id, corefile, discovery};

use crate::cluster::{self, Target, api, apply};
use crate::progress::Progress;

mod globalnet;

/// Options of `join`.
#[derive(Clone, Debug)]
pub struct Options {
    /// The broker-info file.
    pub info_path: PathBuf,
    /// `--clusterid`.
    pub cluster_id: Option<String>,
    /// `--servicecidr`.
    pub service_cidrs: Vec<String>,
    /// `--clustercidr`.
    pub cluster_cidrs: Vec<String>,
    /// `--cable-driver`.
    pub cable_driver: String,
    /// `--natt`.
    pub natt: bool,
    /// `--nattport`.
    pub natt_port: u16,
    /// `--health-check`.
    pub health_check: bool,
    /// `--health-check-interval`.
    pub health_check_interval: u64,
    /// `--health-check-max-packet-loss-count`.
    pub health_check_max_loss: u64,
    /// `--globalnet`.
    pub globalnet: bool,
    /// `--globalnet-cidr`.
    pub globalnet_cidr: Option<String>,
    /// `--globalnet-cluster-size`.
    pub globalnet_cluster_size: u64,
    /// `--check-broker-certificate`.
    pub check_broker_certificate: bool,
    /// `--label-gateway`.
    pub label_gateway: bool,
    /// `--custom-domains`.
    pub custom_domains: Option<Vec<String>>,
    /// `--coredns-custom-configmap [ns/]name`.
    pub coredns_custom_configmap: Option<String>,
    /// `--broker-url`.
    pub broker_url: Option<String>,
    /// `--enable-clusterset-ip`.
    pub enable_clusterset_ip: bool,
    /// `--clusterset-ip-cidr`.
    pub clusterset_ip_cidr: Option<String>,
    /// `--mcs-spec`.
    pub mcs_spec: bool,
    /// The component image (`--repository`/`--version`).
    pub image: String,
}

const LIGHTHOUSE_DNS_SERVICE: &str = "submariner-lighthouse-coredns";

/// A client for the broker with the given token: each request goes to the first of `urls`
/// (the broker and its replicas) that answers, so a join works while one replica is down.
pub fn broker_client(
    urls: &[String],
    ca_pem: &[u8],
    token: &str,
    namespace: &str,
    verify: bool,
) -> Result<Client> {
    Ok(subsea_runtime::client::broker_replicas(
        urls, ca_pem, token, namespace, verify,
    )?)
}

/// The broker's URLs: `first` (the broker-info file's `brokerURL`, or `--broker-url`), then
/// the replicas it does not repeat.
pub fn broker_urls(first: &str, replicas: &[String]) -> Vec<String> {
    let mut urls = vec![first.to_string()];
    urls.extend(replicas.iter().filter(|r| r.as_str() != first).cloned());
    urls
}

/// The TLS error behind a client error, if the failure was TLS: found by type in the error's
/// causes (rustls reports through `io::Error`s, whose `source` skips the error they wrap).
fn tls_failure(e: &kube::Error) -> Option<String> {
    fn rustls_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
        rustls_in(inner)
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(t) = rustls_in(c) {
            return Some(t.to_string());
        }
        cause = c.source();
    }
    None
}

/// Explains a failure to reach the broker with a fix.
fn broker_error(e: kube::Error, url: &str, ns: &str) -> anyhow::Error {
    match &e {
        kube::Error::Api(s) if s.code == 401 => anyhow!(
            "the broker at {url} rejected the token in the broker-info file (401 Unauthorized): the file is from another broker, or its service account was deleted; get a fresh file with `subctl deploy-broker` or `subctl recover-broker-info`"
        ),
        kube::Error::Api(s) if s.code == 403 => anyhow!(
            "missing permissions on the broker at {url}: {}; the broker-info token needs the submariner-k8s-broker-admin role in namespace {ns} (re-run `subctl deploy-broker`)",
            s.message
        ),
        kube::Error::Api(s) if s.code == 404 => anyhow!(
            "the broker at {url} does not serve clusters.submariner.io in namespace {ns}: was `subctl deploy-broker` run against it?"
        ),
        _ => {
            let tls = tls_failure(&e);
            let chain = format!("{:#}", anyhow::Error::from(e));
            if let Some(tls) = tls {
                anyhow!(
                    "TLS verification of the broker at {url} failed ({tls}); if the broker's certificate is not signed by the CA in the broker-info file, retry with --check-broker-certificate=false"
                )
            } else {
                anyhow!(
                    "cannot reach the broker at {url} ({chain}); check that the URL in the broker-info file (or --broker-url) is reachable from here"
                )
            }
        }
    }
}

fn labels_of(o: &DynamicObject, key: &str) -> Option<String> {
    o.metadata.labels.as_ref().and_then(|l| l.get(key)).cloned()
}

fn annotation(o: &DynamicObject, key: &str) -> Option<String> {
    o.metadata.annotations.as_ref().and_then(|a| a.get(key)).cloned()
}

fn cidrs(list: &[String], flag: &str) -> Result<Vec<Cidr>> {
    list.iter()
        .map(|c| Cidr::parse(c).map_err(|e| anyhow!("{flag}: {e}")))
        .collect()
}

async fn discover_cidrs(local: &Client, p: &mut Progress<'_>) -> Result<(Vec<String>, Vec<String>)> {
    let pods = api(local, "v1", "Pod", Some("kube-system"))
        .and_then(|a| Ok(a))?
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|o| serde_json::to_value(o).unwrap_or_default())
                .collect::<Vec<Value>>()
        })
        .unwrap_or_default();
    let kube_proxy = api(local, "v1", "ConfigMap", Some("kube-system"))?
        .get_opt("kube-proxy")
        .await
        .ok()
        .flatten()
        .and_then(|cm| {
            cm.data
                .pointer("/data/config.conf")
                .and_then(Value::as_str)
                .map(String::from)
        });
    let nodes: Vec<Value> = api(local, "v1", "Node", None)?
        .list(&ListParams::default())
        .await
        .context("failed to list nodes")?
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect();
    let pod_cidrs = discovery::pod_cidrs(&pods, kube_proxy.as_deref(), &nodes);
    let mut svc_cidrs = discovery::service_cidrs_from_pods(&pods);
    if svc_cidrs.is_empty() {
        // Submariner's trick: ask for an impossible ClusterIP and read the valid range from the error.
        let services = api(local, "v1", "Service", Some("default"))?;
        let probe: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "invalid-svc", "namespace": "default"},
            "spec": {"clusterIP": "1.1.1.1", "ports": [{"port": 443}]}}))?;
        match services.create(&PostParams::default(), &probe).await {
            Err(kube::Error::Api(s)) => svc_cidrs = discovery::service_cidrs_from_error(&s.message),
            Ok(_) => cluster::delete(&services, "invalid-svc").await?,
            Err(e) => p.warn(format!("could not probe the service CIDR: {e}")),
        }
    }
    Ok((svc_cidrs, pod_cidrs))
}

/// What join created on the broker, to undo on failure.
#[derive(Default)]
struct Created(Vec<(kube::Api<DynamicObject>, String)>);

/// Checks the flags that need no cluster to check, so that a bad one changes nothing.
fn validate(opts: &Options) -> Result<()> {
    use subsea_broker::validate as v;
    if opts.natt_port == 0 {
        bail!("--nattport 0 is not a UDP port the tunnels can use; pick one from 1 to 65535 (default 4500)");
    }
    if opts.health_check && opts.health_check_interval == 0 {
        bail!(
            "--health-check-interval must be at least 1 second (or turn health checks off with --health-check=false)"
        );
    }
    if opts.health_check && opts.health_check_max_loss == 0 {
        bail!("--health-check-max-packet-loss-count must be at least 1");
    }
    for d in opts.custom_domains.iter().flatten() {
        v::domain(d, "--custom-domains")?;
    }
    if let Some(c) = &opts.coredns_custom_configmap {
        v::configmap_ref(c)?;
    }
    if let Some(url) = &opts.broker_url {
        v::broker_url(url)?;
    }
    let exact = |list: &[String], flag: &str| -> Result<Vec<Cidr>> {
        list.iter()
            .map(|c| v::exact_cidr(c, flag).map_err(anyhow::Error::from))
            .collect()
    };
    let (svc, pods) = (
        exact(&opts.service_cidrs, "--servicecidr")?,
        exact(&opts.cluster_cidrs, "--clustercidr")?,
    );
    v::distinct(&svc, &pods)?;
    Ok(())
}

/// Joins the local cluster to the broker.
pub async fn run(local: &Target, opts: &Options, p: &mut Progress<'_>) -> Result<()> {
    validate(opts)?;
    let path = &opts.info_path;
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow!("failed to read the broker-info file {}: {e}; run `subctl deploy-broker` against the broker first and pass the broker-info.subm it wrote", path.display())
    })?;
    let info = BrokerInfo::decode(&text).map_err(|e| {
        anyhow!("{} is not a valid broker-info file: {e}; use the file written by `subctl deploy-broker` (or `subctl recover-broker-info`)", path.display())
    })?;
    let url = opts.broker_url.clone().unwrap_or_else(|| info.broker_url.clone());
    p.info(format!("{} indicates broker is at {url}", path.display()));

    let id = match &opts.cluster_id {
        Some(id) => id.clone(),
        None => cluster_id::sanitize(&local.cluster_name),
    };
    cluster_id::validate(&id).map_err(|e| anyhow!("{e}; pass a valid one with --clusterid"))?;
    if opts.cable_driver != "wireguard" {
        bail!(
            "cable driver {:?} is not supported: subsea's data plane is WireGuard; use --cable-driver wireguard",
            opts.cable_driver
        );
    }
    let ns = info.namespace.clone();
    let urls = broker_urls(&url, &info.replica_urls);
    let admin = broker_client(
        &urls,
        &info.ca_crt,
        &info.token,
        &ns,
        opts.check_broker_certificate,
    )?;
    let broker_clusters = api(&admin, "submariner.io/v1", "Cluster", Some(&ns))?
        .list(&ListParams::default())
        .await
        .map_err(|e| broker_error(e, &url, &ns))?;
    p.done(format!("Connected to the broker at {url}"));

    let local_uid = api(&local.client, "v1", "Namespace", None)?
        .get("kube-system")
        .await
        .context("failed to read namespace kube-system of the joining cluster")?
        .metadata
        .uid
        .unwrap_or_default();
    let sa_api = api(&admin, "v1", "ServiceAccount", Some(&ns))?;
    let sa_name = obj::cluster_sa_name(&id);
    if let Some(sa) = sa_api
        .get_opt(&sa_name)
        .await
        .map_err(|e| broker_error(e, &url, &ns))?
    {
        if annotation(&sa, obj::CLUSTER_UID_ANNOTATION).is_some_and(|u| u != local_uid) {
            bail!(
                "cluster ID {id:?} is already used by another cluster on the broker; cluster IDs must be unique: choose another with --clusterid"
            );
        }
    } else if broker_clusters
        .items
        .iter()
        .any(|c| c.metadata.name.as_deref() == Some(id.as_str()))
    {
        bail!(
            "cluster ID {id:?} is already registered on the broker by another cluster; cluster IDs must be unique: choose another with --clusterid"
        );
    }
    p.done(format!("Cluster ID {id:?} is free on the broker"));

    let (mut svc, mut pods) = (opts.service_cidrs.clone(), opts.cluster_cidrs.clone());
    if svc.is_empty() || pods.is_empty() {
        let (found_svc, found_pods) = discover_cidrs(&local.client, p).await?;
        if svc.is_empty() {
            svc = found_svc;
        }
        if pods.is_empty() {
            pods = found_pods;
        }
    }
    if svc.is_empty() {
        bail!("could not discover the service CIDR of this cluster; pass it with --servicecidr");
    }
    if pods.is_empty() {
        bail!("could not discover the pod CIDR of this cluster; pass it with --clustercidr");
    }
    let (svc_c, pod_c) = (cidrs(&svc, "--servicecidr")?, cidrs(&pods, "--clustercidr")?);
    subsea_broker::validate::distinct(&svc_c, &pod_c)?;
    p.done(format!(
        "Service CIDRs {}; pod CIDRs {}",
        svc.join(","),
        pods.join(",")
    ));

    let mine: Vec<Cidr> = svc_c.iter().chain(pod_c.iter()).copied().collect();
    let others: Vec<&DynamicObject> = broker_clusters
        .items
        .iter()
        .filter(|c| c.data["spec"]["cluster_id"] != id.as_str())
        .collect();
    let (gn, _) = globalnet::read(&admin, &ns)
        .await
        .map_err(|e| e.context("failed to read the broker's Globalnet settings"))?;
    let gn_on = gn.settings.is_some();
    globalnet::check_mix(
        gn_on,
        opts.globalnet,
        opts.globalnet_cidr.as_deref(),
        &id,
        &others,
    )?;
    if gn_on {
        p.done("Globalnet is on: this cluster's CIDRs may overlap other clusters'");
    } else {
        refuse_overlaps(&id, &mine, &others)?;
        p.done("No CIDR overlaps with joined clusters");
    }
    let global = if gn_on {
        let (cidr, recorded) = globalnet::allocate(
            &admin,
            &ns,
            &id,
            opts.globalnet_cidr.as_deref(),
            opts.globalnet_cluster_size,
        )
        .await?;
        if let Err(e) = globalnet::check_routable(&cidr, &mine, &others) {
            if recorded {
                globalnet::release(&admin, &ns, &id).await?;
            }
            return Err(e);
        }
        p.done(format!("Allocated GlobalCIDR {cidr}"));
        Some((cidr.to_string(), recorded))
    } else {
        None
    };

    let clusterset_ip = clusterset_ip(&admin, &ns, opts).await?;
    if let Some(range) = &clusterset_ip {
        p.done(format!(
            "ClusterSetIPs are on: exports get a VIP from {range} unless they opt out"
        ));
    }
    let mut created = Created::default();
    let cidrs = Cidrs {
        svc: &svc,
        pods: &pods,
        global: global.as_ref().map(|(c, _)| c.as_str()),
        clusterset_ip: clusterset_ip.as_deref(),
    };
    let result = register(
        local,
        opts,
        &info,
        &urls,
        &id,
        &local_uid,
        &cidrs,
        &admin,
        &mut created,
        p,
    )
    .await;
    if let Err(e) = result {
        for (api, name) in created.0.iter().rev() {
            let _ = cluster::delete(api, name).await;
        }
        if let Some((_, true)) = &global {
            let _ = globalnet::release(&admin, &ns, &id).await;
        }
        if !created.0.is_empty() || matches!(global, Some((_, true))) {
            p.info("Removed what this join had created on the broker");
        }
        return Err(e);
    }
    p.done(format!("Cluster {id:?} joined the broker"));
    Ok(())
}

/// Without Globalnet, every cluster needs distinct CIDRs: an overlap is refused with the fix.
fn refuse_overlaps(id: &str, mine: &[Cidr], others: &[&DynamicObject]) -> Result<()> {
    for other in others {
        let other_id = other.data["spec"]["cluster_id"].as_str().unwrap_or_default();
        let theirs: Vec<Cidr> = ["service_cidr", "cluster_cidr"]
            .iter()
            .flat_map(|k| other.data["spec"][k].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().and_then(|s| Cidr::parse(s).ok()))
            .collect();
        let clashes = subsea_cidr::overlaps(mine, &theirs);
        if !clashes.is_empty() {
            let list: Vec<String> = clashes.iter().map(|(a, b)| format!("{a} overlaps {b}")).collect();
            bail!(
                "the CIDRs of cluster {id:?} overlap those of joined cluster {other_id:?}: {}; every cluster needs distinct service and pod CIDRs (Submariner would silently drop the endpoint): rejoin with --servicecidr/--clustercidr set to free ranges, or deploy the broker with --globalnet, which allows overlaps",
                list.join("; ")
            );
        }
    }
    Ok(())
}

/// The cluster's CIDRs as join records them.
struct Cidrs<'a> {
    svc: &'a [String],
    pods: &'a [String],
    global: Option<&'a str>,
    /// The ClusterSetIP range, when exports get a VIP by default.
    clusterset_ip: Option<&'a str>,
}

/// Checks a ClusterSetIP range list, at most one CIDR per family (`flag` names it in the error).
pub fn clusterset_ip_range(range: &str, flag: &str) -> Result<()> {
    match subsea_lighthouse_core::vip::Settings::default().with_ranges(range) {
        Ok(_) if !range.trim().is_empty() => Ok(()),
        Ok(_) => {
            bail!("{flag} is empty: give a CIDR per family, e.g. 243.0.0.0/8 or 243.0.0.0/8,fd00:243::/104")
        }
        Err(e) => bail!("{flag}: {e} (e.g. 243.0.0.0/8 or 243.0.0.0/8,fd00:243::/104)"),
    }
}

/// Whether this cluster's exports get a ClusterSetIP by default, and from which range: the
/// join flags, else what `deploy-broker --enable-clusterset-ip` recorded on the Broker object.
async fn clusterset_ip(admin: &Client, ns: &str, opts: &Options) -> Result<Option<String>> {
    let broker = api(admin, "submariner.io/v1alpha1", "Broker", Some(ns))?
        .get_opt(obj::BROKER_NAME)
        .await
        .map_err(cluster::readable)?;
    let spec = broker.as_ref().map(|b| &b.data["spec"]);
    let on_broker = spec.and_then(|s| s["clustersetIPEnabled"].as_bool()) == Some(true);
    if !opts.enable_clusterset_ip && !on_broker {
        return Ok(None);
    }
    let range = opts
        .clusterset_ip_cidr
        .clone()
        .or_else(|| {
            spec.and_then(|s| s["clustersetIPCIDRRange"].as_str())
                .filter(|r| !r.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| subsea_lighthouse_core::vip::DEFAULT_RANGE.to_string());
    clusterset_ip_range(&range, "--clusterset-ip-cidr")?;
    Ok(Some(range))
}

impl Cidrs<'_> {
    fn spec(&self, id: &str) -> Value {
        json!({"cluster_id": id, "color_codes": ["blue"], "service_cidr": self.svc, "cluster_cidr": self.pods,
            "global_cidr": self.global.into_iter().collect::<Vec<_>>()})
    }
}

#[allow(clippy::too_many_arguments)]
async fn register(
    local: &Target,
    opts: &Options,
    info: &BrokerInfo,
    urls: &[String],
    id: &str,
    local_uid: &str,
    cidrs: &Cidrs<'_>,
    admin: &Client,
    created: &mut Created,
    p: &mut Progress<'_>,
) -> Result<()> {
    let ns = info.namespace.as_str();
    let sa_name = obj::cluster_sa_name(id);
    let sa = obj::service_account(
        ns,
        &sa_name,
        json!({obj::CLUSTER_ID_ANNOTATION: id, obj::CLUSTER_UID_ANNOTATION: local_uid}),
    );
    let mut sa = sa;
    // Labelled like every object of the cluster, so its own token may delete it at uninstall.
    sa["metadata"]["labels"] = json!({"submariner-io/clusterID": id});
    let mut rb = obj::role_binding(ns, &obj::cluster_binding_name(id), obj::CLUSTER_ROLE, &sa_name);
    let mut owner = Value::Null;
    for o in [&mut sa, &mut rb] {
        if !owner.is_null() {
            o["metadata"]["ownerReferences"] = owner.clone();
        }
        let (stored, new) = apply(admin, o)
            .await
            .map_err(|e| e.context("failed to write the cluster's account on the broker"))?;
        if new {
            created.0.push((
                cluster::api_for(admin, o)?,
                o["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            ));
        }
        if owner.is_null() {
            // The binding and the token are owned by the account: deleting it removes them.
            owner = json!([{"apiVersion": "v1", "kind": "ServiceAccount", "name": sa_name,
                "uid": stored.metadata.uid.unwrap_or_default()}]);
        }
    }
    let token_secret = cluster::service_account_token(admin, ns, &sa_name).await?;
    if let Some(secret_name) = token_secret.metadata.name.as_deref() {
        cluster::api(admin, "v1", "Secret", Some(ns))?
            .patch(
                secret_name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"metadata": {"ownerReferences": owner}})),
            )
            .await
            .map_err(cluster::readable)?;
    }
    let token = String::from_utf8(cluster::secret_data(&token_secret, "token")?)?;
    let ca = cluster::secret_data(&token_secret, "ca.crt")?;
    p.done(format!(
        "Created service account {sa_name:?} and its token on the broker"
    ));

    // The cluster's own token writes its Cluster record: the broker only lets it write objects
    // labelled with its own ID.
    let own = broker_client(urls, &ca, &token, ns, opts.check_broker_certificate)?;
    let record = json!({"apiVersion": "submariner.io/v1", "kind": "Cluster",
        "metadata": {"name": id, "namespace": ns, "labels": {"submariner-io/clusterID": id}},
        "spec": cidrs.spec(id)});
    let (_, new) = apply(&own, &record)
        .await
        .map_err(|e| e.context("failed to register the cluster on the broker"))?;
    if new {
        created
            .0
            .push((cluster::api_for(admin, &record)?, id.to_string()));
    }
    p.done("Registered the cluster and its CIDRs on the broker");

    let lc = &local.client;
    apply(lc, &obj::namespace(OPERATOR_NAMESPACE)).await?;
    for (_, crd) in subsea_api::crds::all() {
        apply(lc, &serde_json::to_value(&crd)?).await?;
    }
    apply(
        lc,
        &obj::opaque_secret(
            OPERATOR_NAMESPACE,
            obj::BROKER_SECRET,
            &[
                ("ca.crt", &ca),
                ("namespace", ns.as_bytes()),
                ("token", token.as_bytes()),
            ],
        ),
    )
    .await?;
    apply(
        lc,
        &obj::opaque_secret(OPERATOR_NAMESPACE, obj::PSK_SECRET, &[("psk", &info.psk)]),
    )
    .await?;
    let coredns_custom = opts
        .coredns_custom_configmap
        .as_ref()
        .map(|c| subsea_broker::validate::configmap_ref(c).map_err(anyhow::Error::from))
        .transpose()?;
    let custom_domains = opts
        .custom_domains
        .clone()
        .or_else(|| info.custom_domains.clone())
        .unwrap_or_default();
    let settings = JoinSettings {
        cluster_id: id.to_string(),
        broker_url: urls[0].clone(),
        broker_replicas: urls[1..].to_vec(),
        broker_namespace: ns.to_string(),
        token: token.clone(),
        ca_crt: ca.clone(),
        insecure: !opts.check_broker_certificate,
        psk: info.psk.clone(),
        cable_driver: opts.cable_driver.clone(),
        natt: opts.natt,
        natt_port: opts.natt_port,
        service_cidrs: cidrs.svc.to_vec(),
        cluster_cidrs: cidrs.pods.to_vec(),
        health_check: opts.health_check,
        health_check_interval: opts.health_check_interval,
        health_check_max_loss: opts.health_check_max_loss,
        components: info.components.clone(),
        custom_domains: custom_domains.clone(),
        coredns_custom: coredns_custom.clone(),
        global_cidr: cidrs.global.map(String::from),
        clusterset_ip: cidrs.clusterset_ip.map(String::from),
    };
    apply(lc, &obj::submariner(&settings)).await?;
    let sd_enabled = info.components.iter().any(|c| c == "service-discovery");
    if sd_enabled {
        apply(lc, &obj::service_discovery(&settings)).await?;
    }
    let local_record = json!({"apiVersion": "submariner.io/v1", "kind": "Cluster",
        "metadata": {"name": id, "namespace": OPERATOR_NAMESPACE},
        "spec": cidrs.spec(id)});
    apply(lc, &local_record).await?;
    p.done("Wrote the broker credentials, the pre-shared key and the Submariner configuration locally");

    if info.components.iter().any(|c| c == "connectivity") {
        for o in crate::workloads::connectivity(&opts.image)? {
            apply(lc, &o).await?;
        }
        p.done(format!("Deployed the gateway and route agent ({})", opts.image));
        if cidrs.global.is_some() {
            for o in crate::workloads::globalnet(&opts.image)? {
                apply(lc, &o).await?;
            }
            p.done(format!(
                "Deployed Globalnet on the gateway nodes ({})",
                opts.image
            ));
        }
    }
    if opts.label_gateway && info.components.iter().any(|c| c == "connectivity") {
        label_gateway(lc, p).await?;
    }
    if sd_enabled {
        for o in crate::workloads::service_discovery(&opts.image, opts.mcs_spec)? {
            apply(lc, &o).await?;
        }
        p.done(format!(
            "Deployed the Lighthouse agent, the DNS server and the ClusterSetIP router ({})",
            opts.image
        ));
        configure_dns(lc, &custom_domains, coredns_custom.as_ref(), p).await?;
    }
    Ok(())
}

async fn label_gateway(client: &Client, p: &mut Progress<'_>) -> Result<()> {
    let nodes = api(client, "v1", "Node", None)?;
    let list = nodes
        .list(&ListParams::default())
        .await
        .context("failed to list nodes")?
        .items;
    if let Some(gw) = list
        .iter()
        .find(|n| labels_of(n, "submariner.io/gateway").as_deref() == Some("true"))
    {
        p.done(format!(
            "Gateway node {:?} is already labelled",
            gw.metadata.name.as_deref().unwrap_or_default()
        ));
        return Ok(());
    }
    let is_worker = |n: &&DynamicObject| labels_of(n, "node-role.kubernetes.io/worker").is_some();
    let not_control = |n: &&DynamicObject| {
        labels_of(n, "node-role.kubernetes.io/control-plane").is_none()
            && labels_of(n, "node-role.kubernetes.io/master").is_none()
    };
    let mut candidates: Vec<&DynamicObject> = list.iter().filter(is_worker).collect();
    if candidates.is_empty() {
        candidates = list.iter().filter(not_control).collect();
    }
    candidates.sort_by_key(|n| n.metadata.name.clone());
    let Some(node) = candidates.first() else {
        p.warn("No node could be labelled as gateway; label one with `kubectl label node NAME submariner.io/gateway=true`");
        return Ok(());
    };
    let name = node.metadata.name.clone().unwrap_or_default();
    nodes
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"submariner.io/gateway": "true"}}})),
        )
        .await
        .with_context(|| format!("failed to label node {name:?} as gateway"))?;
    p.done(format!(
        "Labelled node {name:?} as the gateway (submariner.io/gateway=true)"
    ));
    Ok(())
}

async fn configure_dns(
    client: &Client,
    custom: &[String],
    custom_cm: Option<&(String, String)>,
    p: &mut Progress<'_>,
) -> Result<()> {
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": LIGHTHOUSE_DNS_SERVICE, "namespace": OPERATOR_NAMESPACE, "labels": {"app": LIGHTHOUSE_DNS_SERVICE}},
        "spec": {"selector": {"app": LIGHTHOUSE_DNS_SERVICE}, "ports": [
            {"name": "udp", "port": 53, "protocol": "UDP", "targetPort": 53},
            {"name": "tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}});
    let (stored, _) = apply(client, &svc).await?;
    let Some(ip) = stored
        .data
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .map(String::from)
    else {
        p.warn("The lighthouse DNS Service got no ClusterIP; configure DNS forwarding for clusterset.local by hand (see the README)");
        return Ok(());
    };
    let mut zones = vec!["clusterset.local".to_string()];
    zones.extend(custom.iter().cloned());
    let cms = |ns: &str| api(client, "v1", "ConfigMap", Some(ns));
    if let Some((ns, name)) = custom_cm {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": {"lighthouse.server": corefile::forward_blocks(&zones, &ip)}});
        apply(client, &cm).await?;
        p.done(format!(
            "Configured {ns}/{name} (key lighthouse.server) to forward {} to {ip}",
            zones.join(", ")
        ));
        return Ok(());
    }
    match cms("kube-system")?.get_opt("coredns").await.context("failed to read kube-system/coredns")? {
        Some(cm) => {
            let current = cm.data.pointer("/data/Corefile").and_then(Value::as_str).unwrap_or_default();
            let updated = corefile::with_lighthouse_block(current, &zones, &ip);
            cms("kube-system")?
                .patch("coredns", &PatchParams::default(), &Patch::Merge(json!({"data": {"Corefile": updated}})))
                .await
                .context("failed to update kube-system/coredns")?;
            p.done(format!("Configured CoreDNS to forward {} to the lighthouse DNS server at {ip}", zones.join(", ")));
        }
        None => p.warn(format!(
            "kube-system/coredns not found: configure your cluster DNS to forward {} to {ip} (see the README), or use --coredns-custom-configmap",
            zones.join(", ")
        )),
    }
    Ok(())
}
