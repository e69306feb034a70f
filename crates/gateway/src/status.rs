//! The Gateway object's status as a pure function of the plan, the tunnel counters and the
//! health checks.

use std::time::Duration;

use subsea_api::submariner::{Connection, EndpointSpec, GatewayStatus, LatencyRtt};
use subsea_plan::{Peer, Plan};
use subsea_wg::PeerStats;

/// A handshake older than this means the peer is gone (WireGuard's reject-after time plus
/// slack, as Submariner's driver uses).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(130);

/// What the health checker knows about one remote endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    /// Whether pings are failing.
    pub failing: bool,
    /// The pinger's words when failing.
    pub message: String,
    /// RTT statistics.
    pub rtt: Option<LatencyRtt>,
}

/// One connection from the tunnel's view, then the health check's.
fn connection(
    peer: &Peer,
    spec: &EndpointSpec,
    stats: Option<&PeerStats>,
    health: Option<&Health>,
) -> Connection {
    let (mut status, mut message) = match stats.and_then(|s| s.last_handshake.map(|h| (s, h))) {
        None => ("connecting", "no initial handshake yet".to_string()),
        Some((_, age)) if age > HANDSHAKE_TIMEOUT => {
            ("error", format!("no handshake for {} seconds", age.as_secs()))
        }
        Some((s, _)) => (
            "connected",
            format!("Rx={} Bytes, Tx={} Bytes", s.rx_bytes, s.tx_bytes),
        ),
    };
    if let Some(h) = health {
        if h.failing && status == "connected" {
            status = "error";
            message = h.message.clone();
        } else if !h.failing && h.rtt.is_some() && status == "error" {
            // Pings get through, so the tunnel works whatever the counters say.
            status = "connected";
        }
    }
    Connection {
        status: status.into(),
        status_message: message,
        endpoint: spec.clone(),
        using_ip: peer.endpoint.ip().to_string(),
        using_nat: peer.using_nat,
        latency_rtt: health.and_then(|h| h.rtt.clone()),
    }
}

/// The status of this gateway. `remote` gives each planned peer's Endpoint spec (by cluster);
/// `health` the health checker's view by cable name.
pub fn gateway_status(
    active: bool,
    local: &EndpointSpec,
    plan: &Plan,
    remote: &dyn Fn(&str) -> Option<EndpointSpec>,
    stats: &[PeerStats],
    health: &dyn Fn(&str) -> Option<Health>,
    failure: &str,
) -> GatewayStatus {
    let connections = if active {
        let mut c: Vec<Connection> = plan
            .peers
            .iter()
            .filter_map(|p| {
                let spec = remote(&p.cluster_id)?;
                let st = stats.iter().find(|s| s.public_key == p.public_key);
                Some(connection(p, &spec, st, health(&p.cable_name).as_ref()))
            })
            .collect();
        c.extend(plan.skipped.iter().filter_map(|s| {
            Some(Connection {
                status: "error".into(),
                status_message: s.reason.clone(),
                endpoint: remote(&s.cluster_id)?,
                ..Default::default()
            })
        }));
        c
    } else {
        Vec::new()
    };
    GatewayStatus {
        version: env!("CARGO_PKG_VERSION").into(),
        ha_status: if active { "active" } else { "passive" }.into(),
        local_endpoint: local.clone(),
        status_failure: failure.into(),
        connections,
    }
}

/// Whether a Gateway last refreshed at `stamp` (unix seconds) is stale at `now`: three missed
/// refreshes, as Submariner's 15 s for a 5 s period.
pub fn is_stale(stamp: Option<u64>, now: u64, period: Duration) -> bool {
    stamp.is_none_or(|t| now.saturating_sub(t) > 3 * period.as_secs())
}

/// The connection state per remote cluster for the broker heartbeat: the best state among a
/// cluster's endpoints (one connected endpoint is enough to reach it).
pub fn connections(st: &GatewayStatus) -> subsea_api::extdns::Connections {
    let rank = |s: &str| match s {
        "connected" => 2,
        "connecting" => 1,
        _ => 0,
    };
    let mut out = subsea_api::extdns::Connections::new();
    for c in &st.connections {
        let e = out
            .entry(c.endpoint.cluster_id.clone())
            .or_insert_with(|| c.status.clone());
        if rank(&c.status) > rank(e) {
            *e = c.status.clone();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer {
            cluster_id: "c2".into(),
            cable_name: "cable".into(),
            public_key: [7; 32],
            endpoint: "172.30.0.12:4500".parse().expect("addr"),
            using_nat: false,
            allowed_ips: vec![],
        }
    }

    fn stats(handshake: Option<u64>) -> PeerStats {
        PeerStats {
            public_key: [7; 32],
            endpoint: None,
            last_handshake: handshake.map(Duration::from_secs),
            tx_bytes: 5,
            rx_bytes: 9,
            spoofed: 0,
            allowed_ips: vec![],
            keepalive: Some(10),
        }
    }

    fn status(st: Option<PeerStats>, health: Option<Health>) -> Connection {
        let plan = Plan {
            peers: vec![peer()],
            skipped: vec![],
        };
        let spec = EndpointSpec {
            cluster_id: "c2".into(),
            ..Default::default()
        };
        let s = gateway_status(
            true,
            &EndpointSpec::default(),
            &plan,
            &|_| Some(spec.clone()),
            &st.into_iter().collect::<Vec<_>>(),
            &|_| health.clone(),
            "",
        );
        assert_eq!(s.ha_status, "active");
        s.connections.into_iter().next().expect("one connection")
    }

    #[test]
    fn handshake_age_decides_the_tunnel_state() {
        assert_eq!(status(Some(stats(None)), None).status, "connecting");
        let c = status(Some(stats(Some(3))), None);
        assert_eq!(
            (c.status.as_str(), c.status_message.as_str()),
            ("connected", "Rx=9 Bytes, Tx=5 Bytes")
        );
        assert_eq!(c.using_ip, "172.30.0.12");
        let c = status(Some(stats(Some(200))), None);
        assert_eq!(
            (c.status.as_str(), c.status_message.as_str()),
            ("error", "no handshake for 200 seconds")
        );
    }

    #[test]
    fn failing_pings_override_a_connected_tunnel() {
        let h = Health {
            failing: true,
            message: "Failed to successfully ping the remote endpoint IP \"10.130.1.1\"".into(),
            rtt: None,
        };
        let c = status(Some(stats(Some(3))), Some(h));
        assert_eq!(c.status, "error");
        assert!(c.status_message.contains("10.130.1.1"));
    }

    #[test]
    fn passive_gateways_report_no_connections_and_staleness_is_three_periods() {
        let s = gateway_status(
            false,
            &EndpointSpec::default(),
            &Plan::default(),
            &|_| None,
            &[],
            &|_| None,
            "",
        );
        assert_eq!(s.ha_status, "passive");
        assert!(s.connections.is_empty());
        let p = Duration::from_secs(5);
        assert!(!is_stale(Some(100), 115, p));
        assert!(is_stale(Some(100), 116, p));
        assert!(is_stale(None, 0, p));
    }

    #[test]
    fn a_cluster_counts_as_connected_when_one_of_its_endpoints_is() {
        let conn = |cluster: &str, status: &str| Connection {
            status: status.into(),
            endpoint: EndpointSpec {
                cluster_id: cluster.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let st = GatewayStatus {
            connections: vec![
                conn("c2", "error"),
                conn("c2", "connected"),
                conn("c3", "connecting"),
            ],
            ..Default::default()
        };
        let c = connections(&st);
        assert_eq!(c.get("c2").map(String::as_str), Some("connected"));
        assert_eq!(c.get("c3").map(String::as_str), Some("connecting"));
        assert_eq!(c.len(), 2);
    }
}
