//! Which clusters count as reachable. Each active gateway renews a heartbeat Lease on the
//! broker carrying its connection state to every other cluster. A cluster is down when its
//! heartbeat has expired, or when the other clusters that report on it (with live heartbeats)
//! all say they cannot reach it. A cluster nobody reports on, with no expired heartbeat, is up:
//! a lone cluster, or one whose gateway predates heartbeats.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use subsea_api::extdns::{CONNECTIONS_ANNOTATION, Connections, HEARTBEAT_PREFIX};

/// One cluster's heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    /// The cluster.
    pub cluster: String,
    /// Last renewal, seconds since the epoch.
    pub renewed: f64,
    /// How long a renewal counts.
    pub seconds: f64,
    /// Its gateway's state towards each other cluster.
    pub connections: Connections,
}

/// A heartbeat read from its Lease: `None` for other Leases.
pub fn heartbeat(lease: &Lease) -> Option<Heartbeat> {
    let name = lease.metadata.name.as_deref()?;
    name.strip_prefix(HEARTBEAT_PREFIX)?;
    let cluster = lease
        .metadata
        .labels
        .as_ref()?
        .get(subsea_api::labels::CLUSTER_ID_LABEL)?
        .clone();
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0.as_microsecond() as f64 / 1e6;
    let connections = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONNECTIONS_ANNOTATION))
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    Some(Heartbeat {
        cluster,
        renewed,
        seconds: f64::from(spec.lease_duration_seconds.unwrap_or(0).max(0)),
        connections,
    })
}

/// The clusters that are down, with why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    down: BTreeMap<String, String>,
}

impl Health {
    /// Whether `cluster` counts as reachable.
    pub fn is_up(&self, cluster: &str) -> bool {
        !self.down.contains_key(cluster)
    }

    /// Why `cluster` is down.
    pub fn reason(&self, cluster: &str) -> Option<&str> {
        self.down.get(cluster).map(String::as_str)
    }

    /// Every down cluster and why.
    pub fn down(&self) -> &BTreeMap<String, String> {
        &self.down
    }
}

/// The health of every cluster at `now` (seconds since the epoch).
pub fn health(beats: &[Heartbeat], now: f64) -> Health {
    let live = |b: &Heartbeat| b.renewed + b.seconds >= now;
    let mut down = BTreeMap::new();
    for b in beats.iter().filter(|b| !live(b)) {
        down.insert(
            b.cluster.clone(),
            format!(
                "its gateway's heartbeat expired {:.0}s ago",
                now - b.renewed - b.seconds
            ),
        );
    }
    let mut reports: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for b in beats.iter().filter(|b| live(b)) {
        for (peer, state) in &b.connections {
            if *peer != b.cluster {
                reports.entry(peer).or_default().push((&b.cluster, state));
            }
        }
    }
    for (cluster, says) in reports {
        if down.contains_key(cluster) || says.iter().any(|(_, s)| *s == "connected") {
            continue;
        }
        let words: Vec<String> = says.iter().map(|(by, s)| format!("{by}: {s}")).collect();
        down.insert(
            cluster.to_string(),
            format!(
                "no other cluster's gateway is connected to it ({})",
                words.join(", ")
            ),
        );
    }
    Health { down }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(cluster: &str, renewed: f64, conns: &[(&str, &str)]) -> Heartbeat {
        Heartbeat {
            cluster: cluster.into(),
            renewed,
            seconds: 10.0,
            connections: conns
                .iter()
                .map(|(c, s)| (c.to_string(), s.to_string()))
                .collect(),
        }
    }

    #[test]
    fn connected_clusters_are_up() {
        let h = health(
            &[
                beat("c1", 100.0, &[("c2", "connected")]),
                beat("c2", 100.0, &[("c1", "connected")]),
            ],
            105.0,
        );
        assert!(h.is_up("c1") && h.is_up("c2"));
        assert!(h.down().is_empty());
    }

    #[test]
    fn an_expired_heartbeat_is_down_and_its_old_reports_do_not_count() {
        // c2 was cut off: its last report still says c1 is fine, and c1 sees it failing.
        let h = health(
            &[
                beat("c1", 100.0, &[("c2", "error")]),
                beat("c2", 80.0, &[("c1", "error")]),
            ],
            105.0,
        );
        assert!(h.is_up("c1"), "c2's expired view of c1 is ignored");
        assert!(h.reason("c2").expect("down").contains("expired 15s ago"));
    }

    #[test]
    fn a_cluster_every_peer_fails_to_reach_is_down_even_with_a_live_heartbeat() {
        let h = health(
            &[
                beat("c1", 100.0, &[("c2", "connected"), ("c3", "error")]),
                beat("c2", 100.0, &[("c1", "connected"), ("c3", "connecting")]),
                beat("c3", 100.0, &[("c1", "error"), ("c2", "error")]),
            ],
            101.0,
        );
        assert!(h.is_up("c1") && h.is_up("c2"));
        let why = h.reason("c3").expect("c3 is down");
        assert!(
            why.contains("c1: error") && why.contains("c2: connecting"),
            "{why}"
        );
    }

    #[test]
    fn one_connected_peer_is_enough_and_unreported_clusters_are_up() {
        let h = health(
            &[
                beat("c1", 100.0, &[("c3", "connected")]),
                beat("c2", 100.0, &[("c3", "error")]),
            ],
            101.0,
        );
        assert!(h.is_up("c3"));
        assert!(
            h.is_up("c9"),
            "no heartbeat and no report: nothing says it is down"
        );
    }

    #[test]
    fn heartbeats_are_read_from_their_leases_only() {
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "subsea-gateway-c1", "labels": {"submariner-io/clusterID": "c1"},
                "annotations": {CONNECTIONS_ANNOTATION: "{\"c2\":\"connected\"}"}},
            "spec": {"holderIdentity": "gw", "leaseDurationSeconds": 10, "renewTime": "2026-12-02T10:00:00.500000Z"}}))
        .expect("lease");
        let b = heartbeat(&lease).expect("a heartbeat");
        assert_eq!((b.cluster.as_str(), b.seconds), ("c1", 10.0));
        assert_eq!(b.connections.get("c2").map(String::as_str), Some("connected"));
        assert!((b.renewed - 1_796_205_600.5).abs() < 1e-3);
        let mut other = lease.clone();
        other.metadata.name = Some("submariner-gateway-lock".into());
        assert_eq!(heartbeat(&other), None);
    }
}
