//! Each cluster's control plane: API servers and the relay that reaches them, the kubeconfig, Node objects, `subctl deploy-broker`/`join`, and the component Pods a real cluster would show.

use super::*;

/// Creates Pods (or replaces their spec) and sets their status, as a kubelet reports running
/// pods.
pub(crate) async fn register_running(
    kubeconfig: &Path,
    context: &str,
    pods: Vec<serde_json::Value>,
) -> Result<()> {
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

pub(crate) fn subsea_broker_namespace() -> &'static str {
    "submariner-operator"
}

/// The port of a node's kubelet (the log endpoint the API server proxies to).
pub const KUBELET_PORT: u16 = 10250;

impl Sandbox {
    pub(crate) fn apiserver(
        &mut self,
        who: &str,
        netns: &str,
        ip: Ipv4Addr,
        service_cidrs: &[String],
    ) -> Result<()> {
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

    pub(crate) fn apiservers(&mut self, t: &Topology) -> Result<()> {
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

    pub(crate) fn write_kubeconfig(&self) -> Result<()> {
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

    pub(crate) fn register_nodes(&self, t: &Topology) -> Result<()> {
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

    pub(crate) fn deploy_and_join(&mut self, t: &Topology) -> Result<()> {
        let info = self.dir.join("broker-info.subm");
        let log = self.logs().join("subctl.log");
        let mut out = String::new();
        let (subctl, broker_kc, info_path) = (
            self.bin("subctl"),
            self.inner_kubeconfig("broker").to_string_lossy().into_owned(),
            info.to_string_lossy().into_owned(),
        );
        let mut deploy = vec![
            subctl.as_str(),
            "deploy-broker",
            "--kubeconfig",
            &broker_kc,
            "--output",
            &info_path,
        ];
        if self.state.globalnet {
            deploy.push("--globalnet");
        }
        if self.state.clusterset_ip {
            deploy.push("--enable-clusterset-ip");
        }
        out.push_str(&sys::exec_in(&t.broker_netns, &deploy)?);
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

    /// The components the sandbox runs as processes, registered as the Pods a real cluster
    /// would show in submariner-operator (names and labels of the DaemonSets and Deployments in
    /// `manifests/deploy/`), each with its process log as the pod's log: so `kubectl get pods`,
    /// `kubectl logs` and `subctl gather` see them.
    pub(crate) fn register_components(&self, c: &Cluster) -> Result<()> {
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
            if n.role == Role::Gateway && self.state.globalnet {
                wanted.push((
                    format!("submariner-globalnet-{}", n.name),
                    "submariner-globalnet",
                    n,
                    n.ip.to_string(),
                    format!("{}/globalnet", n.name),
                ));
            }
            wanted.push((
                format!("submariner-clusterset-ip-{}", n.name),
                "submariner-clusterset-ip",
                n,
                n.ip.to_string(),
                format!("{}/clusterset-ip", n.name),
            ));
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
                "metadata": {"name": name, "namespace": subsea_broker_namespace(), "labels": {"app": app},
                    "annotations": {kubelet::PROCESS_ANNOTATION: label},
                    // Deleted, the pod stays Terminating until its process stopped, as a
                    // kubelet's pod does until its containers stopped.
                    "finalizers": [kubelet::PROCESS_ANNOTATION]},
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
}
