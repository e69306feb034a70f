//! `subsea gateway`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

#[derive(clap::Args)]
pub struct GatewayArgs {
    /// Kubeconfig of the local cluster (else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// This node's name (Endpoint hostname, Gateway object name, lease identity).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,
    /// Address remote gateways reach this node at (default: the source address of the route
    /// to the broker).
    #[arg(long, value_name = "IP")]
    private_ip: Option<IpAddr>,
    /// Public address to publish when the node sits behind NAT.
    #[arg(long, value_name = "IP")]
    public_ip: Option<IpAddr>,
    /// Address remote health checks ping (default: this node's address inside the cluster CIDR).
    #[arg(long, value_name = "IP")]
    health_check_ip: Option<IpAddr>,
    /// Lease duration, seconds (fractions allowed: the Lease keeps whole seconds, rounded up,
    /// for other readers and the exact value in the annotation subsea.io/lease-duration-ms):
    /// how long a dead leader blocks failover. Passive gateways wake exactly when it runs out.
    #[arg(long, env = "LEADERSHIP_LEASEDURATION", default_value_t = 0.8)]
    lease_duration: f64,
    /// How long the leader keeps retrying a failed renewal before stepping down, seconds. Every
    /// election call is bounded by what is left of it, so a silent API server cannot keep a
    /// leader past it; lease duration minus this is the margin that fences two active gateways
    /// (it must cover the clock skew between gateway nodes).
    #[arg(long, env = "LEADERSHIP_RENEWDEADLINE", default_value_t = 0.6)]
    renew_deadline: f64,
    /// How often the leader renews (and a passive gateway checks) the lease, seconds.
    #[arg(long, env = "LEADERSHIP_RETRYPERIOD", default_value_t = 0.15)]
    retry_period: f64,
    /// Directory of the WireGuard UAPI socket (`wg show` looks in /var/run/wireguard).
    #[arg(long, default_value = subsea_datapath::uapi::SOCKET_DIR, value_name = "DIR")]
    uapi_dir: PathBuf,
    /// MTU of the `submariner` TUN device.
    #[arg(long, default_value_t = subsea_datapath::DEFAULT_MTU)]
    mtu: u16,
    /// Port of the Prometheus `/metrics` endpoint (Submariner's metric names); 0 turns it off.
    #[arg(long, env = "SUBMARINER_METRICSPORT", default_value_t = subsea_gateway::metrics::DEFAULT_PORT)]
    metrics_port: u16,
}

fn secs(flag: &str, v: f64) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v < 3600.0) {
        bail!("--{flag} must be a number of seconds between 0 and 3600, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "gateway".into())
}

pub async fn run(a: GatewayArgs) -> Result<()> {
    let timing = subsea_health::lease::Timing {
        lease: secs("lease-duration", a.lease_duration)?,
        renew_deadline: secs("renew-deadline", a.renew_deadline)?,
        retry: secs("retry-period", a.retry_period)?,
    };
    if timing.renew_deadline >= timing.lease || timing.retry >= timing.renew_deadline {
        bail!(
            "need --retry-period < --renew-deadline < --lease-duration (got {} < {} < {}): otherwise two gateways can both believe they lead",
            a.retry_period,
            a.renew_deadline,
            a.lease_duration
        );
    }
    if a.retry_period < 0.01 {
        bail!(
            "--retry-period {} is below 0.01 s: the gateway would flood its API server with lease calls",
            a.retry_period
        );
    }
    if a.mtu < 1280 {
        bail!("--mtu {} is below 1280, the minimum IPv6 needs", a.mtu);
    }
    subsea_gateway::run(subsea_gateway::Options {
        kubeconfig: a.kubeconfig,
        context: a.context,
        hostname: a.node_name.unwrap_or_else(hostname),
        private_ip: a.private_ip,
        public_ip: a.public_ip,
        health_check_ip: a.health_check_ip,
        timing,
        uapi_dir: a.uapi_dir,
        mtu: a.mtu,
        metrics_port: a.metrics_port,
    })
    .await
    .map_err(Into::into)
}

#[derive(clap::Args)]
pub struct RouteAgentArgs {
    /// Kubeconfig of the local cluster (else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// This node's name, compared with the active gateway's Endpoint hostname.
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,
    /// MTU of the routes to remote clusters (the tunnel's MTU).
    #[arg(long, default_value_t = subsea_datapath::DEFAULT_MTU)]
    mtu: u16,
}

pub async fn route_agent(a: RouteAgentArgs) -> Result<()> {
    if a.mtu < 1280 {
        bail!("--mtu {} is below 1280, the minimum IPv6 needs", a.mtu);
    }
    subsea_gateway::route_agent::run(subsea_gateway::route_agent::Options {
        kubeconfig: a.kubeconfig,
        context: a.context,
        hostname: a.node_name.unwrap_or_else(hostname),
        mtu: u32::from(a.mtu),
    })
    .await
    .map_err(Into::into)
}
