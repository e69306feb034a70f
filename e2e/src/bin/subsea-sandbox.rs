//! `subsea-sandbox`: simulated Kubernetes clusters in network namespaces, joined with the real
//! `subctl` and connected by the real gateway. Needs root.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use subsea_e2e::sandbox::{Sandbox, UpOptions, relay};

#[derive(Parser)]
#[command(
    name = "subsea-sandbox",
    version,
    about = "Simulated multi-cluster Kubernetes in network namespaces, for demos, e2e tests and benchmarks",
    after_help = "Example:\n  subsea-sandbox up --clusters 2\n  subsea-sandbox status\n  subsea-sandbox exec cluster2 cluster2-worker -- ping -c1 10.129.4.1\n  KUBECONFIG=$(subsea-sandbox kubeconfig) kubectl --context cluster1 get nodes\n  subsea-sandbox down"
)]
struct Cli {
    /// Directory holding the sandbox's state, logs and kubeconfigs.
    #[arg(
        long,
        global = true,
        env = "SUBSEA_SANDBOX_DIR",
        default_value = "/run/subsea-sandbox"
    )]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the sandbox: a broker and N clusters (control plane, two gateway nodes, one worker
    /// each), `subctl deploy-broker`, `subctl join` per cluster, and the gateways.
    Up {
        /// Number of clusters (1-9).
        #[arg(long, default_value_t = 2)]
        clusters: usize,
        /// IPv6 pod and service ranges as well.
        #[arg(long)]
        dual_stack: bool,
        /// Prefix of every network namespace (1-8 lowercase letters or digits).
        #[arg(long, default_value = "ss")]
        name: String,
        /// Extra argument for every `subsea gateway` (repeatable), e.g. --gateway-arg=--lease-duration=5.
        #[arg(long = "gateway-arg", allow_hyphen_values = true)]
        gateway_args: Vec<String>,
        /// Deploy the broker with Globalnet and run `subsea globalnet` on every gateway node.
        #[arg(long)]
        globalnet: bool,
        /// Give every cluster kind's pod and service CIDRs (10.244.0.0/16, 10.96.0.0/16), as
        /// real kind clusters have; needs --globalnet.
        #[arg(long)]
        same_cidrs: bool,
        /// Deploy the broker with --enable-clusterset-ip: every export gets a routed VIP, not
        /// only those that ask with `subctl export --use-clusterset-ip`.
        #[arg(long)]
        clusterset_ip: bool,
    },
    /// Show clusters, nodes, pods, their addresses and the processes.
    Status {
        /// Output format: table or json.
        #[arg(short, long, default_value = "table")]
        output: String,
    },
    /// Run a command in a pod's or node's network namespace (on a node, `wg show` sees that
    /// node's gateway).
    Exec {
        /// Cluster ID.
        cluster: String,
        /// Pod or node name.
        target: String,
        /// The command.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Add a pod (a namespace on a node's pod bridge).
    AddPod {
        /// Cluster ID.
        cluster: String,
        /// Node name (see `status`).
        node: String,
        /// Pod name.
        name: String,
        /// Kubernetes namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Print the path of a kubeconfig with one context per cluster plus `broker`.
    Kubeconfig,
    /// Stop every process and remove every namespace the sandbox made.
    Down,
    /// Deploy N pods running a small HTTP server (GET /health answers with the pod and cluster
    /// names) behind a Service, with its EndpointSlice kept in step. Export it with
    /// `subctl export service NAME -n NS`.
    Deploy {
        /// Cluster ID.
        cluster: String,
        /// Name of the Service and prefix of the pods.
        name: String,
        /// Namespace (created if missing).
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Number of pods.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// A headless Service (per-pod DNS records) instead of a ClusterIP one.
        #[arg(long)]
        headless: bool,
        /// Service port and pod port, PORT:TARGET.
        #[arg(long, default_value = "80:8080")]
        port: String,
    },
    /// (internal) The HTTP server the deploy command runs in each pod.
    #[command(hide = true)]
    HttpServer {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long)]
        pod: String,
        #[arg(long)]
        cluster: String,
    },
    /// (internal) The EndpointSlice controller stand-in of one cluster.
    #[command(hide = true)]
    Endpoints {
        #[arg(long)]
        kubeconfig: PathBuf,
    },
    /// (internal) The kube-proxy stand-in of one node: ClusterIP DNAT in nftables.
    #[command(hide = true)]
    KubeProxy {
        #[arg(long)]
        kubeconfig: PathBuf,
    },
    /// Serve TCP echo on a port (run it in a pod with `exec`).
    EchoServer {
        #[arg(long, default_value_t = 7000)]
        port: u16,
    },
    /// Send a payload to an echo server and verify every byte that comes back.
    EchoCheck {
        /// ADDRESS:PORT
        addr: std::net::SocketAddr,
        /// Payload size.
        #[arg(long, default_value_t = 1 << 20)]
        bytes: usize,
        /// Timeout, seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// (internal) From epoch µs START, connect to ADDR every 20 ms (100 ms attempts) until it
    /// works; print the epoch µs of the first success.
    #[command(hide = true)]
    Probe {
        addr: std::net::SocketAddr,
        #[arg(long)]
        start: u64,
        #[arg(long, default_value_t = 60)]
        deadline: u64,
    },
    /// (internal) A node's kubelet log endpoint, which the API server proxies `kubectl logs` to.
    #[command(hide = true)]
    KubeletLogs {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    /// (internal) The kubelet stand-in of one cluster: runs Pods created through its API.
    #[command(hide = true)]
    Kubelet {
        #[arg(long)]
        cluster: String,
    },
    /// (internal) The controller-manager stand-in of one cluster: pods and status for the
    /// Deployments, ReplicaSets, StatefulSets and DaemonSets created through its API.
    #[command(hide = true)]
    Workloads {
        #[arg(long)]
        cluster: String,
    },
    /// (internal) Relay connections: LISTEN=TARGET, each `HOST:PORT` or `unix:PATH`.
    #[command(hide = true)]
    Relay { mappings: Vec<String> },
    /// Watch the path to an echo server for SECONDS: a new connection every 50 ms and one
    /// long-lived connection; prints `RESULT <json>` (the fault suite's probe).
    #[command(hide = true)]
    Watch {
        addr: std::net::SocketAddr,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Also resolve this name every 100 ms…
        #[arg(long)]
        dns: Option<String>,
        /// …expecting only these addresses (comma-separated).
        #[arg(long, value_delimiter = ',')]
        expect: Vec<std::net::IpAddr>,
    },
    /// Flood TARGET with WireGuard handshake initiations for PUBLIC_KEY (base64) at RATE per
    /// second for SECONDS (the handshake-flood test and benchmark); prints `RESULT <json>`.
    #[command(hide = true)]
    HandshakeFlood {
        /// The gateway's UDP address.
        #[arg(long)]
        target: std::net::SocketAddr,
        /// Its public key (base64).
        #[arg(long)]
        public_key: String,
        /// Initiations per second.
        #[arg(long, default_value_t = 10_000)]
        rate: u32,
        /// How long.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Program Globalnet's NAT table in the current network namespace, with the Globalnet
    /// daemon's own code (for the datapath benchmark's Globalnet row). `--remove` deletes it.
    #[command(hide = true)]
    GlobalnetNat {
        /// GLOBAL=LOCAL: DNAT of a global IP to a local address (repeatable).
        #[arg(long)]
        dnat: Vec<String>,
        /// SOURCE_CIDR=GLOBAL: SNAT of sources to a global IP (repeatable).
        #[arg(long)]
        snat: Vec<String>,
        /// A remote GlobalCIDR: traffic to it is SNATed (repeatable).
        #[arg(long)]
        remote: Vec<String>,
        /// Remove the table instead.
        #[arg(long)]
        remove: bool,
    },
}

fn bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    Ok(exe.parent().map(PathBuf::from).unwrap_or_default())
}

fn need_root() -> Result<()> {
    if !subsea_e2e::sandbox::harness::is_root() {
        bail!("subsea-sandbox needs root (network namespaces, TUN devices): run it with sudo");
    }
    Ok(())
}

fn status(sb: &Sandbox, output: &str) -> Result<()> {
    let t = sb.topology()?;
    if output == "json" {
        let v = serde_json::json!({"topology": t, "pods": sb.state.pods, "processes": sb.state.procs,
            "kubeconfig": sb.kubeconfig()});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if output != "table" {
        bail!("--output must be table or json, got {output:?}");
    }
    println!("broker      {} (netns {})", t.broker_ip, t.broker_netns);
    for c in &t.clusters {
        println!(
            "\n{}  pods {}  services {}",
            c.id,
            c.pod_cidrs.join(","),
            c.service_cidrs.join(",")
        );
        println!(
            "  {:<18} {:<14} {:<14} {:<16} NETNS",
            "NODE", "ROLE", "UNDERLAY IP", "POD CIDR"
        );
        for n in &c.nodes {
            println!(
                "  {:<18} {:<14} {:<14} {:<16} {}",
                n.name,
                format!("{:?}", n.role).to_lowercase(),
                n.ip,
                n.pod_cidr,
                n.netns
            );
        }
        let started = subsea_e2e::sandbox::kubelet::records(&sb.dir);
        let pods: Vec<_> = sb
            .state
            .pods
            .iter()
            .chain(started.iter().map(|r| &r.pod))
            .filter(|p| p.cluster == c.id)
            .collect();
        if !pods.is_empty() {
            println!("  {:<24} {:<18} {:<30} NETNS", "POD", "NODE", "IPS");
            for p in pods {
                println!(
                    "  {:<24} {:<18} {:<30} {}",
                    format!("{}/{}", p.namespace, p.name),
                    p.node,
                    p.ips.join(","),
                    p.netns
                );
            }
        }
    }
    println!("\nprocesses:");
    for p in &sb.state.procs {
        let state = if subsea_e2e::sandbox::sys::alive(p.pid) {
            "running"
        } else {
            "EXITED"
        };
        println!(
            "  {:<28} pid {:<8} {:<8} {}",
            p.label,
            p.pid,
            state,
            p.log.display()
        );
    }
    println!("\nkubeconfig: {}", sb.kubeconfig().display());
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Relay { mappings } => {
            let maps = mappings
                .iter()
                .map(|m| relay::parse(m))
                .collect::<Result<Vec<_>>>()?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let tasks: Vec<_> = maps.into_iter().map(|m| tokio::spawn(relay::serve(m))).collect();
                for t in tasks {
                    t.await??;
                }
                Ok(())
            })
        }
        Command::Deploy {
            cluster,
            name,
            namespace,
            replicas,
            headless,
            port,
        } => {
            need_root()?;
            let (p, t) = port
                .split_once(':')
                .and_then(|(p, t)| Some((p.parse::<u16>().ok()?, t.parse::<u16>().ok()?)))
                .with_context(|| format!("--port {port:?} must be PORT:TARGET, e.g. 80:8080"))?;
            let mut sb = Sandbox::load(&cli.dir)?;
            let pods = sb.deploy(&cluster, &name, &namespace, replicas, headless, p, t)?;
            for pod in &pods {
                println!(
                    "✓ pod {}/{} on {} with {}",
                    pod.namespace,
                    pod.name,
                    pod.node,
                    pod.ips.join(",")
                );
            }
            println!(
                "✓ Service {namespace}/{name} in {cluster} (port {p} → {t}); export it with `subctl export service {name} -n {namespace}`"
            );
            Ok(())
        }
        Command::HttpServer { port, pod, cluster } => {
            Ok(subsea_e2e::sandbox::http::serve(port, &pod, &cluster)?)
        }
        Command::Endpoints { kubeconfig } => {
            init_logging();
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(subsea_e2e::sandbox::endpoints::run(&kubeconfig))
        }
        Command::KubeletLogs { cluster, listen } => {
            subsea_e2e::sandbox::logs::serve(&cli.dir, &cluster, listen)
        }
        Command::Kubelet { cluster } => {
            let sb = Sandbox::load(&cli.dir)?;
            let kubelet = subsea_e2e::sandbox::kubelet::Kubelet::new(&cli.dir, &cluster)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(kubelet.run(&sb.kubeconfig(), &cluster))
        }
        Command::Workloads { cluster } => {
            let sb = Sandbox::load(&cli.dir)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(subsea_e2e::sandbox::workloads::run::run(
                &sb.kubeconfig(),
                &cluster,
            ))
        }
        Command::Watch {
            addr,
            seconds,
            dns,
            expect,
        } => {
            let ms = std::time::Duration::from_millis;
            let dns = dns.map(|name| subsea_e2e::sandbox::echo::DnsWatch { name, expect });
            let w = subsea_e2e::sandbox::echo::watch(
                addr,
                ms(50),
                ms(200),
                std::time::Duration::from_secs_f64(seconds),
                dns,
            )?;
            println!("RESULT {}", serde_json::to_string(&w)?);
            Ok(())
        }
        Command::HandshakeFlood {
            target,
            public_key,
            rate,
            seconds,
        } => {
            use base64::Engine;
            let key: [u8; 32] = base64::engine::general_purpose::STANDARD
                .decode(public_key.trim())
                .ok()
                .and_then(|k| k.try_into().ok())
                .context("--public-key is not a base64 WireGuard key")?;
            let packets = subsea_e2e::flood::initiations(key, 1000);
            let r = subsea_e2e::flood::flood(target, &packets, rate, seconds)?;
            println!("RESULT {}", serde_json::to_string(&r)?);
            Ok(())
        }
        Command::GlobalnetNat {
            dnat,
            snat,
            remote,
            remove,
        } => {
            if remove {
                return Ok(subsea_globalnet::nft::remove()?);
            }
            let pair = |s: &str| -> Result<(String, String)> {
                s.split_once('=')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .with_context(|| format!("{s:?} is not A=B"))
            };
            let cidr = |s: &str| subsea_cidr::Cidr::parse(s).with_context(|| format!("{s:?} is not a CIDR"));
            let mut rules = subsea_globalnet_core::plan::Rules::default();
            for d in &dnat {
                let (g, l) = pair(d)?;
                rules.dnat.push((g.parse()?, l.parse()?));
            }
            for s in &snat {
                let (src, g) = pair(s)?;
                rules.snat.push(subsea_globalnet_core::plan::Snat {
                    sources: vec![cidr(&src)?],
                    to: vec![g.parse()?],
                });
            }
            for r in &remote {
                rules.remote.push(cidr(r)?);
            }
            Ok(subsea_globalnet::nft::apply(&rules)?)
        }
        Command::KubeProxy { kubeconfig } => {
            init_logging();
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(subsea_e2e::sandbox::proxy::run(&kubeconfig))
        }
        Command::Probe {
            addr,
            start,
            deadline,
        } => {
            let ms = std::time::Duration::from_millis;
            let at = subsea_e2e::sandbox::echo::probe(
                addr,
                start,
                ms(100),
                ms(20),
                std::time::Duration::from_secs(deadline),
            )?;
            println!("{at}");
            Ok(())
        }
        Command::EchoServer { port } => Ok(subsea_e2e::sandbox::echo::serve(port)?),
        Command::EchoCheck { addr, bytes, timeout } => {
            let from =
                subsea_e2e::sandbox::echo::check(addr, bytes, std::time::Duration::from_secs(timeout))?;
            println!("✓ {bytes} bytes echoed intact by {addr}, which saw the connection come from {from}");
            Ok(())
        }
        Command::Up {
            clusters,
            dual_stack,
            name,
            gateway_args,
            globalnet,
            same_cidrs,
            clusterset_ip,
        } => {
            need_root()?;
            let sb = Sandbox::up(&UpOptions {
                name,
                clusters,
                dual_stack,
                dir: cli.dir.clone(),
                bin_dir: bin_dir()?,
                gateway_args,
                globalnet,
                same_cidrs,
                clusterset_ip,
            })?;
            println!("✓ sandbox up: {} cluster(s) joined to the broker", clusters);
            println!("  kubeconfig: {}", sb.kubeconfig().display());
            println!("  logs:       {}", sb.logs().display());
            println!(
                "  explore:    subsea-sandbox status; KUBECONFIG={} subctl show all",
                sb.kubeconfig().display()
            );
            println!("  tear down:  subsea-sandbox down");
            Ok(())
        }
        Command::Status { output } => status(&Sandbox::load(&cli.dir)?, &output),
        Command::Kubeconfig => {
            println!("{}", Sandbox::load(&cli.dir)?.kubeconfig().display());
            Ok(())
        }
        Command::AddPod {
            cluster,
            node,
            name,
            namespace,
        } => {
            need_root()?;
            let mut sb = Sandbox::load(&cli.dir)?;
            let pod = sb.add_pod(&cluster, &node, &name, &namespace)?;
            println!(
                "✓ pod {}/{} on {} with {}",
                pod.namespace,
                pod.name,
                pod.node,
                pod.ips.join(",")
            );
            Ok(())
        }
        Command::Exec {
            cluster,
            target,
            command,
        } => {
            need_root()?;
            let sb = Sandbox::load(&cli.dir)?;
            let argv = sb.exec_argv(&cluster, &target, &command)?;
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .status()
                .context("cannot run ip netns exec")?;
            if !status.success() {
                std::process::exit(status.code().unwrap_or(1));
            }
            Ok(())
        }
        Command::Down => {
            need_root()?;
            let mut sb = match Sandbox::load(&cli.dir) {
                Ok(sb) => sb,
                Err(_) => {
                    println!("no sandbox is up in {}", cli.dir.display());
                    return Ok(());
                }
            };
            sb.down();
            println!("✓ sandbox removed");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("✗ {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs of the stand-ins (their controller loops report failures through tracing) on stderr,
/// which the sandbox sends to their log files.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
