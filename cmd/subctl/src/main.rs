//! `subctl`: deploy and operate subsea with Submariner's verbs and flags. This file parses the
//! arguments; each verb lives in its own module, talking to clusters through kube-rs, with the
//! decisions in the pure crates (`subsea-broker`, `subsea-cidr`, `subsea-plan`). subctl is an
//! application, so its errors are `anyhow` chains that end in a message for the user; the
//! libraries it calls have typed errors.

mod benchmark;
mod cluster;
mod deploy_broker;
mod diagnose;
mod export;
mod gather;
mod join;
mod junit;
mod pods;
mod progress;
mod recover;
mod show;
mod table;
mod uninstall;
mod verify;
mod workloads;

use std::path::PathBuf;

use crate::progress::Progress;
use crate::show::What;
use crate::table::Output;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "subctl",
    version,
    about = "Deploy and operate subsea, multi-cluster networking compatible with Submariner"
)]
struct Cli {
    /// Seconds to wait for an API server to answer.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 5)]
    connect_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct KubeArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// A Service (by name, in --namespace).
    ///
    /// Example: subctl export service payment-service -n default
    /// (and to stop: subctl unexport service payment-service -n default)
    Service {
        /// The Service's name.
        name: String,
        /// Its namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Export only: give the service a routed ClusterSetIP (=false: none, even where the
        /// cluster set gives one by default). Sets the ServiceExport annotation
        /// lighthouse.submariner.io/use-clusterset-ip.
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        use_clusterset_ip: Option<bool>,
        #[command(flatten)]
        kube: KubeArgs,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Make a Kubernetes API the broker and write broker-info.subm.
    ///
    /// The API is a cluster's, or `subsea apiserver` (a broker without a hub cluster). Creates the broker namespace, the CRDs, the admin and per-cluster roles, the admin service
    /// account and its token, the Broker object and a pre-shared key, then writes
    /// broker-info.subm (mode 0600; an existing file is backed up first). Safe to re-run: the
    /// pre-shared key of an existing file for the same broker is kept.
    ///
    /// Example: subctl deploy-broker --kubeconfig broker.kubeconfig
    DeployBroker(DeployBrokerArgs),
    /// Join a cluster to the broker described by a broker-info.subm file.
    ///
    /// Checks the cluster ID and CIDRs against the clusters already joined (duplicates and
    /// overlaps are refused, with the fix), creates the cluster's own broker account, and writes
    /// the broker credentials, pre-shared key, Submariner configuration and DNS forwarding into
    /// the cluster. Safe to re-run on a joined cluster.
    ///
    /// Example: subctl join broker-info.subm --kubeconfig c1.kubeconfig --clusterid cluster1
    Join(JoinArgs),
    /// Export a Service to the cluster set (creates its ServiceExport).
    ///
    /// Example: subctl export service payment-service -n default
    #[command(subcommand)]
    Export(ExportCommand),
    /// Stop exporting a Service (deletes its ServiceExport).
    ///
    /// Example: subctl unexport service payment-service -n default
    #[command(subcommand)]
    Unexport(ExportCommand),
    /// Run real checks between two joined clusters through pods.
    ///
    /// Checks pod to pod (gateway and non-gateway nodes, IPv4 and IPv6), pod to a remote Service, service discovery by
    /// clusterset.local name (export, answer, unexport), and on request gateway failover (the
    /// destination's active gateway node is unlabelled, another must take over and traffic
    /// resume; the label is put back). Each check is reported ✓/✗ and as a JUnit test case;
    /// exits 1 when any fails. Creates and removes pods, a Service and a ServiceExport in
    /// --namespace of both clusters.
    ///
    /// Example: subctl verify --context cluster1 --tocontext cluster2 --only connectivity --junit-report verify.xml
    Verify(VerifyArgs),
    /// Collect what is needed to debug the cluster set into a directory.
    ///
    /// From every context of the kubeconfig (or only --context): subsea's resources, the `show` tables, component
    /// logs where the API server serves them, and each node's rules, routes and WireGuard state
    /// (from a short-lived host-network pod per node). Secrets, tokens, PSKs and keys are
    /// redacted unless --include-sensitive-data.
    ///
    /// Example: subctl gather --kubeconfig all-clusters.kubeconfig --dir gather-$(date +%s)
    Gather(GatherArgs),
    /// Measure the data path between two joined clusters with pods.
    ///
    /// As Submariner's benchmark: once between gateway nodes, once between non-gateway nodes, then a summary table.
    /// `throughput` runs a single iperf3 TCP stream; `latency` runs 1-byte request-response
    /// transactions (netperf TCP_RR's measure) and reports p50/p90/p99.
    ///
    /// Example: subctl benchmark throughput --context cluster1 --tocontext cluster2 --seconds 10
    #[command(subcommand)]
    Benchmark(BenchmarkCommand),
    /// Check clusters and say what is wrong and how to fix it.
    ///
    /// Checks every context of the kubeconfig, or only --context: ✓ fine, ⚠ worth a look, ✗ broken. Exits 1 when anything is broken.
    ///
    /// Example: subctl diagnose all --kubeconfig all-clusters.kubeconfig
    Diagnose {
        /// What to check.
        #[arg(value_enum, default_value = "all")]
        check: crate::diagnose::Check,
        #[command(flatten)]
        kube: KubeArgs,
        /// With --context: the other cluster for the firewall probes.
        #[arg(long, value_name = "NAME")]
        remotecontext: Option<String>,
        /// Image holding `subsea`, run by the firewall probe pods.
        #[arg(long, default_value_t = crate::workloads::image(crate::workloads::DEFAULT_REPOSITORY, env!("CARGO_PKG_VERSION")))]
        image: String,
        /// Seconds a probe pod may take.
        #[arg(long, default_value_t = 60)]
        operation_timeout: u64,
    },
    /// Show subsea's state in every context of the kubeconfig (or only --context).
    ///
    /// Example: subctl show endpoints --kubeconfig all-clusters.kubeconfig
    #[command(subcommand)]
    Show(ShowCommand),
    /// Remove subsea from a cluster (and the cluster's records from the broker).
    ///
    /// Stops the components first (deletes their DaemonSets, Deployments and pods and waits up
    /// to 2 minutes for the pods to go: a running gateway or agent would publish its records
    /// again), then deletes the cluster's records on the broker (Cluster, Endpoint, its
    /// ServiceImports and EndpointSlices, with its own broker credentials, which it revokes
    /// last), the CoreDNS forwarding, the gateway node label, the submariner-operator namespace
    /// and the subsea CRDs. Asks for -y.
    ///
    /// Example: subctl uninstall --context cluster2 -y
    Uninstall {
        #[command(flatten)]
        kube: KubeArgs,
        /// Confirm without asking.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Rebuild broker-info.subm from a joined cluster.
    ///
    /// The PSK and broker address come from the cluster; the admin token needs the broker's own
    /// kubeconfig.
    ///
    /// Example: subctl recover-broker-info --context cluster1 --broker-kubeconfig broker.kubeconfig
    RecoverBrokerInfo {
        #[command(flatten)]
        kube: KubeArgs,
        /// Kubeconfig of the broker, to re-read the admin token (default: --kubeconfig).
        #[arg(long, value_name = "FILE")]
        broker_kubeconfig: Option<PathBuf>,
        /// Context of the broker in that kubeconfig.
        #[arg(long, value_name = "NAME")]
        broker_context: Option<String>,
        /// Broker URL to write (default: the one the cluster uses).
        #[arg(long, value_name = "URL")]
        broker_url: Option<String>,
        /// Where to write the file.
        #[arg(long, default_value = "broker-info.subm", value_name = "FILE")]
        output: PathBuf,
    },
    /// Print the version of subctl.
    ///
    /// Example: subctl version -o json
    Version {
        /// Output format: table (one line), json or yaml.
        #[arg(short = 'o', long, default_value = "table")]
        output: Output,
    },
    /// Print a shell completion script.
    ///
    /// Load it in the current shell (`source <(subctl completion bash)`), or install it where
    /// the shell looks for completions.
    ///
    /// Example: subctl completion bash > /etc/bash_completion.d/subctl
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct ShowArgs {
    #[command(flatten)]
    kube: KubeArgs,
    /// Output format: table, json or yaml.
    #[arg(short = 'o', long, default_value = "table")]
    output: Output,
}

#[derive(Subcommand)]
enum ShowCommand {
    /// The broker's settings.
    ///
    /// Columns: NAMESPACE, NAME, COMPONENTS, GLOBALNET, GLOBALNET CIDR, DEFAULT GLOBALNET SIZE,
    /// DEFAULT DOMAINS.
    ///
    /// Example: subctl show brokers --context broker
    Brokers(ShowArgs),
    /// Service and pod CIDRs of each joined cluster.
    ///
    /// Example: subctl show networks --kubeconfig all-clusters.kubeconfig
    Networks(ShowArgs),
    /// Local and remote endpoints: CLUSTER, ENDPOINT IP, PUBLIC IP, CABLE DRIVER, TYPE.
    ///
    /// Example: subctl show endpoints --context cluster1
    Endpoints(ShowArgs),
    /// Configured and running component versions.
    ///
    /// Example: subctl show versions --context cluster1 -o json
    Versions(ShowArgs),
    /// Gateways: NODE, HA STATUS, SUMMARY.
    ///
    /// Example: subctl show gateways --context cluster1
    Gateways(ShowArgs),
    /// Connections of the active gateway.
    ///
    /// Columns: GATEWAY, CLUSTER, REMOTE IP, NAT, CABLE DRIVER, SUBNETS, STATUS, RTT avg.
    ///
    /// Example: subctl show connections --kubeconfig all-clusters.kubeconfig
    Connections(ShowArgs),
    /// Exported and imported services: NAMESPACE, NAME, ROLE, TYPE, CLUSTERS, STATUS.
    ///
    /// Example: subctl show service-discovery --context cluster2
    ServiceDiscovery(ShowArgs),
    /// Everything above, section by section.
    ///
    /// With a `Cluster "<name>"` header per context.
    ///
    /// Example: subctl show all --kubeconfig all-clusters.kubeconfig
    All(ShowArgs),
}

#[derive(Args)]
struct DeployBrokerArgs {
    #[command(flatten)]
    kube: KubeArgs,
    /// Namespace for the broker's objects.
    #[arg(short = 'n', long, default_value = "submariner-k8s-broker")]
    namespace: String,
    /// Components to enable, comma-separated: service-discovery, connectivity.
    #[arg(long, value_delimiter = ',', default_value = "service-discovery,connectivity")]
    components: Vec<String>,
    /// Extra DNS zones to serve besides clusterset.local, comma-separated.
    #[arg(long, value_delimiter = ',')]
    custom_domains: Vec<String>,
    /// Broker URL to write into broker-info.subm (default: the kubeconfig's server URL).
    #[arg(long, value_name = "URL")]
    broker_url: Option<String>,
    /// Another replica of the broker API server (repeatable; a subsea apiserver on etcd, see
    /// the README's "A highly available broker"): joined clusters' agents use it when
    /// --broker-url cannot be reached. Written as brokerReplicaURLs, which Submariner ignores.
    #[arg(long = "broker-replica-url", value_name = "URL")]
    broker_replica_urls: Vec<String>,
    /// Reuse the pre-shared key of this existing broker-info.subm.
    #[arg(long, value_name = "FILE")]
    ipsec_psk_from: Option<PathBuf>,
    /// Enable Globalnet: clusters may then have overlapping pod and service CIDRs; each gets a
    /// GlobalCIDR from --globalnet-cidr-range and is reached through global IPs.
    #[arg(long)]
    globalnet: bool,
    /// Supernet of the clusters' GlobalCIDRs (IPv4).
    #[arg(long, default_value = "242.0.0.0/8", value_name = "CIDR")]
    globalnet_cidr_range: String,
    /// Default number of global IPs per cluster, rounded up to a power of two.
    #[arg(long, default_value_t = 65536, value_name = "N")]
    globalnet_cluster_size: u64,
    /// Give every export a routed ClusterSetIP (a VIP for the whole cluster set) unless its
    /// ServiceExport opts out with the annotation lighthouse.submariner.io/use-clusterset-ip=false
    /// (clusters joined afterwards take this default; `subctl join --enable-clusterset-ip` sets it
    /// per cluster). Without it, exports opt in with that annotation set to true.
    #[arg(long)]
    enable_clusterset_ip: bool,
    /// Ranges ClusterSetIPs are claimed from, one per family, comma-separated (dual-stack
    /// services get a VIP of each family; the IPv6 default is fd00:243::/104), e.g.
    /// 243.0.0.0/8,fd00:243::/104.
    #[arg(long, default_value = "243.0.0.0/8", value_name = "CIDR[,CIDR6]")]
    clusterset_ip_cidr_range: String,
    /// Where to write the broker-info file.
    #[arg(long, default_value = "broker-info.subm", value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
struct PairArgs {
    /// Kubeconfig of the first cluster (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context of the first cluster (the client side).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Kubeconfig of the second cluster (default: --kubeconfig).
    #[arg(long, value_name = "FILE")]
    toconfig: Option<PathBuf>,
    /// Context of the second cluster (the server side).
    #[arg(long, value_name = "NAME")]
    tocontext: Option<String>,
    /// Image holding `subsea` (for `subsea nettest`) and iperf3, run by the check pods.
    #[arg(long, default_value_t = crate::workloads::image(crate::workloads::DEFAULT_REPOSITORY, env!("CARGO_PKG_VERSION")))]
    image: String,
    /// Seconds any single pod may take to start or finish.
    #[arg(long, default_value_t = 120)]
    operation_timeout: u64,
}

impl PairArgs {
    async fn connect(&self) -> Result<(cluster::Target, cluster::Target)> {
        let Some(to) = self.tocontext.as_deref() else {
            anyhow::bail!("--tocontext is required: the second cluster's context");
        };
        let from = cluster::open(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        let to = cluster::open(self.toconfig.as_deref().or(self.kubeconfig.as_deref()), Some(to)).await?;
        Ok((from, to))
    }
}

#[derive(Subcommand)]
enum BenchmarkCommand {
    /// TCP throughput (iperf3, one stream) from --context to --tocontext.
    ///
    /// Example: subctl benchmark throughput --context cluster1 --tocontext cluster2
    Throughput(BenchmarkArgs),
    /// Request-response latency from --context to --tocontext.
    ///
    /// Example: subctl benchmark latency --context cluster1 --tocontext cluster2 -o json
    Latency(BenchmarkArgs),
}

#[derive(Args)]
struct BenchmarkArgs {
    #[command(flatten)]
    pair: PairArgs,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Namespace for the benchmark pods (created in both clusters if missing).
    #[arg(long, default_value = "subctl-benchmark")]
    namespace: String,
    /// Summary format: table, json or yaml.
    #[arg(short, long, default_value = "table")]
    output: Output,
}

#[derive(Args)]
struct GatherArgs {
    #[command(flatten)]
    kube: KubeArgs,
    /// Directory to write into (created; one subdirectory per cluster).
    #[arg(long, default_value = "submariner-gather", value_name = "DIR")]
    dir: PathBuf,
    /// Keep secrets, tokens, PSKs and keys instead of redacting them.
    #[arg(long)]
    include_sensitive_data: bool,
    /// Image holding `subsea`, run by the per-node pods.
    #[arg(long, default_value_t = crate::workloads::image(crate::workloads::DEFAULT_REPOSITORY, env!("CARGO_PKG_VERSION")))]
    image: String,
    /// Seconds a node pod may take.
    #[arg(long, default_value_t = 60)]
    operation_timeout: u64,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    pair: PairArgs,
    /// Checks to run, comma-separated: connectivity, service-discovery, gateway-failover
    /// (default: connectivity and service-discovery; gateway-failover disrupts traffic
    /// briefly, so it runs only when named).
    #[arg(long, default_value = "")]
    only: String,
    /// Write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit_report: Option<PathBuf>,
    /// Namespace for the check pods (created in both clusters if missing).
    #[arg(long, default_value = "subctl-verify")]
    namespace: String,
}

#[derive(Args)]
struct JoinArgs {
    /// The broker-info.subm written by `subctl deploy-broker`.
    #[arg(value_name = "BROKER-INFO")]
    info: PathBuf,
    #[command(flatten)]
    kube: KubeArgs,
    /// Cluster ID: a DNS-1123 label unique in the cluster set (default: the kubeconfig cluster name, sanitised).
    #[arg(long)]
    clusterid: Option<String>,
    /// Service CIDR(s) of this cluster, comma-separated (default: discovered).
    #[arg(long, value_delimiter = ',')]
    servicecidr: Vec<String>,
    /// Pod CIDR(s) of this cluster, comma-separated (default: discovered).
    #[arg(long, value_delimiter = ',')]
    clustercidr: Vec<String>,
    /// Cable driver; subsea's data plane is userspace WireGuard.
    #[arg(long, default_value = "wireguard")]
    cable_driver: String,
    /// Enable NAT traversal.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    natt: bool,
    /// UDP port of the tunnels.
    #[arg(long, default_value_t = 4500)]
    nattport: u16,
    /// Health-check connections between gateways.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    health_check: bool,
    /// Seconds between health-check pings.
    #[arg(long, default_value_t = 1)]
    health_check_interval: u64,
    /// Lost pings before a connection is reported as an error.
    #[arg(long, default_value_t = 5)]
    health_check_max_packet_loss_count: u64,
    /// Use Globalnet when the broker has it on (a broker with Globalnet takes only Globalnet
    /// clusters: --globalnet=false is refused there).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    globalnet: bool,
    /// This cluster's GlobalCIDR, a free block inside the broker's range (default: the first
    /// free block is allocated).
    #[arg(long, value_name = "CIDR")]
    globalnet_cidr: Option<String>,
    /// Number of global IPs to allocate (default 0: the broker's default size).
    #[arg(long, default_value_t = 0, value_name = "N")]
    globalnet_cluster_size: u64,
    /// Give this cluster's exports a routed ClusterSetIP by default (also on when the broker was
    /// deployed with --enable-clusterset-ip); an export opts out with the annotation
    /// lighthouse.submariner.io/use-clusterset-ip=false.
    #[arg(long)]
    enable_clusterset_ip: bool,
    /// Ranges ClusterSetIPs are claimed from, one per family, comma-separated (default: the
    /// broker's, else 243.0.0.0/8 and fd00:243::/104); every cluster of the set must use the
    /// same.
    #[arg(long, value_name = "CIDR[,CIDR6]")]
    clusterset_ip_cidr: Option<String>,
    /// Speak the MCS API as specified rather than as Lighthouse does: ServiceExport conditions
    /// with the MCS API's reasons (Valid, Exported, NoConflicts, PortConflict, ...) and DNS
    /// serving only the DNS spec's names (no <clusterid>.<svc>.<ns>.svc.clusterset.local).
    #[arg(long)]
    mcs_spec: bool,
    /// Verify the broker's certificate against the CA in the broker-info file.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    check_broker_certificate: bool,
    /// Label a node as the gateway when none is labelled.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    label_gateway: bool,
    /// Extra DNS zones, comma-separated (default: the broker's).
    #[arg(long, value_delimiter = ',')]
    custom_domains: Option<Vec<String>>,
    /// Write DNS forwarding into this ConfigMap ([namespace/]name, key lighthouse.server) instead of kube-system/coredns.
    #[arg(long, value_name = "[NS/]NAME")]
    coredns_custom_configmap: Option<String>,
    /// Broker URL overriding the one in the broker-info file.
    #[arg(long, value_name = "URL")]
    broker_url: Option<String>,
    /// Image repository of the components (the image is REPOSITORY/subsea:VERSION).
    #[arg(long, default_value = crate::workloads::DEFAULT_REPOSITORY)]
    repository: String,
    /// Image version of the components.
    #[arg(long = "version", default_value = env!("CARGO_PKG_VERSION"))]
    image_version: String,
}

async fn run(cmd: Command) -> Result<()> {
    let mut stdout = std::io::stdout();
    let mut p = Progress::new(&mut stdout);
    match cmd {
        Command::Version { output } => {
            let version = format!("v{}", env!("CARGO_PKG_VERSION"));
            let doc = serde_json::json!({"name": "subctl", "version": version});
            match output {
                Output::Table => println!("subctl version: {version}"),
                Output::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
                Output::Yaml => print!("{}", serde_yaml::to_string(&doc)?),
            }
        }
        Command::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "subctl", &mut std::io::stdout());
        }
        Command::Show(ShowCommand::All(a)) => {
            let targets =
                cluster::connect_all(a.kube.kubeconfig.as_deref(), a.kube.context.as_deref()).await?;
            // -o json|yaml: one document, a list per section, so that it parses as a whole.
            let mut doc = serde_json::Map::new();
            for (title, key, what) in [
                ("Brokers", "brokers", What::Brokers),
                ("Networks", "networks", What::Networks),
                ("Endpoints", "endpoints", What::Endpoints),
                ("Connections", "connections", What::Connections),
                ("Gateways", "gateways", What::Gateways),
                ("Service discovery", "serviceDiscovery", What::ServiceDiscovery),
                ("Versions", "versions", What::Versions),
            ] {
                let text = show::run(&targets, what, a.output).await?;
                match a.output {
                    Output::Table => print!("Showing {title}\n\n{text}"),
                    Output::Json => {
                        doc.insert(key.into(), serde_json::from_str(&text)?);
                    }
                    Output::Yaml => {
                        doc.insert(key.into(), serde_yaml::from_str(&text)?);
                    }
                }
            }
            match a.output {
                Output::Table => {}
                Output::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
                Output::Yaml => print!("{}", serde_yaml::to_string(&doc)?),
            }
        }
        Command::Show(cmd) => {
            let (what, a) = match cmd {
                ShowCommand::Brokers(a) => (What::Brokers, a),
                ShowCommand::Networks(a) => (What::Networks, a),
                ShowCommand::Endpoints(a) => (What::Endpoints, a),
                ShowCommand::Versions(a) => (What::Versions, a),
                ShowCommand::Gateways(a) => (What::Gateways, a),
                ShowCommand::Connections(a) => (What::Connections, a),
                ShowCommand::ServiceDiscovery(a) => (What::ServiceDiscovery, a),
                ShowCommand::All(_) => unreachable!("handled above"),
            };
            let targets =
                cluster::connect_all(a.kube.kubeconfig.as_deref(), a.kube.context.as_deref()).await?;
            print!("{}", show::run(&targets, what, a.output).await?);
        }
        Command::Benchmark(cmd) => {
            use crate::benchmark::{self, Kind};
            let (kind, a) = match cmd {
                BenchmarkCommand::Throughput(a) => (Kind::Throughput, a),
                BenchmarkCommand::Latency(a) => (Kind::Latency, a),
            };
            if a.seconds == 0 || a.seconds > 600 {
                anyhow::bail!("--seconds must be between 1 and 600, got {}", a.seconds);
            }
            let (from, to) = a.pair.connect().await?;
            let opts = benchmark::Options {
                image: a.pair.image.clone(),
                namespace: a.namespace.clone(),
                seconds: a.seconds,
                timeout: std::time::Duration::from_secs(a.pair.operation_timeout),
                output: a.output,
            };
            let summary = benchmark::run(kind, &from, &to, &opts, &mut p).await?;
            println!();
            print!("{summary}");
        }
        Command::Gather(a) => {
            let targets =
                cluster::connect_all(a.kube.kubeconfig.as_deref(), a.kube.context.as_deref()).await?;
            let opts = crate::gather::Options {
                dir: a.dir.clone(),
                include_sensitive: a.include_sensitive_data,
                image: a.image.clone(),
                namespace: "subctl-gather".into(),
                timeout: std::time::Duration::from_secs(a.operation_timeout),
            };
            let dir = crate::gather::run(&targets, &opts, &mut p).await?;
            println!("\nGathered into {}", dir.display());
        }
        Command::Verify(a) => {
            let suites = crate::verify::parse_only(&a.only)?;
            let (from, to) = a.pair.connect().await?;
            let opts = crate::verify::Options {
                image: a.pair.image.clone(),
                namespace: a.namespace.clone(),
                suites,
                timeout: std::time::Duration::from_secs(a.pair.operation_timeout),
            };
            let cases = crate::verify::run(&from, &to, &opts, &mut p).await?;
            if let Some(path) = &a.junit_report {
                std::fs::write(path, crate::junit::render("subctl verify", &cases))
                    .map_err(|e| anyhow::anyhow!("cannot write the JUnit report {}: {e}", path.display()))?;
                p.info(format!("JUnit report written to {}", path.display()));
            }
            let failed = cases.iter().filter(|c| c.failure.is_some()).count();
            let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
            println!(
                "\n{} passed, {failed} failed, {skipped} skipped",
                cases.len() - failed - skipped
            );
            if failed > 0 {
                anyhow::bail!("{failed} check(s) failed (✗ above)");
            }
        }
        Command::Diagnose {
            check,
            kube,
            remotecontext,
            image,
            operation_timeout,
        } => {
            use crate::diagnose;
            let mut targets =
                cluster::connect_all(kube.kubeconfig.as_deref(), kube.context.as_deref()).await?;
            if let Some(remote) = remotecontext.as_deref() {
                targets.push(cluster::open(kube.kubeconfig.as_deref(), Some(remote)).await?);
            }
            let opts = diagnose::Options {
                image,
                timeout: std::time::Duration::from_secs(operation_timeout),
            };
            if !diagnose::run(&targets, check, &opts, &mut p).await? {
                anyhow::bail!("some checks failed (✗ above)");
            }
        }
        Command::Export(ExportCommand::Service {
            name,
            namespace,
            use_clusterset_ip,
            kube,
        }) => {
            let target = cluster::open(kube.kubeconfig.as_deref(), kube.context.as_deref()).await?;
            crate::export::export(&target.client, &namespace, &name, use_clusterset_ip, &mut p).await?;
        }
        Command::Unexport(ExportCommand::Service {
            name,
            namespace,
            use_clusterset_ip,
            kube,
        }) => {
            if use_clusterset_ip.is_some() {
                anyhow::bail!("--use-clusterset-ip is an option of `subctl export`, not of unexport");
            }
            let target = cluster::open(kube.kubeconfig.as_deref(), kube.context.as_deref()).await?;
            crate::export::unexport(&target.client, &namespace, &name, &mut p).await?;
        }
        Command::Uninstall { kube, yes } => {
            let target = cluster::open(kube.kubeconfig.as_deref(), kube.context.as_deref()).await?;
            uninstall::run(&target, yes, &mut p).await?;
        }
        Command::RecoverBrokerInfo {
            kube,
            broker_kubeconfig,
            broker_context,
            broker_url,
            output,
        } => {
            let target = cluster::open(kube.kubeconfig.as_deref(), kube.context.as_deref()).await?;
            let broker = match (&broker_kubeconfig, &broker_context) {
                (None, None) => None,
                _ => Some(
                    cluster::open(
                        broker_kubeconfig.as_deref().or(kube.kubeconfig.as_deref()),
                        broker_context.as_deref(),
                    )
                    .await?,
                ),
            };
            recover::run(&target, broker.as_ref(), broker_url, &output, &mut p).await?;
        }
        Command::DeployBroker(a) => {
            let target = cluster::open(a.kube.kubeconfig.as_deref(), a.kube.context.as_deref()).await?;
            let opts = deploy_broker::Options {
                namespace: a.namespace,
                components: a.components,
                custom_domains: a.custom_domains,
                broker_url: a.broker_url,
                broker_replica_urls: a.broker_replica_urls,
                psk_from: a.ipsec_psk_from,
                globalnet: a
                    .globalnet
                    .then_some((a.globalnet_cidr_range, a.globalnet_cluster_size)),
                clusterset_ip: a.enable_clusterset_ip.then_some(a.clusterset_ip_cidr_range),
                output: a.output,
            };
            deploy_broker::run(&target, &opts, &mut p).await?;
        }
        Command::Join(a) => {
            crate::workloads::checked_image(&a.repository, &a.image_version)?;
            let target = cluster::open(a.kube.kubeconfig.as_deref(), a.kube.context.as_deref()).await?;
            let opts = join::Options {
                info_path: a.info,
                cluster_id: a.clusterid,
                service_cidrs: a.servicecidr,
                cluster_cidrs: a.clustercidr,
                cable_driver: a.cable_driver,
                natt: a.natt,
                natt_port: a.nattport,
                health_check: a.health_check,
                health_check_interval: a.health_check_interval,
                health_check_max_loss: a.health_check_max_packet_loss_count,
                globalnet: a.globalnet,
                globalnet_cidr: a.globalnet_cidr,
                globalnet_cluster_size: a.globalnet_cluster_size,
                check_broker_certificate: a.check_broker_certificate,
                label_gateway: a.label_gateway,
                custom_domains: a.custom_domains,
                coredns_custom_configmap: a.coredns_custom_configmap,
                broker_url: a.broker_url,
                enable_clusterset_ip: a.enable_clusterset_ip,
                clusterset_ip_cidr: a.clusterset_ip_cidr,
                mcs_spec: a.mcs_spec,
                image: crate::workloads::checked_image(&a.repository, &a.image_version)?,
            };
            join::run(&target, &opts, &mut p).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if cli.connect_timeout == 0 {
        eprintln!(" ✗ --connect-timeout must be at least 1 second");
        std::process::exit(2);
    }
    cluster::set_connect_timeout(std::time::Duration::from_secs(cli.connect_timeout));
    if let Err(e) = run(cli.command).await {
        eprintln!(" ✗ {}", crate::progress::render_error(&e));
        std::process::exit(1);
    }
}
