//! `subsea`: the daemon binary. One subcommand per component, so one image serves them all.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod dns_publisher;
mod gateway;
mod globalnet;
mod lighthouse;
mod nettest;
mod wireguard;

#[derive(Parser)]
#[command(
    name = "subsea",
    version,
    about = "subsea components: multi-cluster networking for Kubernetes, Submariner-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded Kubernetes-compatible API server.
    ///
    /// A broker without a hub cluster, or the API of a simulated cluster.
    ///
    /// On first start it creates DIR with a CA, a serving certificate, an admin token and
    /// DIR/admin.kubeconfig (mode 0600). Point kubectl at it with
    /// `KUBECONFIG=DIR/admin.kubeconfig kubectl get ns`.
    ///
    /// Example: subsea apiserver --data-dir /var/lib/subsea/broker --listen 0.0.0.0:6443 --tls-san broker.example.com
    Apiserver(ApiserverArgs),
    /// Run the gateway engine on a gateway node.
    ///
    /// Leader election on the Lease
    /// submariner-gateway-lock, the local Endpoint published to the broker, userspace WireGuard
    /// tunnels (TUN device `submariner`) to every remote cluster, routes in table 150, and the
    /// Gateway status object. Needs root (TUN, routes) and a joined cluster (`subctl join`).
    ///
    /// Example: subsea gateway --kubeconfig /etc/subsea/cluster.kubeconfig --node-name gw1
    Gateway(gateway::GatewayArgs),
    /// Run the route agent on a node.
    ///
    /// Routes to remote clusters' CIDRs via the cluster's active gateway, re-pointed as soon as the active gateway changes. Needs root (routes).
    ///
    /// Example: subsea route-agent --kubeconfig /etc/subsea/cluster.kubeconfig --node-name worker1
    RouteAgent(gateway::RouteAgentArgs),
    /// Run Globalnet on a gateway node (clusters with overlapping CIDRs).
    ///
    /// While this node is the active gateway: allocates global IPs from the cluster's
    /// GlobalCIDR into GlobalEgressIP, ClusterGlobalEgressIP and GlobalIngressIP statuses,
    /// creates a GlobalIngressIP for every exported Service (one per ready pod when headless),
    /// annotates the node with its own global IP (submariner.io/globalIp), and programs SNAT
    /// (pods to remote clusters) and DNAT (global IPs to pods) in the nftables table
    /// `ip subsea-globalnet`, replaced atomically. Needs root (nftables) and a cluster joined
    /// with Globalnet.
    ///
    /// Example: subsea globalnet --kubeconfig /etc/subsea/cluster.kubeconfig --node-name gw1
    Globalnet(globalnet::GlobalnetArgs),
    /// Publish exported Services into an external DNS zone (RFC 2136 with TSIG).
    ///
    /// One process next to the broker, for clients outside every cluster: each exported Service
    /// of type LoadBalancer (or with the annotation external-dns.alpha.kubernetes.io/hostname)
    /// gets one name holding the external addresses of every exporting cluster whose gateway is
    /// reachable, and <cluster>.<name> per cluster. A cluster's addresses leave within the
    /// health-check budget when the other gateways lose it (or its heartbeat on the broker
    /// expires) and return when it heals. Ownership is recorded in ExternalDNS's TXT registry,
    /// so a zone shared with ExternalDNS is safe: records of other owners are never touched.
    /// Status: ConfigMap subsea-dns-publisher-<owner> in the broker namespace (`subctl show
    /// service-discovery`).
    ///
    /// Example: subsea dns-publisher --kubeconfig broker.kubeconfig --server 192.0.2.53:53 --zone clusters.example.com --tsig-key-file /etc/subsea/tsig.key
    DnsPublisher(dns_publisher::DnsPublisherArgs),
    /// Run the userspace WireGuard data path as a standalone interface.
    ///
    /// Configured by flags (for benchmarks against wireguard-go and boringtun-cli; `wg show NAME` works).
    ///
    /// Example: subsea wireguard wg0 --private-key a.key --peer "$(cat b.pub),192.168.77.2:51820,10.2.0.0/24"
    Wireguard(wireguard::WireguardArgs),
    /// Run the Lighthouse agent (ServiceExport to ServiceImport through the broker).
    ///
    /// ServiceExports become this cluster's ServiceImport and
    /// EndpointSlice on the broker (with Valid/Ready/Conflict conditions), and every cluster's
    /// exports become ServiceImports and EndpointSlices in the service's namespace here.
    ///
    /// Example: subsea lighthouse-agent --kubeconfig /etc/subsea/cluster.kubeconfig
    LighthouseAgent(lighthouse::AgentArgs),
    /// Route ClusterSetIPs on this node (run on every node).
    ///
    /// A connection from a pod or the node to a service's ClusterSetIP (its ServiceImport's
    /// spec.ips, claimed by the Lighthouse agents when the export asks for one with the
    /// annotation lighthouse.submariner.io/use-clusterset-ip=true or the cluster set enables
    /// them by default) goes to a ready pod of this cluster when it exports the service, else to
    /// the service IP of a healthy exporting cluster, chosen at random per connection (by client
    /// address with ClientIP session affinity). One VIP per family: IPv4 and IPv6 VIPs go to
    /// backends of their own family. A service with internalTrafficPolicy Local goes to this
    /// node's pods only. The rules live in the nftables table subsea-clusterset-ip (family
    /// inet), replaced atomically on every change and removed on exit.
    ///
    /// Example: subsea clusterset-ip --kubeconfig /etc/subsea/cluster.kubeconfig --node-name c1-worker
    ClustersetIp(lighthouse::ClustersetIpArgs),
    /// Run the clusterset.local DNS server.
    ///
    /// A, AAAA, SRV, headless names, per-cluster names, local preference, then round robin over
    /// healthy connected clusters.
    ///
    /// Example: subsea lighthouse-dns --listen 0.0.0.0:53 --custom-domains example.org
    LighthouseDns(lighthouse::DnsArgs),
    /// The checks `subctl verify` and `subctl benchmark` run in pods.
    ///
    /// Small servers and clients (echo with source address, HTTP, request-response latency, iperf3 throughput). Clients end with
    /// a `RESULT <json>` line.
    ///
    /// Example: subsea nettest echo-check 10.130.4.11:7000
    Nettest(nettest::NettestArgs),
    /// Print (or write) the CustomResourceDefinitions of every subsea/Submariner kind.
    ///
    /// Example: subsea crds | kubectl apply -f -
    Crds {
        /// Write one file per CRD into this directory instead of printing them.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ApiserverArgs {
    /// Directory for the data, certificates and admin kubeconfig (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Address and port to listen on (port 0 picks a free port; see DIR/admin.kubeconfig).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Extra DNS name or IP address for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_sans: Vec<String>,
    /// Watch history kept per resource type, in events; older resume points get 410 Expired.
    #[arg(long, default_value_t = 1000)]
    watch_cache_size: usize,
    /// Name of the context written into admin.kubeconfig.
    #[arg(long, default_value = "subsea")]
    context: String,
    /// CIDR(s) Service ClusterIPs are allocated from, comma-separated (one per IP family), as
    /// kube-apiserver's flag and with its default.
    #[arg(
        long,
        value_name = "CIDR[,CIDR]",
        value_delimiter = ',',
        default_value = "10.0.0.0/24"
    )]
    service_cluster_ip_range: Vec<String>,
    /// Keep every object in etcd v3 instead of DIR's log: the members' client URLs,
    /// comma-separated. Several `subsea apiserver` processes on one etcd cluster (and one
    /// --etcd-prefix) serve the same objects: copy DIR's certificates and tokens from the first
    /// to the others (see the README, "A highly available broker").
    #[arg(long, value_name = "URL[,URL]", value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// CA bundle that signed the etcd members' serving certificates (https:// URLs).
    #[arg(long, value_name = "FILE", requires = "etcd_servers")]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd members that require one.
    #[arg(long, value_name = "FILE", requires = "etcd_keyfile")]
    etcd_certfile: Option<PathBuf>,
    /// Key of --etcd-certfile.
    #[arg(long, value_name = "FILE", requires = "etcd_certfile")]
    etcd_keyfile: Option<PathBuf>,
    /// Key prefix in etcd, as kube-apiserver's flag: objects are at PREFIX/<resource>/<ns>/<name>.
    #[arg(long, value_name = "PREFIX", default_value = "/registry")]
    etcd_prefix: String,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal: container runtimes and the sandbox keep logs
    // in files, where escape codes are noise.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn apiserver(args: ApiserverArgs) -> Result<()> {
    let service_cidrs = args
        .service_cluster_ip_range
        .iter()
        .map(|c| subsea_cidr::Cidr::parse(c).map_err(|e| anyhow::anyhow!("--service-cluster-ip-range: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let running = subsea_apiserver::start(subsea_apiserver::Config {
        data_dir: args.data_dir,
        listen: args.listen,
        tls_sans: args.tls_sans,
        watch_cache_size: args.watch_cache_size,
        context: args.context,
        service_cidrs,
        etcd: (!args.etcd_servers.is_empty()).then(|| subsea_apiserver::etcd::EtcdConfig {
            servers: args.etcd_servers,
            ca_file: args.etcd_cafile,
            cert_file: args.etcd_certfile,
            key_file: args.etcd_keyfile,
            prefix: args.etcd_prefix,
        }),
    })
    .await?;
    tracing::info!(address = %running.addr, kubeconfig = %running.kubeconfig.display(), "subsea apiserver is serving");
    tokio::select! {
        _ = subsea_runtime::shutdown::signal() => {}
        r = running.task => r.context("the server task failed")?,
    }
    tracing::info!("shutting down");
    Ok(())
}

fn crds(dir: Option<PathBuf>) -> Result<()> {
    let all = subsea_api::crds::all();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
            for (file, crd) in all {
                let path = dir.join(file);
                std::fs::write(&path, subsea_api::crds::to_yaml(&crd))
                    .with_context(|| format!("failed to write {}", path.display()))?;
            }
        }
        None => {
            for (_, crd) in all {
                print!("---\n{}", subsea_api::crds::to_yaml(&crd));
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Apiserver(args) => apiserver(args).await,
        Command::Crds { dir } => crds(dir),
        Command::Gateway(args) => gateway::run(args).await,
        Command::RouteAgent(args) => gateway::route_agent(args).await,
        Command::Globalnet(args) => globalnet::run(args).await,
        Command::DnsPublisher(args) => dns_publisher::run(args).await,
        Command::Wireguard(args) => wireguard::run(args).await,
        Command::LighthouseAgent(args) => lighthouse::agent(args).await,
        Command::ClustersetIp(args) => lighthouse::clusterset_ip(args).await,
        Command::LighthouseDns(args) => lighthouse::dns(args).await,
        Command::Nettest(args) => {
            // A short failure line, never a backtrace: the tail of the output is the pod's
            // termination message, and the RESULT line must stay in it.
            if let Err(e) = tokio::task::block_in_place(|| nettest::run(args)) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
