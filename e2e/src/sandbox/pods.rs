//! Pods: adding them on nodes, registering them as Pod objects, deployments behind a Service, and running commands in pods or on nodes.

use super::*;

/// Where wireguard-tools looks for userspace devices.
pub(crate) fn subsea_wireguard_dir() -> &'static str {
    "/run/wireguard"
}

impl Sandbox {
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
            // By the pod's own namespace: pods of one name may live in several namespaces.
            let label = if namespace == "default" {
                format!("{cluster}-{pod_name}/http")
            } else {
                format!("{cluster}-{namespace}-{pod_name}/http")
            };
            let netns = pod.netns.clone();
            self.start(&label, Some(&netns), cmd, &[])?;
            self.register_pod(&pod, &serde_json::json!({"app": name}), headless.then_some(name))?;
            out.push(pod);
        }
        Ok(out)
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
}
