//! `subsea lighthouse-agent`, `subsea lighthouse-dns` and `subsea clusterset-ip`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use subsea_lighthouse::resolve::ClusterNames;

#[derive(clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig of the local cluster (else $KUBECONFIG, else the pod's service account).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
}

#[derive(clap::Args)]
pub struct AgentArgs {
    #[command(flatten)]
    kube: KubeArgs,
    /// Write ServiceExport conditions with the MCS API's reasons (Valid, Exported, Pending,
    /// NoConflicts, TypeConflict, PortConflict, …, which the mcs-api conformance suite reads)
    /// instead of Lighthouse's (ServiceUnavailable, AwaitingExport, ConflictingType, …, which
    /// Submariner's tools read).
    #[arg(long)]
    mcs_condition_reasons: bool,
}

pub async fn agent(a: AgentArgs) -> Result<()> {
    subsea_lighthouse::agent::run(subsea_lighthouse::agent::Options {
        kubeconfig: a.kube.kubeconfig,
        context: a.kube.context,
        mcs_reasons: a.mcs_condition_reasons,
    })
    .await
    .map_err(Into::into)
}

#[derive(clap::Args)]
pub struct ClustersetIpArgs {
    #[command(flatten)]
    kube: KubeArgs,
    /// This node's name: services with internalTrafficPolicy Local go to its pods only
    /// (default: the host name).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,
    /// Send a ClusterSetIP connection to the local cluster's pods when it exports the service
    /// (the default); with false, the local pods share connections with the service IPs of the
    /// other healthy exporting clusters.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    local_first: bool,
}

pub async fn clusterset_ip(a: ClustersetIpArgs) -> Result<()> {
    subsea_clusterset_ip::run(subsea_clusterset_ip::Options {
        kubeconfig: a.kube.kubeconfig,
        context: a.kube.context,
        node: a.node_name.unwrap_or_else(crate::gateway::hostname),
        local_first: a.local_first,
    })
    .await
    .map_err(Into::into)
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ClusterNamesArg {
    Always,
    WithoutVip,
    Never,
}

impl From<ClusterNamesArg> for ClusterNames {
    fn from(a: ClusterNamesArg) -> Self {
        match a {
            ClusterNamesArg::Always => Self::Always,
            ClusterNamesArg::WithoutVip => Self::WithoutVip,
            ClusterNamesArg::Never => Self::Never,
        }
    }
}

#[derive(clap::Args)]
pub struct DnsArgs {
    /// Kubeconfig of the local cluster (else $KUBECONFIG, else the pod's service account).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// Address to answer on, UDP and TCP.
    #[arg(long, default_value = "0.0.0.0:53", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Zones served besides clusterset.local, comma-separated.
    #[arg(long, value_delimiter = ',')]
    custom_domains: Vec<String>,
    /// Zones to answer NXDOMAIN for every name, comma-separated (for a test cluster without
    /// its own DNS, e.g. cluster.local, so resolvers walk their search path).
    #[arg(long, value_delimiter = ',')]
    empty_zones: Vec<String>,
    /// TTL of every answer, seconds (0-3600).
    #[arg(long, default_value_t = 5)]
    ttl: u32,
    /// This cluster's ID (default: from the ServiceDiscovery object `subctl join` wrote).
    #[arg(long)]
    cluster_id: Option<String>,
    /// Answer with the nearest healthy cluster by the gateway's measured RTT instead of round
    /// robin (beyond Lighthouse; the local cluster still comes first when it exports).
    #[arg(long)]
    prefer_nearest: bool,
    /// Which services get cluster-specific `<cluster>.<svc>.<ns>.svc` names (and their SRV),
    /// which the MCS DNS spec forbids and Lighthouse serves: "always" as Lighthouse does
    /// (Submariner-compatible; `subctl verify` and Submariner users rely on them),
    /// "without-vip" (services with a ClusterSetIP follow the spec: their VIP is their one
    /// address; the others Lighthouse), "never" as the spec says. Headless
    /// `<host>.<cluster>.<svc>.<ns>.svc` names are served in every mode.
    #[arg(
        long,
        value_enum,
        default_value = "without-vip",
        conflicts_with = "strict_mcs_names"
    )]
    cluster_names: ClusterNamesArg,
    /// The same as --cluster-names never: only the MCS DNS specification's names.
    #[arg(long)]
    strict_mcs_names: bool,
    /// Where to serve Prometheus /metrics (queries by type and rcode, programming latency);
    /// "off" to disable.
    #[arg(long, default_value = "0.0.0.0:9153", value_name = "ADDR:PORT|off")]
    metrics_listen: String,
    /// Serve a fixed snapshot from a JSON file ({"imports": [...], "slices": [...],
    /// "gateways": [...]}) instead of watching a cluster: for benchmarks and debugging.
    #[arg(long, value_name = "FILE")]
    fixture: Option<PathBuf>,
    /// UDP receive loops, each on its own SO_REUSEPORT socket (default: one per core, at most
    /// 8; like Knot's udp-workers).
    #[arg(long, value_name = "N")]
    udp_workers: Option<usize>,
}

pub async fn dns(a: DnsArgs) -> Result<()> {
    if a.ttl > 3600 {
        bail!("--ttl must be at most 3600 seconds, got {}", a.ttl);
    }
    if let Some(n) = a.udp_workers
        && !(1..=subsea_lighthouse::dns::metrics::SHARDS - 1).contains(&n)
    {
        bail!(
            "--udp-workers must be between 1 and {}, got {n}",
            subsea_lighthouse::dns::metrics::SHARDS - 1
        );
    }
    subsea_lighthouse::dns::serve(subsea_lighthouse::dns::Options {
        kubeconfig: a.kubeconfig,
        context: a.context,
        listen: a.listen,
        zones: subsea_lighthouse::dns::Zones::new(&a.custom_domains, a.ttl)?.with_empty(&a.empty_zones)?,
        cluster_id: a.cluster_id,
        prefer_nearest: a.prefer_nearest,
        cluster_names: if a.strict_mcs_names {
            ClusterNames::Never
        } else {
            a.cluster_names.into()
        },
        fixture: a.fixture,
        udp_workers: a.udp_workers,
        metrics_listen: match a.metrics_listen.as_str() {
            "off" => None,
            addr => Some(
                addr.parse()
                    .map_err(|e| anyhow::anyhow!("--metrics-listen {addr:?}: {e}"))?,
            ),
        },
    })
    .await
    .map_err(Into::into)
}
