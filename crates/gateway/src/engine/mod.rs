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
use subsea_health::lease::{Decision, LeaseState, Timing, decide, must_step_down, renew_budget};
use subsea_netlink::{Netlink, RULE_PRIORITY, Route, TABLE};
use subsea_plan::{Local, Plan, Remote};
use subsea_runtime::controller::Loop;
use subsea_syncer::driver::Syncer;
use subsea_syncer::plan::{CLUSTER_ID_LABEL, Config as SyncConfig, Direction};
use tokio::task::JoinHandle;

use crate::local::{self, Node};
use crate::settings::{self, Settings};
use crate::status;

mod election;
mod heartbeat;
mod publish;
mod tunnels;
use election::NODE_CHECK;
use election::elect;
use publish::{lead, local_endpoint};
pub(crate) use tunnels::remote;

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
    let broker = subsea_runtime::client::broker_replicas(
        &settings.broker_urls,
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
            let first = s.broker_urls.first().map(String::as_str).unwrap_or_default();
            let host = first.split("://").nth(1).unwrap_or(first).trim_end_matches('/');
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

/// The Gateway status as of now, and the data path's peer statistics it was made from.
fn current_status(shared: &Shared) -> (subsea_api::submariner::GatewayStatus, Vec<subsea_wg::PeerStats>) {
    let active = shared.active.load(Ordering::SeqCst);
    let d = shared.datapath.get().cloned();
    let local_ep = d
        .as_ref()
        .map(|d| local_endpoint(shared, d, *guard(&shared.global_ip)))
        .unwrap_or_else(|| local::endpoint(&shared.settings, &shared.node, "", shared.settings.port, None));
    let stats = d.as_ref().map(|d| d.stats()).unwrap_or_default();
    let plan = guard(&shared.plan);
    let remotes = guard(&shared.remotes);
    let health = guard(&shared.health);
    let st = status::gateway_status(
        active,
        &local_ep,
        &plan,
        &|c| remotes.get(c).cloned(),
        &stats,
        &|cable| health.get(cable).map(|(ip, p)| crate::health::view(*ip, p)),
        &guard(&shared.failure),
    );
    (st, stats)
}

/// Every gateway, active or passive, refreshes its own Gateway object and removes stale ones.
async fn status_loop(shared: Arc<Shared>) {
    let api: Api<Gateway> = Api::namespaced(shared.local.clone(), &shared.settings.namespace);
    let name = local::valid_name(&shared.node.hostname);
    let pp = PatchParams::apply(MANAGER).force();
    loop {
        let (st, stats) = current_status(&shared);
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
