//! The gateway's I/O: election, publishing, syncers, the tunnel controller and the status loop.
//! Every decision is made by a pure function elsewhere (`subsea_plan`, `subsea_health`,
//! [`crate::local`], [`crate::status`]); this module reads state, calls them and writes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ApiResource, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use subsea_api::submariner::{Cluster, Endpoint, EndpointSpec, Gateway};
use subsea_datapath::Datapath;
use subsea_health::lease::{Decision, LeaseState, Timing, decide, must_step_down};
use subsea_netlink::{Netlink, RULE_PRIORITY, Route, TABLE};
use subsea_plan::{Local, Plan, Remote};
use subsea_runtime::controller::Loop;
use subsea_syncer::driver::Syncer;
use subsea_syncer::plan::{CLUSTER_ID_LABEL, Config as SyncConfig, Direction};
use tokio::task::JoinHandle;

use crate::local::{self, Node};
use crate::settings::{self, Settings};
use crate::status;

/// Name of the election Lease.
pub const LOCK: &str = "submariner-gateway-lock";
/// How often every gateway refreshes its Gateway object.
pub const STATUS_PERIOD: Duration = Duration::from_secs(5);
const MANAGER: &str = "subsea-gateway";

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig of the local cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Context in it.
    pub context: Option<String>,
    /// Node name (host name).
    pub hostname: String,
    /// Address remote gateways reach us at; found from the route to the broker when unset.
    pub private_ip: Option<IpAddr>,
    /// Public address to publish.
    pub public_ip: Option<IpAddr>,
    /// Health-check address; the node's address inside the cluster CIDR when unset.
    pub health_check_ip: Option<IpAddr>,
    /// Election timing.
    pub timing: Timing,
    /// Where the UAPI socket goes.
    pub uapi_dir: PathBuf,
    /// TUN MTU.
    pub mtu: u16,
    /// Port of `/metrics` (0: off).
    pub metrics_port: u16,
}

struct Shared {
    opts: Options,
    settings: Settings,
    node: Node,
    local: Client,
    broker: Client,
    netlink: Netlink,
    datapath: OnceLock<Arc<Datapath>>,
    active: AtomicBool,
    plan: Mutex<Plan>,
    remotes: Mutex<BTreeMap<String, EndpointSpec>>,
    failure: Mutex<String>,
    health: crate::health::Table,
    metrics: Arc<Mutex<String>>,
    /// Wakes the status loop at once when the HA state changes, so `haStatus` follows a
    /// failover within moments rather than a status period later.
    status_now: tokio::sync::Notify,
    /// The node's global IP (Globalnet), once published.
    global_ip: Mutex<Option<IpAddr>>,
}

/// A task aborted when dropped, so a leader's pingers end with its tunnel controller.
struct Owned(JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the gateway until SIGTERM or Ctrl-C.
pub async fn run(opts: Options) -> Result<()> {
    let local_client =
        subsea_runtime::client::local(opts.kubeconfig.as_deref(), opts.context.as_deref()).await?;
    let spec = subsea_runtime::join::submariner(&local_client).await?;
    let settings = settings::from_spec(&spec)?;
    let broker = subsea_runtime::client::broker(
        &settings.broker_url,
        &settings.broker_ca,
        &settings.broker_token,
        &settings.broker_namespace,
        settings.broker_verify,
    )?;
    let netlink = Netlink::connect()?;
    let node = discover(&opts, &settings, &netlink).await?;
    tracing::info!(cluster = %settings.cluster_id, node = %node.hostname, private_ip = %node.private_ip,
        cni_ip = ?node.cni_ip, "gateway starting");
    let shared = Arc::new(Shared {
        opts,
        settings,
        node,
        local: local_client,
        broker,
        netlink,
        datapath: OnceLock::new(),
        active: AtomicBool::new(false),
        plan: Mutex::new(Plan::default()),
        remotes: Mutex::new(BTreeMap::new()),
        failure: Mutex::new(String::new()),
        health: Default::default(),
        status_now: tokio::sync::Notify::new(),
        global_ip: Mutex::new(None),
        metrics: Default::default(),
    });
    let status_task = tokio::spawn(status_loop(shared.clone()));
    let metrics_task = (shared.opts.metrics_port != 0).then(|| {
        let text = shared.metrics.clone();
        tokio::spawn(subsea_metrics::serve(
            SocketAddr::from(([0, 0, 0, 0], shared.opts.metrics_port)),
            Arc::new(move || guard(&text).clone()),
        ))
    });
    let result = elect(shared.clone()).await;
    status_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    result
}

/// The node's addresses: the private IP is the source address towards the broker (what
/// Submariner finds by dialling 8.8.8.8, which a sandbox or air-gapped site cannot route).
async fn discover(opts: &Options, s: &Settings, nl: &Netlink) -> Result<Node> {
    let private_ip = match opts.private_ip {
        Some(ip) => ip,
        None => {
            let host = s
                .broker_url
                .split("://")
                .nth(1)
                .unwrap_or(&s.broker_url)
                .trim_end_matches('/');
            let addr = host
                .to_socket_addrs()
                .map_err(|source| Error::Discovery {
                    context: format!("cannot resolve the broker address {host:?}"),
                    source,
                })?
                .next()
                .ok_or_else(|| Error::Missing(format!("the broker address {host:?} resolves to nothing")))?;
            let sock = UdpSocket::bind((
                if addr.is_ipv4() {
                    IpAddr::from([0u8; 4])
                } else {
                    IpAddr::from([0u16; 8])
                },
                0,
            ))
            .and_then(|sock| sock.connect(addr).map(|()| sock))
            .and_then(|sock| sock.local_addr())
            .map_err(|source| Error::Discovery {
                context: format!("no route to the broker at {addr}; pass --private-ip"),
                source,
            })?;
            sock.ip()
        }
    };
    let addrs: Vec<IpAddr> = nl.addresses().await?.iter().map(|(_, ip, _)| *ip).collect();
    let (cni_ip, cni_ip6, private_ip6) = local::pick_addresses(&addrs, &s.cluster_cidrs);
    let cni_ip = opts.health_check_ip.or(cni_ip);
    if cni_ip.is_none() {
        tracing::warn!(
            "no address of this node lies in the cluster CIDR: health checks and host-network traffic to remote clusters will not work; pass --health-check-ip"
        );
    }
    Ok(Node {
        hostname: opts.hostname.clone(),
        private_ip,
        public_ip: opts.public_ip,
        cni_ip,
        private_ip6: private_ip6.filter(|_| private_ip.is_ipv4()),
        cni_ip6,
    })
}

fn to_state(l: &Lease) -> LeaseState {
    let spec = l.spec.clone().unwrap_or_default();
    let secs = |t: Option<MicroTime>| t.map(|t| t.0.as_microsecond() as f64 / 1e6);
    LeaseState {
        holder: spec.holder_identity,
        duration_secs: spec.lease_duration_seconds.unwrap_or(0).max(0) as u32,
        renew_time: secs(spec.renew_time),
        acquire_time: secs(spec.acquire_time),
        transitions: spec.lease_transitions.unwrap_or(0).max(0) as u32,
    }
}

fn micro(t: Option<f64>) -> Option<MicroTime> {
    t.and_then(|t| k8s_openapi::jiff::Timestamp::from_microsecond((t * 1e6) as i64).ok())
        .map(MicroTime)
}

/// Writes our lease; `Ok(true)` when we hold it afterwards.
async fn write_lease(
    api: &Api<Lease>,
    current: Option<&Lease>,
    want: &LeaseState,
) -> Result<bool, kube::Error> {
    let spec = LeaseSpec {
        holder_identity: want.holder.clone(),
        lease_duration_seconds: Some(want.duration_secs as i32),
        renew_time: micro(want.renew_time),
        acquire_time: micro(want.acquire_time),
        lease_transitions: Some(want.transitions as i32),
        ..Default::default()
    };
    let mut lease = current.cloned().unwrap_or_else(|| Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(LOCK.into()),
            ..Default::default()
        },
        ..Default::default()
    });
    lease.spec = Some(spec);
    let r = match current {
        Some(_) => api.replace(LOCK, &PostParams::default(), &lease).await,
        None => api.create(&PostParams::default(), &lease).await,
    };
    match r {
        Ok(_) => Ok(true),
        // Someone else wrote first: they lead this round.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// How often the gateway re-reads its Node's labels.
const NODE_CHECK: Duration = Duration::from_secs(1);

async fn elect(shared: Arc<Shared>) -> Result<()> {
    let api: Api<Lease> = Api::namespaced(shared.local.clone(), &shared.settings.namespace);
    let me = format!("{}-submariner-gateway", shared.node.hostname);
    let timing = shared.opts.timing;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(shared.local.clone());
    let mut leader: Option<Vec<JoinHandle<()>>> = None;
    let mut last_renew = 0.0;
    let (mut eligible, mut checked) = (true, f64::MIN);
    let shutdown = subsea_runtime::shutdown::signal();
    tokio::pin!(shutdown);
    loop {
        let now = now_secs();
        if now - checked >= NODE_CHECK.as_secs_f64() {
            checked = now;
            if let Ok(node) = nodes.get_opt(&shared.node.hostname).await {
                let was = eligible;
                eligible = local::eligible(node.as_ref().map(|n| n.labels()));
                if was != eligible {
                    tracing::info!(eligible, "node label {} changed", local::GATEWAY_LABEL);
                }
            }
        }
        if !eligible {
            if let Some(tasks) = leader.take() {
                tracing::warn!(
                    "this node is no longer labelled {}=true: stepping down",
                    local::GATEWAY_LABEL
                );
                step_down(&shared, tasks).await;
                release(&api, &me).await;
            }
            tokio::select! {
                _ = tokio::time::sleep(timing.retry) => continue,
                _ = &mut shutdown => return Ok(()),
            }
        }
        let current = api.get_opt(LOCK).await;
        let mut holding = false;
        let mut wait = timing.retry;
        match &current {
            Ok(cur) => match decide(&me, cur.as_ref().map(to_state).as_ref(), &timing, now) {
                Decision::Write(want) => match write_lease(&api, cur.as_ref(), &want).await {
                    Ok(true) => {
                        holding = true;
                        last_renew = now;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot write the gateway lease"),
                },
                Decision::Follow { holder } => {
                    if leader.is_some() {
                        tracing::warn!(%holder, "another gateway holds the lease");
                    }
                    // Wake right when the holder's lease runs out rather than up to a retry
                    // period later: that is the failover time.
                    if let Some(expiry) = cur
                        .as_ref()
                        .map(to_state)
                        .and_then(|l| subsea_health::lease::expires_at(&l, &timing))
                    {
                        wait = wait.min(Duration::from_secs_f64((expiry - now).max(0.0) + 0.005));
                    }
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot read the gateway lease"),
        }
        let keep =
            holding || (leader.is_some() && !must_step_down(last_renew, &timing, now) && current.is_err());
        match (keep, leader.is_some()) {
            (true, false) => {
                tracing::info!("became the active gateway");
                leader = Some(lead(shared.clone()).await);
            }
            (false, true) => {
                tracing::warn!("lost the gateway lease; withdrawing routes and stopping publishing");
                if let Some(tasks) = leader.take() {
                    step_down(&shared, tasks).await;
                }
            }
            _ => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => {
                if let Some(tasks) = leader.take() {
                    step_down(&shared, tasks).await;
                    release(&api, &me).await;
                }
                tracing::info!("gateway stopped");
                return Ok(());
            }
        }
    }
}

/// Gives the lease up on a clean stop, so a passive gateway takes over at its next retry
/// instead of after the lease expires.
async fn release(api: &Api<Lease>, me: &str) {
    if let Ok(Some(cur)) = api.get_opt(LOCK).await {
        if cur.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(me) {
            let mut l = cur.clone();
            if let Some(spec) = l.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = None;
            }
            let _ = api.replace(LOCK, &PostParams::default(), &l).await;
        }
    }
}

async fn step_down(shared: &Shared, tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        t.abort();
    }
    shared.active.store(false, Ordering::SeqCst);
    shared.status_now.notify_one();
    if let Err(e) = withdraw_routes(&shared.netlink).await {
        tracing::warn!(error = %e, "cannot withdraw routes");
    }
}

async fn withdraw_routes(nl: &Netlink) -> Result<()> {
    nl.delete_rule(TABLE, RULE_PRIORITY).await?;
    for dst in nl.routes(TABLE).await? {
        nl.delete_route(dst, TABLE).await?;
    }
    Ok(())
}

fn datapath(shared: &Shared) -> Result<Arc<Datapath>> {
    if let Some(d) = shared.datapath.get() {
        return Ok(d.clone());
    }
    // A fresh key per process, as Submariner's driver does; the PSK is shared cluster-wide.
    let cfg = subsea_datapath::Config {
        name: "submariner".into(),
        mtu: shared.opts.mtu,
        port: shared.settings.port,
        private_key: subsea_wg::keys::generate_private(),
        psk: Some(subsea_wg::keys::psk_from_text(&shared.settings.psk_text)),
    };
    let d = Arc::new(Datapath::start(&cfg).map_err(Error::Datapath)?);
    let get = {
        let d = d.clone();
        Arc::new(move || d.uapi_get())
    };
    if let Err(e) = subsea_datapath::uapi::serve(&shared.opts.uapi_dir, "submariner", get) {
        tracing::warn!(error = %e, dir = %shared.opts.uapi_dir.display(), "no UAPI socket: `wg show` will not see the device");
    }
    let _ = shared.datapath.set(d.clone());
    Ok(d)
}

fn local_endpoint(shared: &Shared, d: &Datapath, global_ip: Option<IpAddr>) -> EndpointSpec {
    local::endpoint(
        &shared.settings,
        &shared.node,
        &subsea_wg::keys::to_base64(&d.public_key()),
        d.port(),
        global_ip,
    )
}

/// With Globalnet, remote clusters can ping us only at our global IP, which the Globalnet
/// daemon allocates once we are active and writes on our Node: republish when it appears or
/// changes.
async fn publish_global_ip(shared: Arc<Shared>, d: Arc<Datapath>) {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(shared.local.clone());
    let mut published: Option<IpAddr> = None;
    loop {
        if let Ok(Some(node)) = nodes.get_opt(&shared.node.hostname).await {
            let ip = node
                .annotations()
                .get(subsea_api::globalnet::NODE_GLOBAL_IP_ANNOTATION)
                .and_then(|s| s.parse::<IpAddr>().ok());
            if ip.is_some() && ip != published {
                tracing::info!(global_ip = ?ip, "publishing the node's global IP as the health-check address");
                publish(shared.clone(), local_endpoint(&shared, &d, ip)).await;
                published = ip;
                *guard(&shared.global_ip) = ip;
            }
        }
        tokio::time::sleep(NODE_CHECK).await;
    }
}

async fn lead(shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
    let d = match datapath(&shared) {
        Ok(d) => d,
        Err(e) => {
            *guard(&shared.failure) = format!("{e:#}");
            tracing::error!(error = %e, "cannot start the data path");
            return Vec::new();
        }
    };
    shared.active.store(true, Ordering::SeqCst);
    shared.status_now.notify_one();
    let mut tasks = vec![tokio::spawn(publish(
        shared.clone(),
        local_endpoint(&shared, &d, None),
    ))];
    if shared.settings.global_cidr.is_some() {
        tasks.push(tokio::spawn(publish_global_ip(shared.clone(), d.clone())));
    }
    let s = &shared.settings;
    for ar in [
        ApiResource::erase::<Endpoint>(&()),
        ApiResource::erase::<Cluster>(&()),
    ] {
        for (direction, src_ns, dst_ns, src, dst) in [
            (
                Direction::LocalToBroker,
                &s.namespace,
                &s.broker_namespace,
                &shared.local,
                &shared.broker,
            ),
            (
                Direction::BrokerToLocal,
                &s.broker_namespace,
                &s.namespace,
                &shared.broker,
                &shared.local,
            ),
        ] {
            let syncer = Syncer {
                resource: ar.clone(),
                config: SyncConfig {
                    cluster_id: s.cluster_id.clone(),
                    direction,
                    source_namespace: Some(src_ns.clone()),
                    target_namespace: dst_ns.clone(),
                },
                source: src.clone(),
                target: dst.clone(),
            };
            tasks.push(tokio::spawn(syncer.run()));
        }
    }
    tasks.push(tokio::spawn(tunnels(shared.clone(), d)));
    tasks
}

/// Creates or updates our Endpoint and Cluster, then deletes our cluster's other Endpoints.
async fn publish(shared: Arc<Shared>, spec: EndpointSpec) {
    let s = &shared.settings;
    let name = local::endpoint_name(&spec);
    let labels = serde_json::json!({ CLUSTER_ID_LABEL: s.cluster_id });
    let endpoint = serde_json::json!({"apiVersion": "submariner.io/v1", "kind": "Endpoint",
        "metadata": {"name": name, "labels": labels}, "spec": spec});
    let cluster = serde_json::json!({"apiVersion": "submariner.io/v1", "kind": "Cluster",
        "metadata": {"name": local::valid_name(&s.cluster_id), "labels": labels}, "spec": local::cluster(s)});
    let eps: Api<Endpoint> = Api::namespaced(shared.local.clone(), &s.namespace);
    let clusters: Api<Cluster> = Api::namespaced(shared.local.clone(), &s.namespace);
    let pp = PatchParams::apply(MANAGER).force();
    loop {
        let r = async {
            eps.patch(&name, &pp, &Patch::Apply(&endpoint)).await?;
            clusters
                .patch(&local::valid_name(&s.cluster_id), &pp, &Patch::Apply(&cluster))
                .await?;
            let all: Vec<(String, EndpointSpec)> = eps
                .list(&ListParams::default())
                .await?
                .into_iter()
                .map(|e| (e.name_any(), e.spec))
                .collect();
            for stale in local::stale_local_endpoints(&s.cluster_id, &name, &all) {
                tracing::info!(endpoint = stale, "deleting our cluster's previous Endpoint");
                match eps.delete(stale, &DeleteParams::default()).await {
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    r => {
                        r?;
                    }
                }
            }
            Ok::<_, kube::Error>(())
        }
        .await;
        match r {
            Ok(()) => {
                tracing::info!(endpoint = %name, "published the local Endpoint and Cluster");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish the local Endpoint; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The tunnel controller: every change to the Endpoints in our namespace re-plans peers and
/// routes.
async fn tunnels(shared: Arc<Shared>, d: Arc<Datapath>) {
    let api: Api<Endpoint> = Api::namespaced(shared.local.clone(), &shared.settings.namespace);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let store = subsea_runtime::reflect::reflect_with(api, (), tx);
    if store.wait_until_ready().await.is_err() {
        return;
    }
    let local = Local {
        cluster_id: shared.settings.cluster_id.clone(),
        subnets: shared.settings.subnets(),
    };
    // Kept across passes: the running pingers, and what was last said about skipped peers.
    let state: Mutex<(
        BTreeMap<String, (std::net::Ipv4Addr, Owned)>,
        Vec<subsea_plan::Skipped>,
    )> = Mutex::new((BTreeMap::new(), Vec::new()));
    // No settling: a failover re-plans at once.
    Loop::new("tunnels")
        .settle(Duration::ZERO)
        .run(&mut rx, std::future::pending(), |_| async {
            let endpoints = store.state();
            let remotes: Vec<Remote> = endpoints.iter().map(|e| remote(e)).collect();
            let plan = subsea_plan::plan(&local, &remotes);
            d.set_peers(&plan.wg_peers());
            let routed = program_routes(&shared, &plan).await;
            match &routed {
                Err(e) => *guard(&shared.failure) = format!("{e:#}"),
                Ok(()) => guard(&shared.failure).clear(),
            }
            {
                let mut st = guard(&state);
                let (pingers, skipped) = &mut *st;
                // Said once per change, not on every pass.
                if plan.skipped != *skipped {
                    for s in &plan.skipped {
                        tracing::warn!(cluster = %s.cluster_id, reason = %s.reason, "not connecting");
                    }
                    *skipped = plan.skipped.clone();
                }
                if shared.settings.health_check {
                    reconcile_pingers(&shared, &plan, &endpoints, pingers);
                }
            }
            *guard(&shared.remotes) = endpoints
                .iter()
                .map(|e| (e.spec.cluster_id.clone(), e.spec.clone()))
                .collect();
            *guard(&shared.plan) = plan;
            routed.map_err(|e| format!("cannot program routes: {e:#}"))
        })
        .await;
}

/// An Endpoint as the planners see it.
pub(crate) fn remote(e: &Endpoint) -> Remote {
    Remote {
        spec: e.spec.clone(),
        created: e
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        label: e
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("submariner-io/clusterID"))
            .cloned(),
    }
}

/// One pinger per connected remote endpoint with a health-check address; restarted when the
/// address changes, stopped when the endpoint goes.
fn reconcile_pingers(
    shared: &Arc<Shared>,
    plan: &Plan,
    endpoints: &[Arc<Endpoint>],
    pingers: &mut BTreeMap<String, (std::net::Ipv4Addr, Owned)>,
) {
    let wanted: BTreeMap<String, std::net::Ipv4Addr> = plan
        .peers
        .iter()
        .filter_map(|p| {
            let e = endpoints.iter().find(|e| e.spec.cable_name == p.cable_name)?;
            let ip = e.spec.health_check_ip.parse().ok()?;
            Some((p.cable_name.clone(), ip))
        })
        .collect();
    pingers.retain(|cable, (ip, _)| wanted.get(cable) == Some(ip));
    guard(&shared.health).retain(|cable, _| wanted.contains_key(cable));
    let src = shared.node.cni_ip.and_then(|ip| match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    });
    for (cable, ip) in wanted {
        if pingers.contains_key(&cable) {
            continue;
        }
        let task = tokio::spawn(crate::health::ping(
            shared.health.clone(),
            cable.clone(),
            ip,
            src,
            Duration::from_secs(shared.settings.health_interval.max(1)),
            shared.settings.health_max_loss,
        ));
        pingers.insert(cable, (ip, Owned(task)));
    }
}

async fn program_routes(shared: &Shared, plan: &Plan) -> Result<()> {
    let nl = &shared.netlink;
    let dev = nl
        .link_index("submariner")
        .await?
        .ok_or_else(|| Error::Missing("the TUN device submariner is gone".into()))?;
    nl.ensure_rule(TABLE, RULE_PRIORITY).await?;
    let current = nl.routes(TABLE).await?;
    let desired = plan.routes();
    let (add, remove) = subsea_plan::route_changes(&current, &desired);
    for dst in add {
        let src = [shared.node.cni_ip, shared.node.cni_ip6]
            .into_iter()
            .flatten()
            .find(|ip| ip.is_ipv4() == dst.addr.is_ipv4());
        nl.replace_route(&Route {
            dst,
            table: TABLE,
            dev: Some(dev),
            via: None,
            src,
            mtu: None,
        })
        .await?;
    }
    for dst in remove {
        nl.delete_route(dst, TABLE).await?;
    }
    Ok(())
}

/// Every gateway, active or passive, refreshes its own Gateway object and removes stale ones.
async fn status_loop(shared: Arc<Shared>) {
    let api: Api<Gateway> = Api::namespaced(shared.local.clone(), &shared.settings.namespace);
    let name = local::valid_name(&shared.node.hostname);
    let pp = PatchParams::apply(MANAGER).force();
    loop {
        let active = shared.active.load(Ordering::SeqCst);
        let d = shared.datapath.get().cloned();
        let local_ep = d
            .as_ref()
            .map(|d| local_endpoint(&shared, d, *guard(&shared.global_ip)))
            .unwrap_or_else(|| {
                local::endpoint(&shared.settings, &shared.node, "", shared.settings.port, None)
            });
        let stats = d.as_ref().map(|d| d.stats()).unwrap_or_default();
        let st = {
            let plan = guard(&shared.plan);
            let remotes = guard(&shared.remotes);
            let health = guard(&shared.health);
            status::gateway_status(
                active,
                &local_ep,
                &plan,
                &|c| remotes.get(c).cloned(),
                &stats,
                &|cable| health.get(cable).map(|(ip, p)| crate::health::view(*ip, p)),
                &guard(&shared.failure),
            )
        };
        *guard(&shared.metrics) = crate::metrics::render(
            &st,
            &|key| {
                let key = subsea_wg::keys::from_base64(key)?;
                stats.iter().find(|s| s.public_key == key).cloned()
            },
            SystemTime::now(),
        );
        let now = now_secs() as u64;
        let obj = serde_json::json!({"apiVersion": "submariner.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "annotations": {"update-timestamp": now.to_string()}},
            "status": st});
        if let Err(e) = api.patch(&name, &pp, &Patch::Apply(&obj)).await {
            tracing::warn!(error = %e, "cannot write the Gateway status");
        }
        if let Ok(list) = api.list(&ListParams::default()).await {
            for g in list {
                let stamp = g
                    .annotations()
                    .get("update-timestamp")
                    .and_then(|t| t.parse().ok());
                if g.name_any() != name && status::is_stale(stamp, now, STATUS_PERIOD) {
                    tracing::info!(gateway = %g.name_any(), "removing a stale Gateway");
                    let _ = api.delete(&g.name_any(), &DeleteParams::default()).await;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(STATUS_PERIOD) => {}
            _ = shared.status_now.notified() => {}
        }
    }
}
