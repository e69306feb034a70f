//! The active gateway's heartbeat on the broker: a Lease per cluster whose renewals say the
//! cluster is alive and whose annotation carries the connection state to every other cluster.
//! The external DNS publisher reads it to withdraw an unreachable cluster's addresses (the
//! Gateway objects it would otherwise need live in each cluster, out of its reach).

use super::*;
use subsea_api::extdns::{CONNECTIONS_ANNOTATION, heartbeat_name};

/// How often the connection states are looked at: a change goes out within this.
const CHECK: Duration = Duration::from_secs(1);
/// Renewal period without a change.
const RENEW: Duration = Duration::from_secs(3);
/// How long a heartbeat counts as alive without renewal.
pub(super) const LEASE_SECONDS: i32 = 10;

pub(super) async fn heartbeat(shared: Arc<Shared>) {
    let s = &shared.settings;
    let leases: Api<Lease> = Api::namespaced(shared.broker.clone(), &s.broker_namespace);
    let name = heartbeat_name(&s.cluster_id);
    let pp = PatchParams::apply(MANAGER).force();
    let mut sent: Option<(subsea_api::extdns::Connections, tokio::time::Instant)> = None;
    let mut refused = false;
    loop {
        let conns = status::connections(&current_status(&shared).0);
        let due = sent
            .as_ref()
            .is_none_or(|(c, at)| *c != conns || at.elapsed() >= RENEW);
        if due {
            let lease = serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "labels": {CLUSTER_ID_LABEL: s.cluster_id},
                    "annotations": {CONNECTIONS_ANNOTATION: serde_json::to_string(&conns).unwrap_or_default()}},
                "spec": {"holderIdentity": shared.node.hostname, "leaseDurationSeconds": LEASE_SECONDS,
                    "renewTime": election::micro(Some(now_secs()))}});
            match leases.patch(&name, &pp, &Patch::Apply(&lease)).await {
                Ok(_) => {
                    if sent.as_ref().is_none_or(|(c, _)| *c != conns) {
                        tracing::info!(connections = ?conns, "heartbeat: connection states published on the broker");
                    }
                    sent = Some((conns, tokio::time::Instant::now()));
                    refused = false;
                }
                Err(kube::Error::Api(e)) if e.code == 403 => {
                    if !refused {
                        tracing::warn!(error = %e.message, "the broker refuses this cluster's heartbeat Lease; its Role predates heartbeats: rerun `subctl deploy-broker` to update it (only the external DNS publisher needs the heartbeat)");
                    }
                    refused = true;
                }
                Err(e) => tracing::debug!(error = %e, "cannot renew the heartbeat; retrying"),
            }
        }
        tokio::time::sleep(CHECK).await;
    }
}
