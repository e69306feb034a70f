//! Prometheus metrics with Submariner's names (`submariner:pkg/cable/metrics.go`), rendered as
//! text from the Gateway status and the tunnel counters.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use subsea_api::submariner::GatewayStatus;
use subsea_wg::PeerStats;

/// Submariner's default metrics port.
pub const DEFAULT_PORT: u16 = 32780;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn parse_go_duration(s: &str) -> Option<f64> {
    let (num, unit) = s
        .find(|c: char| c.is_alphabetic() || c == 'µ')
        .map(|i| s.split_at(i))?;
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "ns" => 1e-9,
        "µs" | "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return None,
    };
    Some(n * scale)
}

/// The exposition text. `stats_for` gives a connection's tunnel counters by remote public key.
pub fn render(
    status: &GatewayStatus,
    stats_for: &dyn Fn(&str) -> Option<PeerStats>,
    now: SystemTime,
) -> String {
    let local = &status.local_endpoint;
    let mut s = String::new();
    let series = |c: &subsea_api::submariner::Connection| {
        format!(
            "cable_driver=\"{}\",local_cluster=\"{}\",local_hostname=\"{}\",local_endpoint_ip=\"{}\",remote_cluster=\"{}\",remote_hostname=\"{}\",remote_endpoint_ip=\"{}\"",
            escape(&local.backend),
            escape(&local.cluster_id),
            escape(&local.hostname),
            escape(&local.private_ip),
            escape(&c.endpoint.cluster_id),
            escape(&c.endpoint.hostname),
            escape(&c.using_ip)
        )
    };
    s.push_str("# HELP submariner_connections Number of connections and corresponding status\n# TYPE submariner_connections gauge\n");
    for c in &status.connections {
        let _ = writeln!(
            s,
            "submariner_connections{{{},status=\"{}\"}} 1",
            series(c),
            escape(&c.status)
        );
    }
    let mut tx = String::new();
    let mut rx = String::new();
    let mut est = String::new();
    for c in &status.connections {
        let key = c
            .endpoint
            .backend_config
            .get("publicKey")
            .cloned()
            .unwrap_or_default();
        if let Some(st) = stats_for(&key) {
            let _ = writeln!(tx, "submariner_gateway_tx_bytes{{{}}} {}", series(c), st.tx_bytes);
            let _ = writeln!(rx, "submariner_gateway_rx_bytes{{{}}} {}", series(c), st.rx_bytes);
            if let Some(at) = st.last_handshake.and_then(|age| now.checked_sub(age)) {
                let secs = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
                let _ = writeln!(
                    est,
                    "submariner_connection_established_timestamp{{{}}} {secs}",
                    series(c)
                );
            }
        }
    }
    s.push_str("# HELP submariner_gateway_tx_bytes Bytes transmitted for the connection\n# TYPE submariner_gateway_tx_bytes gauge\n");
    s.push_str(&tx);
    s.push_str("# HELP submariner_gateway_rx_bytes Bytes received for the connection\n# TYPE submariner_gateway_rx_bytes gauge\n");
    s.push_str(&rx);
    s.push_str("# HELP submariner_connection_established_timestamp Timestamp of the last successful connection establishment (WireGuard handshake)\n# TYPE submariner_connection_established_timestamp gauge\n");
    s.push_str(&est);
    s.push_str("# HELP submariner_connection_latency_seconds Connection latency in seconds; last RTT, by pinging the remote healthCheckIP\n# TYPE submariner_connection_latency_seconds gauge\n");
    for c in &status.connections {
        if let Some(v) = c.latency_rtt.as_ref().and_then(|l| parse_go_duration(&l.last)) {
            let _ = writeln!(s, "submariner_connection_latency_seconds{{{}}} {v}", series(c));
        }
    }
    s.push_str("# HELP submariner_gateways Number of gateways (1 on the active gateway)\n# TYPE submariner_gateways gauge\n");
    let _ = writeln!(
        s,
        "submariner_gateways {}",
        u8::from(status.ha_status == "active")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use subsea_api::submariner::{Connection, EndpointSpec, LatencyRtt};

    #[test]
    fn connections_counters_and_latency_use_submariners_names_and_labels() {
        let mut remote = EndpointSpec {
            cluster_id: "cluster2".into(),
            hostname: "cluster2-gw1".into(),
            ..Default::default()
        };
        remote.backend_config.insert("publicKey".into(), "K".into());
        let status = GatewayStatus {
            ha_status: "active".into(),
            local_endpoint: EndpointSpec {
                cluster_id: "cluster1".into(),
                hostname: "cluster1-gw1".into(),
                private_ip: "172.30.1.12".into(),
                backend: "wireguard".into(),
                ..Default::default()
            },
            connections: vec![Connection {
                status: "connected".into(),
                endpoint: remote,
                using_ip: "172.30.2.12".into(),
                latency_rtt: Some(LatencyRtt {
                    last: "1.5ms".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let stats = PeerStats {
            public_key: [0; 32],
            endpoint: None,
            last_handshake: Some(Duration::from_secs(10)),
            tx_bytes: 100,
            rx_bytes: 200,
            spoofed: 0,
            allowed_ips: vec![],
            keepalive: None,
        };
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let text = render(&status, &|k| (k == "K").then(|| stats.clone()), now);
        let labels = "cable_driver=\"wireguard\",local_cluster=\"cluster1\",local_hostname=\"cluster1-gw1\",local_endpoint_ip=\"172.30.1.12\",remote_cluster=\"cluster2\",remote_hostname=\"cluster2-gw1\",remote_endpoint_ip=\"172.30.2.12\"";
        assert!(
            text.contains(&format!(
                "submariner_connections{{{labels},status=\"connected\"}} 1\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!("submariner_gateway_tx_bytes{{{labels}}} 100\n")));
        assert!(text.contains(&format!("submariner_gateway_rx_bytes{{{labels}}} 200\n")));
        assert!(text.contains(&format!(
            "submariner_connection_established_timestamp{{{labels}}} 990\n"
        )));
        assert!(text.contains(&format!(
            "submariner_connection_latency_seconds{{{labels}}} 0.0015\n"
        )));
        assert!(text.contains("submariner_gateways 1\n"));
    }

    #[test]
    fn go_durations_parse_in_every_unit() {
        assert_eq!(parse_go_duration("388.079µs"), Some(388.079e-6));
        assert_eq!(parse_go_duration("2s"), Some(2.0));
        assert_eq!(parse_go_duration("nonsense"), None);
    }
}
