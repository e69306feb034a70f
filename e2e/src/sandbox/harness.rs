//! What the e2e tests and benchmarks share around a sandbox: a guard that tears it down however
//! they end, the root check, where the binaries are, and waiting for a condition.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Sandbox;

/// Owns a sandbox and removes it (and its directory) when dropped, panics included.
pub struct Guard(pub Sandbox);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.down();
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

/// Whether this process runs as root (network namespaces and TUN devices need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The directory of the workspace's binaries as seen from a test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>`), or from a binary beside them.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.parent().map(PathBuf::from).unwrap_or(dir)
    } else {
        dir
    }
}

/// Retries `f` every 100 ms until it succeeds; panics with the last error after `timeout`
/// (for tests).
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> anyhow::Result<T>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() > timeout => panic!("{what}: still failing after {timeout:?}: {e:#}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Brings up a sandbox named `<tag><pid>` in a fresh temporary directory with the workspace's
/// binaries, owned by a [`Guard`]: what every test and benchmark starts with.
pub fn up(tag: &str, clusters: usize, dual_stack: bool) -> anyhow::Result<Guard> {
    up_with(tag, clusters, dual_stack, false, false)
}

/// [`up`] with Globalnet and the same pod and service CIDRs in every cluster.
pub fn up_globalnet(tag: &str, clusters: usize) -> anyhow::Result<Guard> {
    up_with(tag, clusters, false, true, false)
}

/// [`up`] with ClusterSetIPs on by default for every export.
pub fn up_clusterset_ip(tag: &str, clusters: usize, dual_stack: bool) -> anyhow::Result<Guard> {
    up_with(tag, clusters, dual_stack, false, true)
}

fn up_with(
    tag: &str,
    clusters: usize,
    dual_stack: bool,
    globalnet: bool,
    clusterset_ip: bool,
) -> anyhow::Result<Guard> {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("subsea-{tag}-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    let sb = Sandbox::up(&super::UpOptions {
        // Namespace prefixes are at most 8 characters.
        name: format!("{}{}", &tag[..1], pid % 10_000_000),
        clusters,
        dual_stack,
        dir,
        bin_dir: bin_dir(),
        gateway_args: vec![],
        globalnet,
        same_cidrs: globalnet,
        clusterset_ip,
    })?;
    Ok(Guard(sb))
}

/// Runs the sandbox's subctl against its kubeconfig; its stdout, or an error with its stderr.
pub fn subctl(sb: &Sandbox, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(sb.binary("subctl"))
        .args(args)
        .arg("--kubeconfig")
        .arg(sb.kubeconfig())
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "subctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host of `cluster`'s local Endpoint: its active gateway.
pub fn active_gateway(sb: &Sandbox, cluster: &str) -> anyhow::Result<String> {
    let out = sb.kubectl(
        cluster,
        &[
            "get",
            "endpoints.submariner.io",
            "-n",
            "submariner-operator",
            "-o",
            "json",
        ],
    )?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["spec"]["cluster_id"] == cluster)
        .and_then(|e| e["spec"]["hostname"].as_str().map(String::from))
        .ok_or_else(|| anyhow::anyhow!("{cluster} has no local Endpoint yet"))
}

/// Kills `cluster`'s active gateway process (SIGKILL, as a crash); returns the node it ran on.
pub fn kill_active_gateway(sb: &Sandbox, cluster: &str) -> anyhow::Result<String> {
    let active = active_gateway(sb, cluster)?;
    sb.kill(&format!("{active}/gateway"))?;
    Ok(active)
}

/// The nftables table that cuts a cluster off the WAN.
const PARTITION_TABLE: &str = "subsea-partition";
/// The underlay, the sandbox's WAN. Only underlay addresses are cut: pod traffic between a
/// cluster's own nodes crosses the same link with pod addresses and must keep flowing.
const UNDERLAY: &str = "172.30.0.0/16";

/// Cuts `cluster` off from everything outside its own part of the underlay (other clusters and
/// the broker), on every node; traffic inside the cluster keeps flowing. Undone by [`heal`]
/// and by the sandbox's teardown (the namespaces go).
pub fn partition(sb: &Sandbox, cluster: &str) -> anyhow::Result<()> {
    let t = sb.topology()?;
    let c = t
        .clusters
        .iter()
        .find(|c| c.id == cluster)
        .ok_or_else(|| anyhow::anyhow!("no cluster {cluster}"))?;
    let o = c.control_plane().ip.octets();
    let own = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let rules = format!(
        "table inet {PARTITION_TABLE} {{\n\
         chain input {{ type filter hook input priority -300; iifname \"eth0\" ip saddr {UNDERLAY} ip saddr != {own} drop; }}\n\
         chain forward {{ type filter hook forward priority -300; oifname \"eth0\" ip daddr {UNDERLAY} ip daddr != {own} drop; iifname \"eth0\" ip saddr {UNDERLAY} ip saddr != {own} drop; }}\n\
         chain output {{ type filter hook output priority -300; oifname \"eth0\" ip daddr {UNDERLAY} ip daddr != {own} drop; }}\n}}\n"
    );
    let file = sb.logs().join(format!("partition-{cluster}.nft"));
    std::fs::write(&file, rules)?;
    for n in &c.nodes {
        super::sys::exec_in(&n.netns, &["nft", "-f", &file.display().to_string()])?;
    }
    Ok(())
}

/// Undoes [`partition`].
pub fn heal(sb: &Sandbox, cluster: &str) -> anyhow::Result<()> {
    let t = sb.topology()?;
    for c in t.clusters.iter().filter(|c| c.id == cluster) {
        for n in &c.nodes {
            super::sys::exec_in(&n.netns, &["nft", "delete", "table", "inet", PARTITION_TABLE])?;
        }
    }
    Ok(())
}

/// The nftables table of a fault on one node ([`cut_node`], [`cut_node_from_api`]).
const NODE_FAULT_TABLE: &str = "subsea-node-fault";

fn node_netns(sb: &Sandbox, node: &str) -> anyhow::Result<(String, std::net::Ipv4Addr)> {
    let t = sb.topology()?;
    let c = t
        .clusters
        .iter()
        .find(|c| c.nodes.iter().any(|n| n.name == node))
        .ok_or_else(|| anyhow::anyhow!("no node {node}"))?;
    let n = c.nodes.iter().find(|n| n.name == node).expect("found above");
    Ok((n.netns.clone(), c.control_plane().ip))
}

fn node_fault(sb: &Sandbox, node: &str, rules: &str) -> anyhow::Result<()> {
    let (netns, _) = node_netns(sb, node)?;
    let file = sb.logs().join(format!("fault-{node}.nft"));
    std::fs::write(&file, format!("table inet {NODE_FAULT_TABLE} {{\n{rules}}}\n"))?;
    super::sys::exec_in(&netns, &["nft", "-f", &file.display().to_string()])?;
    Ok(())
}

/// Drops every packet on `node`'s underlay link, both ways (as a pulled cable: the processes
/// live on, their peers and API server stop answering). Undone by [`restore_node`].
pub fn cut_node(sb: &Sandbox, node: &str) -> anyhow::Result<()> {
    node_fault(
        sb,
        node,
        "chain input { type filter hook input priority -300; iifname \"eth0\" drop; }\n\
         chain forward { type filter hook forward priority -300; iifname \"eth0\" drop; oifname \"eth0\" drop; }\n\
         chain output { type filter hook output priority -300; oifname \"eth0\" drop; }\n",
    )
}

/// Silently drops `node`'s traffic with its cluster's API server (no reset: calls hang, as
/// behind a dead router), nothing else. Undone by [`restore_node`].
pub fn cut_node_from_api(sb: &Sandbox, node: &str) -> anyhow::Result<()> {
    let (_, api) = node_netns(sb, node)?;
    node_fault(
        sb,
        node,
        &format!(
            "chain input {{ type filter hook input priority -300; ip saddr {api} tcp sport 6443 drop; }}\n\
             chain output {{ type filter hook output priority -300; ip daddr {api} tcp dport 6443 drop; }}\n"
        ),
    )
}

/// Undoes [`cut_node`] and [`cut_node_from_api`].
pub fn restore_node(sb: &Sandbox, node: &str) -> anyhow::Result<()> {
    let (netns, _) = node_netns(sb, node)?;
    super::sys::exec_in(&netns, &["nft", "delete", "table", "inet", NODE_FAULT_TABLE])?;
    Ok(())
}

/// Cuts the WAN between `a` and `b` only (on `a`'s nodes, both directions); [`heal`] of `a`
/// undoes it.
pub fn partition_between(sb: &Sandbox, a: &str, b: &str) -> anyhow::Result<()> {
    let t = sb.topology()?;
    let find = |id: &str| {
        t.clusters
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| anyhow::anyhow!("no cluster {id}"))
    };
    let (ca, cb) = (find(a)?, find(b)?);
    let o = cb.control_plane().ip.octets();
    let other = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let rules = format!(
        "table inet {PARTITION_TABLE} {{\n\
         chain input {{ type filter hook input priority -300; iifname \"eth0\" ip saddr {other} drop; }}\n\
         chain forward {{ type filter hook forward priority -300; oifname \"eth0\" ip daddr {other} drop; iifname \"eth0\" ip saddr {other} drop; }}\n\
         chain output {{ type filter hook output priority -300; oifname \"eth0\" ip daddr {other} drop; }}\n}}\n"
    );
    let file = sb.logs().join(format!("partition-{a}-{b}.nft"));
    std::fs::write(&file, rules)?;
    for n in &ca.nodes {
        super::sys::exec_in(&n.netns, &["nft", "-f", &file.display().to_string()])?;
    }
    Ok(())
}

/// `subctl export|unexport service SERVICE -n default --context CLUSTER`.
pub fn export(sb: &Sandbox, verb: &str, service: &str, cluster: &str) -> anyhow::Result<String> {
    subctl(
        sb,
        &[verb, "service", service, "-n", "default", "--context", cluster],
    )
}

/// One field of `cluster`'s ServiceImport `service` in `default` (a kubectl jsonpath, e.g.
/// `{.spec.ips}`).
pub fn import_field(sb: &Sandbox, cluster: &str, service: &str, path: &str) -> anyhow::Result<String> {
    sb.kubectl(
        cluster,
        &["get", "serviceimport", service, "-o", &format!("jsonpath={path}")],
    )
}

/// The names of the ServiceImports on the broker, one per line.
pub fn broker_imports(sb: &Sandbox) -> anyhow::Result<String> {
    sb.kubectl(
        "broker",
        &[
            "get",
            "serviceimports",
            "-n",
            "submariner-k8s-broker",
            "-o",
            "name",
        ],
    )
}

/// An echo server pod on cluster1's worker and a client pod on cluster2's worker (the pair
/// failover and fault measurements probe across); returns the client and the server's address.
pub fn echo_pair(sb: &mut Sandbox) -> anyhow::Result<(super::Pod, String)> {
    let server = sb.add_pod("cluster1", "cluster1-worker", "server", "default")?;
    let client = sb.add_pod("cluster2", "cluster2-worker", "client", "default")?;
    let bin = sb.binary("subsea-sandbox");
    sb.start_in_pod("cluster1", "server", "echo", vec![bin, "echo-server".into()])?;
    Ok((client, format!("{}:7000", server.ips[0])))
}
