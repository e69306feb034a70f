//! Service discovery in each cluster: the EndpointSlice stand-in, the Lighthouse agent and the Lighthouse DNS server behind `kube-dns`.

use super::*;

impl Sandbox {
    /// The control-plane side of a cluster's service discovery: the EndpointSlice stand-in,
    /// the Lighthouse agent, and the Lighthouse DNS server as the pod behind `kube-dns`.
    pub(crate) fn service_discovery(&mut self, c: &Cluster) -> Result<()> {
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
}
