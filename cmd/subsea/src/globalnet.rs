//! `subsea globalnet`.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct GlobalnetArgs {
    /// Kubeconfig of the local cluster (else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// This node's name: the daemon acts while it is the cluster's active gateway.
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
}

pub async fn run(a: GlobalnetArgs) -> Result<()> {
    subsea_globalnet::run(subsea_globalnet::Options {
        kubeconfig: a.kubeconfig,
        context: a.context,
        hostname: a.node_name.unwrap_or_else(crate::gateway::hostname),
    })
    .await
    .map_err(Into::into)
}
