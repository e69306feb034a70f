//! The multi-cluster sandbox: simulated clusters made of network namespaces on one machine,
//! each with its own `subsea apiserver`, joined to a broker with the real `subctl`, running the
//! real gateway and route agents. Used by `subsea-sandbox`, the e2e tests and the benchmarks.
//!
//! Safety: the sandbox only creates namespaces named after its prefix, links inside them and
//! processes it records; `down` (and any failure during `up`) removes all of them.

mod control;
mod dns;
pub mod endpoints;
mod globalnet;
pub mod harness;
mod kubectl;
pub mod kubelet;
pub mod logs;
mod network;
mod pods;
mod procs;
pub mod proxy;
pub mod relay;
pub mod sys;
pub mod topology;
pub mod workloads;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

pub use control::KUBELET_PORT;
use kubectl::kubectl_ok;
pub use kubectl::{kubectl_stdin, write_secret};
pub use network::{MAX_STATIC_PODS, plumb_pod, pod_netns};
use procs::{free_port, wait_for};
pub use subsea_nettest::{echo, http};
pub use topology::{Cluster, Node, Role, Topology};

/// Options of `up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Namespace prefix.
    pub name: String,
    /// Number of clusters.
    pub clusters: usize,
    /// IPv6 pods and services too.
    pub dual_stack: bool,
    /// State, logs and kubeconfigs.
    pub dir: PathBuf,
    /// Where `subsea`, `subctl` and `subsea-sandbox` are.
    pub bin_dir: PathBuf,
    /// Extra arguments for every `subsea gateway`.
    pub gateway_args: Vec<String>,
    /// Deploy the broker with Globalnet and run `subsea globalnet` on the gateway nodes.
    pub globalnet: bool,
    /// Give every cluster the same pod and service CIDRs (kind's defaults; needs Globalnet).
    pub same_cidrs: bool,
    /// Deploy the broker with ClusterSetIPs on by default (every node routes them either way).
    pub clusterset_ip: bool,
}

/// A process the sandbox started.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    /// What it is (`cluster1-gw1/gateway`).
    pub label: String,
    /// Process (group) id.
    pub pid: u32,
    /// Its namespace (`None`: the root namespace, only for the relay).
    pub netns: Option<String>,
    /// Its log file.
    pub log: PathBuf,
    /// Its command line, to restart it.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// A pod: a namespace attached to a node's pod bridge.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pod {
    /// Pod name.
    pub name: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Cluster ID.
    pub cluster: String,
    /// Node name.
    pub node: String,
    /// Network namespace.
    pub netns: String,
    /// Addresses (IPv4 first).
    pub ips: Vec<String>,
}

/// Everything `down` needs, saved in `<dir>/state.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The plan.
    pub topology: Option<Topology>,
    /// Namespaces created, in order.
    pub netns: Vec<String>,
    /// Processes started.
    pub procs: Vec<Proc>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Local port of each API server's relay, by context name (`broker`, `cluster1`, …).
    pub ports: Vec<(String, u16)>,
    /// Binaries used.
    pub bin_dir: PathBuf,
    /// Whether the clusters joined with Globalnet.
    #[serde(default)]
    pub globalnet: bool,
    /// Whether the broker has ClusterSetIPs on by default.
    #[serde(default)]
    pub clusterset_ip: bool,
}

/// A sandbox on disk.
pub struct Sandbox {
    /// Its directory.
    pub dir: PathBuf,
    /// Its state.
    pub state: State,
}

impl Sandbox {
    /// Path of the state file.
    pub fn state_path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Loads a running sandbox.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = Self::state_path(dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("no sandbox at {} (run `subsea-sandbox up` first)", dir.display()))?;
        let state = serde_json::from_str(&text)
            .with_context(|| format!("{} is corrupt; run `subsea-sandbox down`", path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            state,
        })
    }

    pub(crate) fn save(&self) -> Result<()> {
        let path = Self::state_path(&self.dir);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&self.state)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// The plan.
    pub fn topology(&self) -> Result<&Topology> {
        self.state
            .topology
            .as_ref()
            .ok_or_else(|| anyhow!("the sandbox has no topology"))
    }

    /// Logs directory.
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The kubeconfig with one context per cluster plus `broker`, reachable from the root
    /// namespace through the relay.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Data directory of an API server (`broker` or a cluster ID).
    pub fn apiserver_dir(&self, who: &str) -> PathBuf {
        self.dir.join(who).join("apiserver")
    }

    /// The admin kubeconfig that processes inside the sandbox use (underlay address).
    pub fn inner_kubeconfig(&self, who: &str) -> PathBuf {
        self.apiserver_dir(who).join("admin.kubeconfig")
    }

    pub(crate) fn bin(&self, name: &str) -> String {
        self.state.bin_dir.join(name).to_string_lossy().into_owned()
    }

    /// Builds a sandbox. On failure everything made so far is removed before returning.
    pub fn up(opts: &UpOptions) -> Result<Self> {
        if opts.same_cidrs && !opts.globalnet {
            bail!(
                "--same-cidrs needs --globalnet: clusters with the same CIDRs can only be connected through global IPs"
            );
        }
        let cidrs = if opts.same_cidrs {
            topology::Cidrs::Same
        } else {
            topology::Cidrs::Distinct
        };
        let topology = Topology::with_cidrs(&opts.name, opts.clusters, opts.dual_stack, cidrs)
            .map_err(|e| anyhow!(e))?;
        if Self::state_path(&opts.dir).exists() {
            bail!(
                "a sandbox is already up in {} (run `subsea-sandbox down` first)",
                opts.dir.display()
            );
        }
        for bin in ["subsea", "subctl", "subsea-sandbox"] {
            if !opts.bin_dir.join(bin).exists() {
                bail!(
                    "{} not found: build with `cargo build --workspace --bins` first",
                    opts.bin_dir.join(bin).display()
                );
            }
        }
        std::fs::create_dir_all(opts.dir.join("logs"))?;
        let mut sb = Sandbox {
            dir: opts.dir.clone(),
            state: State {
                topology: Some(topology),
                bin_dir: opts.bin_dir.clone(),
                globalnet: opts.globalnet,
                clusterset_ip: opts.clusterset_ip,
                ..Default::default()
            },
        };
        sb.save()?;
        match sb.build(opts) {
            Ok(()) => Ok(sb),
            Err(e) => {
                let logs = sb.logs();
                sb.down();
                Err(e.context(format!("sandbox setup failed (logs were in {})", logs.display())))
            }
        }
    }

    fn build(&mut self, opts: &UpOptions) -> Result<()> {
        let t = self.topology()?.clone();
        self.network(&t)?;
        self.apiservers(&t)?;
        self.register_nodes(&t)?;
        self.deploy_and_join(&t)?;
        for c in &t.clusters {
            for n in &c.nodes {
                let cmd = vec![
                    self.bin("subsea-sandbox"),
                    "kube-proxy".into(),
                    "--kubeconfig".into(),
                    self.inner_kubeconfig(&c.id).to_string_lossy().into_owned(),
                ];
                self.start(&format!("{}/kube-proxy", n.name), Some(&n.netns), cmd, &[])?;
                // Every node routes ClusterSetIPs, as the DaemonSet `subctl join` deploys does.
                let cmd = vec![
                    self.bin("subsea"),
                    "clusterset-ip".into(),
                    "--kubeconfig".into(),
                    self.inner_kubeconfig(&c.id).to_string_lossy().into_owned(),
                    "--node-name".into(),
                    n.name.clone(),
                ];
                self.start(
                    &format!("{}/clusterset-ip", n.name),
                    Some(&n.netns),
                    cmd,
                    &[("RUST_LOG", "info")],
                )?;
            }
            for n in c.nodes.iter().filter(|n| n.role != Role::ControlPlane) {
                let cmd = vec![
                    self.bin("subsea"),
                    "route-agent".into(),
                    "--kubeconfig".into(),
                    self.inner_kubeconfig(&c.id).to_string_lossy().into_owned(),
                    "--node-name".into(),
                    n.name.clone(),
                ];
                self.start(
                    &format!("{}/route-agent", n.name),
                    Some(&n.netns),
                    cmd,
                    &[("RUST_LOG", "info")],
                )?;
            }
            for n in c.nodes.iter().filter(|n| n.role == Role::Gateway) {
                let mut cmd = vec![
                    self.bin("subsea"),
                    "gateway".into(),
                    "--kubeconfig".into(),
                    self.inner_kubeconfig(&c.id).to_string_lossy().into_owned(),
                    "--node-name".into(),
                    n.name.clone(),
                    "--uapi-dir".into(),
                    self.dir
                        .join("wireguard")
                        .join(&n.name)
                        .to_string_lossy()
                        .into_owned(),
                ];
                cmd.extend(opts.gateway_args.iter().cloned());
                self.start(
                    &format!("{}/gateway", n.name),
                    Some(&n.netns),
                    cmd,
                    &[("RUST_LOG", "info")],
                )?;
            }
            if self.state.globalnet {
                self.globalnet(c)?;
            }
            self.service_discovery(c)?;
            for n in &c.nodes {
                let cmd = vec![
                    self.bin("subsea-sandbox"),
                    "kubelet-logs".into(),
                    "--dir".into(),
                    self.dir.to_string_lossy().into_owned(),
                    "--cluster".into(),
                    c.id.clone(),
                    "--listen".into(),
                    format!("{}:{KUBELET_PORT}", n.ip),
                ];
                self.start(&format!("{}/kubelet-logs", n.name), Some(&n.netns), cmd, &[])?;
            }
            self.register_components(c)?;
            // In the root namespace: the kubelet stand-in only adds namespaces and runs
            // commands in them; the controller-manager stand-in only talks to the API.
            for stand_in in ["kubelet", "workloads"] {
                let cmd = vec![
                    self.bin("subsea-sandbox"),
                    stand_in.into(),
                    "--dir".into(),
                    self.dir.to_string_lossy().into_owned(),
                    "--cluster".into(),
                    c.id.clone(),
                ];
                self.start(&format!("{}/{stand_in}", c.id), None, cmd, &[])?;
            }
        }
        Ok(())
    }

    /// Removes everything the sandbox made: processes first (so nothing recreates state), then
    /// namespaces, the relay sockets, the UAPI sockets and the state file. Best effort: a
    /// failure to remove one thing does not stop the rest.
    pub fn down(&mut self) {
        for p in self.state.procs.iter().rev() {
            sys::signal_group(p.pid, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.state.procs.iter().any(|p| sys::alive(p.pid)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in &self.state.procs {
            if sys::alive(p.pid) {
                sys::signal_group(p.pid, "KILL");
            }
        }
        // Pods the kubelet stand-ins started (they stop their pods on SIGTERM; this covers a
        // stand-in that was killed).
        kubelet::clean(&self.dir);
        for ns in self.state.netns.iter().rev() {
            sys::delete_netns(ns);
        }
        // Anything else under this sandbox's prefix (a pod whose record was lost in a crash):
        // the prefix is this sandbox's alone, `up` refuses to start over existing ones.
        if let Some(t) = &self.state.topology {
            let prefix = format!("{}-", t.name);
            for ns in sys::namespaces().iter().filter(|n| n.starts_with(&prefix)) {
                sys::delete_netns(ns);
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.join("wireguard"));
        // API server data: a new sandbox starts from empty clusters.
        if let Some(t) = &self.state.topology {
            for who in std::iter::once("broker").chain(t.clusters.iter().map(|c| c.id.as_str())) {
                let _ = std::fs::remove_dir_all(self.dir.join(who));
            }
        }
        let _ = std::fs::remove_file(self.kubeconfig());
        let _ = std::fs::remove_file(self.dir.join("broker-info.subm"));
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "sock") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = std::fs::remove_file(Self::state_path(&self.dir));
        self.state.procs.clear();
        self.state.netns.clear();
    }
}
