//! The multi-cluster sandbox: simulated clusters made of network namespaces on one machine,
//! each with its own `subsea apiserver`, joined to a broker with the real `subctl`, running the
//! real gateway and route agents. Used by `subsea-sandbox`, the e2e tests and the benchmarks.
//!
//! Safety: the sandbox only creates namespaces named after its prefix, links inside them and
//! processes it records; `down` (and any failure during `up`) removes all of them.

pub mod endpoints;
pub mod harness;
pub mod kubelet;
pub mod logs;
pub mod proxy;
pub mod relay;
pub mod sys;
pub mod topology;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

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
}

/// A sandbox on disk.
pub struct Sandbox {
    /// Its directory.
    pub dir: PathBuf,
    /// Its state.
    pub state: State,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("timed out after {timeout:?} waiting for {what}")
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

    fn save(&self) -> Result<()> {
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

    fn bin(&self, name: &str) -> String {
        self.state.bin_dir.join(name).to_string_lossy().into_owned()
    }

    fn start(
        &mut self,
        label: &str,
        netns: Option<&str>,
        cmd: Vec<String>,
        env: &[(&str, &str)],
    ) -> Result<u32> {
        let log = self.logs().join(format!("{}.log", label.replace('/', "-")));
        let pid = sys::spawn(netns, &cmd, &log, env, false)?;
        self.state.procs.push(Proc {
            label: label.into(),
            pid,
            netns: netns.map(String::from),
            log,
            cmd,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        });
        self.save()?;
        Ok(pid)
    }

    fn add_netns(&mut self, ns: &str) -> Result<()> {
        if sys::namespaces().iter().any(|n| n == ns) {
            bail!(
                "network namespace {ns} already exists: another sandbox with this name is up (run `subsea-sandbox down`, or pick another --name)"
            );
        }
        sys::ip(&["netns", "add", ns])?;
        self.state.netns.push(ns.into());
        self.save()?;
        sys::ip_in(ns, &["link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Builds a sandbox. On failure everything made so far is removed before returning.
    pub fn up(opts: &UpOptions) -> Result<Self> {
        let topology = Topology::new(&opts.name, opts.clusters, opts.dual_stack).map_err(|e| anyhow!(e))?;
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
            // In the root namespace: it only adds namespaces and runs commands in them.
            let cmd = vec![
                self.bin("subsea-sandbox"),
                "kubelet".into(),
                "--dir".into(),
                self.dir.to_string_lossy().into_owned(),
                "--cluster".into(),
                c.id.clone(),
            ];
            self.start(&format!("{}/kubelet", c.id), None, cmd, &[])?;
        }
        Ok(())
    }

    /// The control-plane side of a cluster's service discovery: the EndpointSlice stand-in,
    /// the Lighthouse agent, and the Lighthouse DNS server as the pod behind `kube-dns`.
    fn service_discovery(&mut self, c: &Cluster) -> Result<()> {
        let cp = c.control_plane().clone();
        let kc = self.inner_kubeconfig(&c.id).to_string_lossy().into_owned();
        let cmd = vec![
            self.bin("subsea-sandbox"),
            "endpoints".into(),
            "--kubeconfig".into(),
            kc.clone(),
        ];
        self.start(&format!("{}/endpoints", c.id), Some(&cp.netns), cmd, &[])?;
        let cmd = vec![
            self.bin("subsea"),
            "lighthouse-agent".into(),
            "--kubeconfig".into(),
            kc.clone(),
        ];
        self.start(
            &format!("{}/lighthouse-agent", c.id),
            Some(&cp.netns),
            cmd,
            &[("RUST_LOG", "info")],
        )?;
        let pod = self.add_pod(&c.id, &cp.name, "lighthouse-dns", "kube-system")?;
        let cmd = vec![
            self.bin("subsea"),
            "lighthouse-dns".into(),
            "--kubeconfig".into(),
            kc,
            "--listen".into(),
            "0.0.0.0:53".into(),
            "--empty-zones".into(),
            "cluster.local".into(),
        ];
        self.start(
            &format!("{}/lighthouse-dns", c.id),
            Some(&pod.netns),
            cmd,
            &[("RUST_LOG", "info")],
        )?;
        self.register_pod(&pod, &serde_json::json!({"k8s-app": "kube-dns"}), None)
    }

    /// The components the sandbox runs as processes, registered as the Pods a real cluster
    /// would show in submariner-operator (names and labels of the DaemonSets and Deployments in
    /// `manifests/deploy/`), each with its process log as the pod's log: so `kubectl get pods`,
    /// `kubectl logs` and `subctl gather` see them.
    fn register_components(&self, c: &Cluster) -> Result<()> {
        let cp = c.control_plane();
        let dns_ip = self
            .state
            .pods
            .iter()
            .find(|p| p.cluster == c.id && p.name == "lighthouse-dns")
            .map(|p| p.ips[0].clone())
            .unwrap_or_else(|| cp.ip.to_string());
        let mut wanted: Vec<(String, &str, &Node, String, String)> = Vec::new();
        for n in &c.nodes {
            if n.role == Role::Gateway {
                wanted.push((
                    format!("submariner-gateway-{}", n.name),
                    "submariner-gateway",
                    n,
                    n.ip.to_string(),
                    format!("{}/gateway", n.name),
                ));
            }
            if n.role != Role::ControlPlane {
                wanted.push((
                    format!("submariner-routeagent-{}", n.name),
                    "submariner-routeagent",
                    n,
                    n.ip.to_string(),
                    format!("{}/route-agent", n.name),
                ));
            }
        }
        wanted.push((
            "submariner-lighthouse-agent".into(),
            "submariner-lighthouse-agent",
            cp,
            cp.ip.to_string(),
            format!("{}/lighthouse-agent", c.id),
        ));
        wanted.push((
            "submariner-lighthouse-coredns".into(),
            "submariner-lighthouse-coredns",
            cp,
            dns_ip,
            format!("{}/lighthouse-dns", c.id),
        ));
        let mut objects = Vec::new();
        for (name, app, node, ip, label) in &wanted {
            let link = logs::log_path(&self.dir, &c.id, subsea_broker_namespace(), name);
            std::fs::create_dir_all(link.parent().unwrap_or(&self.dir))?;
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&self.proc(label)?.log, &link)?;
            objects.push(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": subsea_broker_namespace(), "labels": {"app": app}},
                "spec": {"nodeName": node.name, "hostNetwork": *ip == node.ip.to_string(),
                    "containers": [{"name": app, "image": kubelet::STATIC_IMAGE}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": node.ip.to_string(),
                    "conditions": [{"type": "Ready", "status": "True"}]}}));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(register_running(&self.kubeconfig(), &c.id, objects))
    }

    /// Registers a sandbox pod as a ready Pod object, so the EndpointSlice stand-in sees it.
    pub fn register_pod(&self, pod: &Pod, labels: &serde_json::Value, subdomain: Option<&str>) -> Result<()> {
        let mut spec = serde_json::json!({"nodeName": pod.node, "hostname": pod.name,
            "containers": [{"name": "main", "image": "sandbox"}]});
        if let Some(sub) = subdomain {
            spec["subdomain"] = sub.into();
        }
        let obj = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": labels}, "spec": spec});
        kubectl_stdin(
            &self.kubeconfig(),
            &pod.cluster,
            &["apply", "-f", "-"],
            &obj.to_string(),
        )?;
        let ips: Vec<serde_json::Value> = pod.ips.iter().map(|ip| serde_json::json!({"ip": ip})).collect();
        let status = serde_json::json!({"status": {"phase": "Running", "podIP": pod.ips[0], "podIPs": ips,
            "conditions": [{"type": "Ready", "status": "True"}]}});
        kubectl_stdin(
            &self.kubeconfig(),
            &pod.cluster,
            &[
                "patch",
                "pod",
                &pod.name,
                "-n",
                &pod.namespace,
                "--subresource=status",
                "--type=merge",
                "--patch-file=/dev/stdin",
            ],
            &status.to_string(),
        )?;
        Ok(())
    }

    /// Deploys `replicas` pods running the sandbox's HTTP server (`/health` names pod and
    /// cluster) behind a Service `name` with `port` → `target`; pods go round robin over the
    /// cluster's non-control-plane nodes. Exporting stays the user's step.
    pub fn deploy(
        &mut self,
        cluster: &str,
        name: &str,
        namespace: &str,
        replicas: usize,
        headless: bool,
        port: u16,
        target: u16,
    ) -> Result<Vec<Pod>> {
        let t = self.topology()?.clone();
        let c = t
            .cluster(cluster)
            .ok_or_else(|| anyhow!("no cluster {cluster:?} in the sandbox"))?;
        if replicas == 0 || replicas > 50 {
            bail!("--replicas must be between 1 and 50, got {replicas}");
        }
        let ns =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        kubectl_stdin(
            &self.kubeconfig(),
            cluster,
            &["apply", "-f", "-"],
            &ns.to_string(),
        )?;
        let mut spec = serde_json::json!({"selector": {"app": name},
            "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}]});
        if headless {
            spec["clusterIP"] = "None".into();
        }
        if c.service_cidrs.len() > 1 {
            spec["ipFamilyPolicy"] = "PreferDualStack".into();
        }
        let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec});
        kubectl_stdin(
            &self.kubeconfig(),
            cluster,
            &["apply", "-f", "-"],
            &svc.to_string(),
        )?;
        let nodes: Vec<&Node> = c.nodes.iter().filter(|n| n.role != Role::ControlPlane).collect();
        let mut out = Vec::new();
        for i in 0..replicas {
            let node = nodes[i % nodes.len()];
            let pod_name = format!("{name}-{i}");
            let pod = self.add_pod(cluster, &node.name, &pod_name, namespace)?;
            let cmd = vec![
                self.bin("subsea-sandbox"),
                "http-server".into(),
                "--port".into(),
                target.to_string(),
                "--pod".into(),
                pod_name.clone(),
                "--cluster".into(),
                cluster.into(),
            ];
            self.start_in_pod(cluster, &pod_name, "http", cmd)?;
            self.register_pod(&pod, &serde_json::json!({"app": name}), headless.then_some(name))?;
            out.push(pod);
        }
        Ok(out)
    }

    fn network(&mut self, t: &Topology) -> Result<()> {
        self.add_netns(&t.underlay_netns)?;
        let u = t.underlay_netns.as_str();
        sys::ip_in(u, &["link", "add", "br0", "type", "bridge"])?;
        sys::ip_in(u, &["link", "set", "br0", "up"])?;
        let attach = |ns: &str, port: &str, ip: Ipv4Addr| -> Result<()> {
            sys::ip(&[
                "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", u,
            ])?;
            sys::ip_in(u, &["link", "set", port, "master", "br0", "up"])?;
            sys::ip_in(
                ns,
                &[
                    "addr",
                    "add",
                    &format!("{ip}/{}", topology::UNDERLAY_PREFIX),
                    "dev",
                    "eth0",
                ],
            )?;
            sys::ip_in(ns, &["link", "set", "eth0", "up"])?;
            Ok(())
        };
        self.add_netns(&t.broker_netns)?;
        attach(&t.broker_netns, "broker", t.broker_ip)?;
        for c in &t.clusters {
            for n in &c.nodes {
                self.add_netns(&n.netns)?;
                attach(&n.netns, &format!("c{}n{}", c.index, n.index), n.ip)?;
                if let Some(ip6) = n.ip6 {
                    sys::ip_in(
                        &n.netns,
                        &["addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"],
                    )?;
                }
                self.node_network(c, n)?;
            }
        }
        Ok(())
    }

    fn node_network(&self, c: &Cluster, n: &Node) -> Result<()> {
        let ns = n.netns.as_str();
        sys::sysctl(
            ns,
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=2",
                "net.ipv4.conf.default.rp_filter=2",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )?;
        sys::ip_in(ns, &["link", "add", "cni0", "type", "bridge"])?;
        sys::ip_in(ns, &["addr", "add", &format!("{}/24", n.cni_ip), "dev", "cni0"])?;
        if let Some(v6) = n.cni_ip_v6 {
            sys::ip_in(ns, &["addr", "add", &format!("{v6}/64"), "dev", "cni0", "nodad"])?;
        }
        sys::ip_in(ns, &["link", "set", "cni0", "up"])?;
        // Pod ranges of the other nodes of the cluster, via their underlay address: the
        // sandbox's flat CNI, like kindnet.
        for other in c.nodes.iter().filter(|o| o.index != n.index) {
            sys::ip_in(
                ns,
                &["route", "add", &other.pod_cidr, "via", &other.ip.to_string()],
            )?;
            if let (Some(cidr), Some(via)) = (&other.pod_cidr_v6, other.ip6) {
                sys::ip_in(ns, &["-6", "route", "add", cidr, "via", &via.to_string()])?;
            }
        }
        Ok(())
    }

    fn apiserver(&mut self, who: &str, netns: &str, ip: Ipv4Addr, service_cidrs: &[String]) -> Result<()> {
        let dir = self.apiserver_dir(who);
        // Owner-only, as the server wants its data directory (it would tighten it, warning).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)?;
        let mut cmd = vec![
            self.bin("subsea"),
            "apiserver".into(),
            "--data-dir".into(),
            dir.to_string_lossy().into_owned(),
            "--listen".into(),
            format!("{ip}:6443"),
            "--tls-san".into(),
            "127.0.0.1".into(),
            "--context".into(),
            who.into(),
        ];
        if !service_cidrs.is_empty() {
            cmd.push("--service-cluster-ip-range".into());
            cmd.push(service_cidrs.join(","));
        }
        self.start(&format!("{who}/apiserver"), Some(netns), cmd, &[])?;
        Ok(())
    }

    fn apiservers(&mut self, t: &Topology) -> Result<()> {
        self.apiserver("broker", &t.broker_netns, t.broker_ip, &[])?;
        let mut targets = vec![("broker".to_string(), t.broker_netns.clone(), t.broker_ip)];
        for c in &t.clusters {
            let cp = c.control_plane();
            self.apiserver(&c.id, &cp.netns, cp.ip, &c.service_cidrs)?;
            targets.push((c.id.clone(), cp.netns.clone(), cp.ip));
        }
        // Reach each API server from the root namespace: a relay inside its namespace forwards a
        // Unix socket to it, and one relay in the root namespace forwards a loopback port to
        // each socket. No address or route in the root namespace is touched.
        let mut maps = Vec::new();
        for (who, netns, ip) in &targets {
            let sock = self.dir.join(format!("{who}.sock"));
            let _ = std::fs::remove_file(&sock);
            let cmd = vec![
                self.bin("subsea-sandbox"),
                "relay".into(),
                format!("unix:{}={ip}:6443", sock.display()),
            ];
            self.start(&format!("{who}/relay"), Some(netns), cmd, &[])?;
            let port = free_port()?;
            maps.push(format!("127.0.0.1:{port}=unix:{}", sock.display()));
            self.state.ports.push((who.clone(), port));
        }
        let mut cmd = vec![self.bin("subsea-sandbox"), "relay".into()];
        cmd.extend(maps);
        self.start("relay", None, cmd, &[])?;
        for (who, _, _) in &targets {
            let kc = self.inner_kubeconfig(who);
            wait_for(
                &format!(
                    "the {who} API server (log: {})",
                    self.logs().join(format!("{who}-apiserver.log")).display()
                ),
                Duration::from_secs(30),
                || kc.exists(),
            )?;
        }
        self.write_kubeconfig()?;
        for (who, _, _) in &targets {
            let kc = self.kubeconfig();
            wait_for(
                &format!("the {who} API server through the relay"),
                Duration::from_secs(30),
                || kubectl_ok(&kc, who, &["get", "--raw", "/readyz"]),
            )?;
        }
        Ok(())
    }

    fn write_kubeconfig(&self) -> Result<()> {
        let mut clusters = Vec::new();
        let mut users = Vec::new();
        let mut contexts = Vec::new();
        for (who, port) in &self.state.ports {
            let text = std::fs::read_to_string(self.inner_kubeconfig(who))?;
            let kc: serde_yaml::Value = serde_yaml::from_str(&text)?;
            let ca = kc["clusters"][0]["cluster"]["certificate-authority-data"].clone();
            let token = kc["users"][0]["user"]["token"].clone();
            clusters.push(serde_json::json!({"name": who, "cluster": {"server": format!("https://127.0.0.1:{port}"), "certificate-authority-data": ca}}));
            users.push(serde_json::json!({"name": format!("{who}-admin"), "user": {"token": token}}));
            contexts.push(serde_json::json!({"name": who, "context": {"cluster": who, "user": format!("{who}-admin"), "namespace": "default"}}));
        }
        let kc = serde_json::json!({"apiVersion": "v1", "kind": "Config", "clusters": clusters, "users": users,
            "contexts": contexts, "current-context": self.state.ports.get(1).map(|p| p.0.clone()).unwrap_or_default()});
        write_secret(&self.kubeconfig(), &serde_yaml::to_string(&kc)?)
    }

    fn register_nodes(&self, t: &Topology) -> Result<()> {
        for c in &t.clusters {
            let mut items = Vec::new();
            for n in &c.nodes {
                let mut labels = serde_json::json!({"kubernetes.io/hostname": n.name});
                match n.role {
                    Role::ControlPlane => labels["node-role.kubernetes.io/control-plane"] = "".into(),
                    Role::Gateway => labels["submariner.io/gateway"] = "true".into(),
                    Role::Worker => labels["node-role.kubernetes.io/worker"] = "".into(),
                }
                let mut pod_cidrs = vec![n.pod_cidr.clone()];
                pod_cidrs.extend(n.pod_cidr_v6.clone());
                items.push(serde_json::json!({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": n.name, "labels": labels},
                    "spec": {"podCIDR": n.pod_cidr, "podCIDRs": pod_cidrs},
                    "status": {"addresses": [{"type": "InternalIP", "address": n.ip.to_string()}, {"type": "Hostname", "address": n.name}],
                        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}}}}));
            }
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            kubectl_stdin(
                &self.kubeconfig(),
                &c.id,
                &["apply", "-f", "-"],
                &list.to_string(),
            )?;
            // The cluster DNS address pods are configured with, as kubeadm reserves it.
            let dns = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns"}},
                 "spec": {"clusterIP": topology::dns_ip(c).to_string(), "selector": {"k8s-app": "kube-dns"},
                    "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}]});
            kubectl_stdin(&self.kubeconfig(), &c.id, &["apply", "-f", "-"], &dns.to_string())?;
        }
        Ok(())
    }

    fn deploy_and_join(&mut self, t: &Topology) -> Result<()> {
        let info = self.dir.join("broker-info.subm");
        let log = self.logs().join("subctl.log");
        let mut out = String::new();
        out.push_str(&sys::exec_in(
            &t.broker_netns,
            &[
                &self.bin("subctl"),
                "deploy-broker",
                "--kubeconfig",
                &self.inner_kubeconfig("broker").to_string_lossy(),
                "--output",
                &info.to_string_lossy(),
            ],
        )?);
        for c in &t.clusters {
            out.push_str(&sys::exec_in(
                &c.control_plane().netns,
                &[
                    &self.bin("subctl"),
                    "join",
                    &info.to_string_lossy(),
                    "--kubeconfig",
                    &self.inner_kubeconfig(&c.id).to_string_lossy(),
                    "--clusterid",
                    &c.id,
                    "--clustercidr",
                    &c.pod_cidrs.join(","),
                    "--servicecidr",
                    &c.service_cidrs.join(","),
                    "--natt=false",
                ],
            )?);
        }
        std::fs::write(log, out)?;
        Ok(())
    }

    /// Adds a pod on a node: a namespace with `eth0` on the node's pod bridge.
    pub fn add_pod(&mut self, cluster: &str, node: &str, name: &str, namespace: &str) -> Result<Pod> {
        let t = self.topology()?.clone();
        let c = t
            .cluster(cluster)
            .ok_or_else(|| anyhow!("no cluster {cluster:?} in the sandbox"))?;
        let n = c
            .nodes
            .iter()
            .find(|n| n.name == node)
            .ok_or_else(|| anyhow!("no node {node:?} in {cluster}"))?;
        if self
            .state
            .pods
            .iter()
            .any(|p| p.cluster == cluster && p.name == name && p.namespace == namespace)
        {
            bail!("pod {namespace}/{name} already exists in {cluster}");
        }
        let k = self.state.pods.iter().filter(|p| p.node == node).count() as u8 + 1;
        if k > MAX_STATIC_PODS {
            bail!("node {node} is full ({MAX_STATIC_PODS} pods)");
        }
        let netns = pod_netns(&t, c, n, k);
        self.add_netns(&netns)?;
        let ips = plumb_pod(c, n, k, &netns, namespace)?;
        let pod = Pod {
            name: name.into(),
            namespace: namespace.into(),
            cluster: cluster.into(),
            node: node.into(),
            netns,
            ips,
        };
        self.state.pods.push(pod.clone());
        self.save()?;
        Ok(pod)
    }

    /// Kills a process the sandbox started (`SIGKILL`, as a crash) and waits until it is gone.
    pub fn kill(&self, label: &str) -> Result<()> {
        let p = self.proc(label)?;
        sys::signal_group(p.pid, "KILL");
        wait_for(&format!("{label} to exit"), Duration::from_secs(5), || {
            !sys::alive(p.pid)
        })
    }

    /// Starts a killed process again with the same command (its log is appended to).
    pub fn restart(&mut self, label: &str) -> Result<()> {
        let p = self.proc(label)?.clone();
        let env: Vec<(&str, &str)> = p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let pid = sys::spawn(p.netns.as_deref(), &p.cmd, &p.log, &env, true)?;
        if let Some(slot) = self.state.procs.iter_mut().find(|q| q.label == label) {
            slot.pid = pid;
        }
        self.save()
    }

    fn proc(&self, label: &str) -> Result<&Proc> {
        self.state
            .procs
            .iter()
            .find(|p| p.label == label)
            .ok_or_else(|| anyhow!("the sandbox started no process {label:?}"))
    }

    /// Starts a long-running process inside a pod.
    pub fn start_in_pod(&mut self, cluster: &str, pod: &str, label: &str, cmd: Vec<String>) -> Result<u32> {
        let netns = self.pod(cluster, pod)?.netns.clone();
        self.start(&format!("{cluster}-{pod}/{label}"), Some(&netns), cmd, &[])
    }

    /// Runs kubectl against one of the sandbox's contexts (`broker`, `cluster1`, …).
    pub fn kubectl(&self, context: &str, args: &[&str]) -> Result<String> {
        kubectl_stdin(&self.kubeconfig(), context, args, "")
    }

    /// Path of one of the sandbox's binaries.
    pub fn binary(&self, name: &str) -> String {
        self.bin(name)
    }

    /// The argv that runs `cmd` in a pod's or node's namespace. On a node, the node's own
    /// WireGuard UAPI directory is mounted over /run/wireguard (in a private mount namespace),
    /// so `wg show submariner` talks to that node's gateway.
    pub fn exec_argv(&self, cluster: &str, target: &str, cmd: &[String]) -> Result<Vec<String>> {
        if let Ok(p) = self.pod(cluster, target) {
            let mut v = vec!["ip".to_string(), "netns".into(), "exec".into(), p.netns.clone()];
            v.extend(cmd.iter().cloned());
            return Ok(v);
        }
        let node = self
            .topology()?
            .cluster(cluster)
            .and_then(|c| c.nodes.iter().find(|n| n.name == target))
            .with_context(|| {
                format!("no pod or node {target:?} in cluster {cluster:?} (see `subsea-sandbox status`)")
            })?;
        let mut v: Vec<String> = ["ip", "netns", "exec", &node.netns]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(self.on_node(node, cmd)?);
        Ok(v)
    }

    /// Wraps `cmd` (to run in `node`'s namespace) so that it sees that node's WireGuard UAPI
    /// directory over /run/wireguard, in a private mount namespace.
    pub fn on_node(&self, node: &Node, cmd: &[String]) -> Result<Vec<String>> {
        let uapi = self.dir.join("wireguard").join(&node.name);
        std::fs::create_dir_all(&uapi)?;
        std::fs::create_dir_all(subsea_wireguard_dir())?;
        let mut v: Vec<String> = ["unshare", "-m", "sh", "-c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push(format!(
            "mount --bind \"$0\" {} && exec \"$@\"",
            subsea_wireguard_dir()
        ));
        v.push(uapi.to_string_lossy().into_owned());
        v.extend(cmd.iter().cloned());
        Ok(v)
    }

    /// Finds a pod.
    pub fn pod(&self, cluster: &str, name: &str) -> Result<Pod> {
        match self
            .state
            .pods
            .iter()
            .find(|p| p.cluster == cluster && p.name == name)
        {
            Some(p) => Ok(p.clone()),
            None => kubelet::find(&self.dir, cluster, name),
        }
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

/// Where wireguard-tools looks for userspace devices.
fn subsea_wireguard_dir() -> &'static str {
    "/run/wireguard"
}

/// The port of a node's kubelet (the log endpoint the API server proxies to).
pub const KUBELET_PORT: u16 = 10250;

fn subsea_broker_namespace() -> &'static str {
    "submariner-operator"
}

/// Creates Pods (or replaces their spec) and sets their status, as a kubelet reports running
/// pods.
async fn register_running(kubeconfig: &Path, context: &str, pods: Vec<serde_json::Value>) -> Result<()> {
    use kube::api::{Api, Patch, PatchParams};
    let client = subsea_runtime::client::local(Some(kubeconfig), Some(context)).await?;
    for p in pods {
        let ns = p["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = p["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &ns);
        let pp = PatchParams::apply("subsea-sandbox").force();
        api.patch(&name, &pp, &Patch::Apply(&p))
            .await
            .with_context(|| format!("registering pod {ns}/{name}"))?;
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": p["status"]})),
        )
        .await
        .with_context(|| format!("status of pod {ns}/{name}"))?;
    }
    Ok(())
}

/// Pods `add-pod`/`deploy` may put on one node; the kubelet stand-in numbers its pods above.
pub const MAX_STATIC_PODS: u8 = 99;

/// The network namespace of the `k`th pod slot on a node.
pub fn pod_netns(t: &Topology, c: &Cluster, n: &Node, k: u8) -> String {
    format!("{}-c{}-p{}-{k}", t.name, c.index, n.index)
}

/// Wires an existing, empty namespace as pod slot `k` of node `n`: `eth0` on the node's pod
/// bridge, addresses, default routes and the pod's resolv.conf. Returns its addresses (IPv4
/// first).
pub fn plumb_pod(c: &Cluster, n: &Node, k: u8, netns: &str, namespace: &str) -> Result<Vec<String>> {
    let ip = topology::pod_ip(n, k).to_string();
    let port = format!("p{k}");
    sys::ip(&[
        "link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", &port, "netns", &n.netns,
    ])?;
    sys::ip_in(&n.netns, &["link", "set", &port, "master", "cni0", "up"])?;
    sys::ip_in(netns, &["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
    let mut ips = vec![ip];
    if let (Some(v6), Some(gw6)) = (topology::pod_ip_v6(n, k), n.cni_ip_v6) {
        sys::ip_in(
            netns,
            &["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"],
        )?;
        sys::ip_in(netns, &["link", "set", "eth0", "up"])?;
        sys::ip_in(netns, &["-6", "route", "add", "default", "via", &gw6.to_string()])?;
        ips.push(v6.to_string());
    }
    sys::ip_in(netns, &["link", "set", "eth0", "up"])?;
    sys::ip_in(
        netns,
        &["route", "replace", "default", "via", &n.cni_ip.to_string()],
    )?;
    // Pod DNS, as the kubelet writes it: `ip netns exec` bind-mounts this over /etc/resolv.conf.
    let etc = Path::new("/etc/netns").join(netns);
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("resolv.conf"),
        format!(
            "search {namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {}\noptions ndots:5\n",
            topology::dns_ip(c)
        ),
    )?;
    Ok(ips)
}

/// Writes a file only its owner can read.
pub fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn kubectl_ok(kc: &Path, context: &str, args: &[&str]) -> bool {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(["--context", context])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs kubectl with `input` on stdin.
pub fn kubectl_stdin(kc: &Path, context: &str, args: &[&str], input: &str) -> Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(["--context", context])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run kubectl (is it installed?)")?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("kubectl stdin"))?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
