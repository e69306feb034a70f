//! Globalnet in the sandbox: `subsea globalnet` on each gateway node, beside the gateway it
//! follows (it acts only while its node is the cluster's active gateway).

use super::*;

impl Sandbox {
    /// Starts the Globalnet daemon on every gateway node of `c`.
    pub(crate) fn globalnet(&mut self, c: &Cluster) -> Result<()> {
        for n in c.nodes.iter().filter(|n| n.role == Role::Gateway) {
            let cmd = vec![
                self.bin("subsea"),
                "globalnet".into(),
                "--kubeconfig".into(),
                self.inner_kubeconfig(&c.id).to_string_lossy().into_owned(),
                "--node-name".into(),
                n.name.clone(),
            ];
            self.start(
                &format!("{}/globalnet", n.name),
                Some(&n.netns),
                cmd,
                &[("RUST_LOG", "info")],
            )?;
        }
        Ok(())
    }
}
