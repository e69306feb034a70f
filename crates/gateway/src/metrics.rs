//! Prometheus metrics with Submariner's names (`submariner:pkg/cable/metrics.go`), built from
//! the Gateway status and the tunnel counters on each scrape.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use subsea_api::submariner::{Connection, GatewayStatus};
use subsea_health::duration::parse_go_duration;
use subsea_metrics::Registry;
use subsea_wg::PeerStats;

/// Submariner's default metrics port.
pub const DEFAULT_PORT: u16 = 32780;

/// The labels of every per-connection series, in Submariner's order.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnLabels {
    cable_driver: String,
    local_cluster: String,
    local_hostname: String,
    local_endpoint_ip: String,
    remote_cluster: String,
    remote_hostname: String,
    remote_endpoint_ip: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    #[prometheus(flatten)]
    conn: ConnLabels,
    status: String,
}

type IntGauges<L> = Family<L, Gauge>;
type FloatGauges = Family<ConnLabels, Gauge<f64, AtomicU64>>;

fn labels(status: &GatewayStatus, c: &Connection) -> ConnLabels {
    let local = &status.local_endpoint;
    ConnLabels {
        cable_driver: local.backend.clone(),
        local_cluster: local.cluster_id.clone(),
        local_hostname: local.hostname.clone(),
        local_endpoint_ip: local.private_ip.clone(),
        remote_cluster: c.endpoint.cluster_id.clone(),
        remote_hostname: c.endpoint.hostname.clone(),
        remote_endpoint_ip: c.using_ip.clone(),
    }
}

/// The registry of one scrape. `stats_for` gives a connection's tunnel counters by remote
/// public key.
pub fn registry(
    status: &GatewayStatus,
    stats_for: &dyn Fn(&str) -> Option<PeerStats>,
    now: SystemTime,
) -> Registry {
    let connections = IntGauges::<StatusLabels>::default();
    let tx = IntGauges::<ConnLabels>::default();
    let rx = IntGauges::<ConnLabels>::default();
    let established = IntGauges::<ConnLabels>::default();
    let latency = FloatGauges::default();
    for c in &status.connections {
        let l = labels(status, c);
        connections
            .get_or_create(&StatusLabels {
                conn: l.clone(),
                status: c.status.clone(),
            })
            .set(1);
        let key = c
            .endpoint
            .backend_config
            .get("publicKey")
            .map_or("", String::as_str);
        if let Some(st) = stats_for(key) {
            tx.get_or_create(&l)
                .set(i64::try_from(st.tx_bytes).unwrap_or(i64::MAX));
            rx.get_or_create(&l)
                .set(i64::try_from(st.rx_bytes).unwrap_or(i64::MAX));
            if let Some(at) = st.last_handshake.and_then(|age| now.checked_sub(age)) {
                let secs = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
                established
                    .get_or_create(&l)
                    .set(i64::try_from(secs).unwrap_or(i64::MAX));
            }
        }
        if let Some(rtt) = c.latency_rtt.as_ref().and_then(|r| parse_go_duration(&r.last)) {
            latency.get_or_create(&l).set(rtt.as_secs_f64());
        }
    }
    let gateways = Gauge::<i64>::default();
    gateways.set(i64::from(status.ha_status == "active"));
    let mut r = Registry::default();
    r.register(
        "submariner_connections",
        "Number of connections and corresponding status",
        connections,
    );
    r.register(
        "submariner_gateway_tx_bytes",
        "Bytes transmitted for the connection",
        tx,
    );
    r.register(
        "submariner_gateway_rx_bytes",
        "Bytes received for the connection",
        rx,
    );
    r.register(
        "submariner_connection_established_timestamp",
        "Timestamp of the last successful connection establishment (WireGuard handshake)",
        established,
    );
    r.register(
        "submariner_connection_latency_seconds",
        "Connection latency in seconds; last RTT, by pinging the remote healthCheckIP",
        latency,
    );
    r.register(
        "submariner_gateways",
        "Number of gateways (1 on the active gateway)",
        gateways,
    );
    r
}

/// The exposition text of [`registry`].
pub fn render(
    status: &GatewayStatus,
    stats_for: &dyn Fn(&str) -> Option<PeerStats>,
    now: SystemTime,
) -> String {
    subsea_metrics::encode(&registry(status, stats_for, now))
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
}
