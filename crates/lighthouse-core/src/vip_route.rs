//! Where a connection to a ClusterSetIP goes, as a pure function of what a node sees: for every
//! VIP, port and protocol, the backends a new connection is spread over. The local cluster's
//! ready pods when it exports the service (local first: no tunnel crossed), else the service IP
//! of every other exporting cluster whose endpoints are ready and whose tunnel is connected
//! (that cluster's own service proxy takes it from there; under Globalnet the address the cluster
//! published is its global IP). Session affinity `ClientIP` hashes the client address, so one
//! client keeps its backend while the backend set stays the same.
//!
//! Local backends are the pods, not the local service IP: a node's NAT runs one destination
//! translation per connection, so the local service proxy would never see the translated packet.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use subsea_api::mcs::v1alpha1::ServiceImport;

use crate::agent::AGGREGATE_LABEL;
use crate::export::{key, label};
use crate::labels::*;

/// One VIP port and where its connections go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The VIP.
    pub vip: Ipv4Addr,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The port.
    pub port: u16,
    /// Spread by client address (`ClientIP` affinity) rather than at random.
    pub sticky: bool,
    /// Addresses and ports, sorted; empty: no backend (connections are refused).
    pub backends: Vec<(Ipv4Addr, u16)>,
}

/// Ready IPv4 addresses of a slice's endpoints, with the port named `name` of the slice.
fn ready_targets(sl: &EndpointSlice, name: &str, protocol: &str) -> Vec<(Ipv4Addr, u16)> {
    let port = sl.ports.iter().flatten().find(|p| {
        p.name.as_deref().unwrap_or_default() == name
            && p.protocol
                .as_deref()
                .unwrap_or("TCP")
                .eq_ignore_ascii_case(protocol)
    });
    let Some(port) = port.and_then(|p| p.port).and_then(|p| u16::try_from(p).ok()) else {
        return Vec::new();
    };
    sl.endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .flat_map(|e| &e.addresses)
        .filter_map(|a| a.parse::<Ipv4Addr>().ok())
        .map(|a| (a, port))
        .collect()
}

/// What a node knows of the other clusters: which the active gateway's tunnels reach (`None`:
/// no Gateway status known, every cluster counts as connected) and their measured RTT (µs).
#[derive(Clone, Copy, Debug)]
pub struct Health<'a> {
    /// Connected clusters.
    pub connected: Option<&'a HashSet<String>>,
    /// RTT to each, µs.
    pub rtt_us: &'a HashMap<String, u64>,
}

/// Every VIP forward of the cluster `local`, from its aggregated ServiceImports and its
/// EndpointSlices (Kubernetes' and Lighthouse's copies). A service with `trafficDistribution:
/// PreferClose` that is not served locally goes to the nearest healthy cluster only.
pub fn forwards(
    local: &str,
    imports: &[&ServiceImport],
    slices: &[&EndpointSlice],
    health: Health<'_>,
) -> Vec<Forward> {
    let mut out = Vec::new();
    for i in imports
        .iter()
        .filter(|i| label(&i.metadata, AGGREGATE_LABEL) == MANAGER && i.spec.type_ == "ClusterSetIP")
    {
        let (ns, name) = key(&i.metadata);
        let Some(vip) = i.spec.ips.iter().find_map(|ip| ip.parse::<IpAddr>().ok()) else {
            continue;
        };
        let IpAddr::V4(vip) = vip else { continue };
        let of_service = |sl: &&&EndpointSlice| key(&sl.metadata).0 == ns;
        let copies: Vec<&EndpointSlice> = slices
            .iter()
            .filter(of_service)
            .filter(|sl| {
                label(&sl.metadata, MANAGED_BY) == MANAGER && label(&sl.metadata, SERVICE_NAME) == name
            })
            .copied()
            .collect();
        let pods: Vec<&EndpointSlice> = slices
            .iter()
            .filter(of_service)
            .filter(|sl| {
                label(&sl.metadata, MANAGED_BY) != MANAGER && label(&sl.metadata, K8S_SERVICE_NAME) == name
            })
            .copied()
            .collect();
        let sticky = i.spec.session_affinity.as_deref() == Some("ClientIP");
        let prefer_close = i.spec.traffic_distribution.as_deref() == Some(crate::resolve::PREFER_CLOSE);
        for p in &i.spec.ports {
            let Ok(port) = u16::try_from(p.port) else { continue };
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            let pname = p.name.as_deref().unwrap_or_default();
            let exports_here = copies
                .iter()
                .any(|sl| label(&sl.metadata, SOURCE_CLUSTER) == local);
            let mut backends: Vec<(Ipv4Addr, u16)> = if exports_here {
                // The local Service's ports are named as the import's; its slices carry target ports.
                pods.iter()
                    .flat_map(|sl| ready_targets(sl, pname, protocol))
                    .collect()
            } else {
                Vec::new()
            };
            if backends.is_empty() {
                let mut remote: Vec<(&str, Vec<(Ipv4Addr, u16)>)> = copies
                    .iter()
                    .map(|sl| {
                        (
                            label(&sl.metadata, SOURCE_CLUSTER),
                            ready_targets(sl, pname, protocol),
                        )
                    })
                    .filter(|(c, targets)| {
                        *c != local
                            && !targets.is_empty()
                            && health.connected.is_none_or(|set| set.contains(*c))
                    })
                    .collect();
                if prefer_close {
                    let rtt = |c: &str| health.rtt_us.get(c).copied().unwrap_or(u64::MAX);
                    remote.sort_by_key(|(c, _)| (rtt(c), c.to_string()));
                    remote.truncate(1);
                }
                backends = remote.into_iter().flat_map(|(_, t)| t).collect();
            }
            backends.sort();
            backends.dedup();
            out.push(Forward {
                vip,
                protocol: protocol.to_lowercase(),
                port,
                sticky,
                backends,
            });
        }
    }
    out.sort_by(|a, b| (a.vip, &a.protocol, a.port).cmp(&(b.vip, &b.protocol, b.port)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("valid")
    }

    fn import(affinity: &str) -> ServiceImport {
        typed(
            json!({"metadata": {"name": "web", "namespace": "shop", "labels": {AGGREGATE_LABEL: MANAGER}},
            "spec": {"type": "ClusterSetIP", "ips": ["243.0.0.9"], "sessionAffinity": affinity,
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        )
    }

    fn copy(cluster: &str, ip: &str, ready: bool) -> EndpointSlice {
        typed(
            json!({"metadata": {"name": format!("web-{cluster}"), "namespace": "shop", "labels": {
                MANAGED_BY: MANAGER, SERVICE_NAME: "web", SOURCE_CLUSTER: cluster}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]}),
        )
    }

    fn pods(ready: bool) -> EndpointSlice {
        typed(
            json!({"metadata": {"name": "web-abc", "namespace": "shop", "labels": {K8S_SERVICE_NAME: "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.129.4.11"], "conditions": {"ready": ready}}]}),
        )
    }

    static NO_RTT: std::sync::LazyLock<HashMap<String, u64>> = std::sync::LazyLock::new(HashMap::new);

    fn anywhere() -> Health<'static> {
        Health {
            connected: None,
            rtt_us: &NO_RTT,
        }
    }

    fn only(set: &HashSet<String>) -> Health<'_> {
        Health {
            connected: Some(set),
            rtt_us: &NO_RTT,
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_local_clusters_pods_come_first_then_every_healthy_remote_cluster() {
        let i = import("None");
        let (c1, c2, c3) = (
            copy("c1", "100.65.0.5", true),
            copy("c2", "100.66.0.5", true),
            copy("c3", "100.67.0.5", false),
        );
        let here = pods(true);
        let all = [&c1, &c2, &c3, &here];
        let f = forwards("c1", &[&i], &all, anywhere());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].vip, f[0].port, f[0].protocol.as_str()),
            (ip("243.0.0.9"), 80, "tcp")
        );
        assert_eq!(
            f[0].backends,
            [(ip("10.129.4.11"), 8080)],
            "local pods, by target port"
        );
        assert!(!f[0].sticky);

        // No ready pod here: the other exporting clusters' service IPs, the unready c3 left out.
        let not_ready = pods(false);
        let f = forwards("c1", &[&i], &[&c1, &c2, &c3, &not_ready], anywhere());
        assert_eq!(f[0].backends, [(ip("100.66.0.5"), 80)]);

        // A cluster that does not export it spreads over every ready remote one.
        let c3_ready = copy("c3", "100.67.0.5", true);
        let f = forwards("c9", &[&i], &[&c1, &c2, &c3_ready], anywhere());
        assert_eq!(f[0].backends.len(), 3);
        // ... that is connected.
        let connected: HashSet<String> = ["c2".to_string()].into();
        let f = forwards("c9", &[&i], &[&c1, &c2, &c3_ready], only(&connected));
        assert_eq!(f[0].backends, [(ip("100.66.0.5"), 80)]);
        let none = HashSet::new();
        assert!(
            forwards("c9", &[&i], &[&c1, &c2], only(&none))[0]
                .backends
                .is_empty()
        );
    }

    #[test]
    fn affinity_and_imports_without_a_vip() {
        let sticky = import("ClientIP");
        let c2 = copy("c2", "100.66.0.5", true);
        assert!(forwards("c1", &[&sticky], &[&c2], anywhere())[0].sticky);
        let mut no_vip = import("None");
        no_vip.spec.ips.clear();
        assert!(forwards("c1", &[&no_vip], &[&c2], anywhere()).is_empty());
        let mut not_ours = import("None");
        not_ours.metadata.labels = None;
        assert!(
            forwards("c1", &[&not_ours], &[&c2], anywhere()).is_empty(),
            "only the agent's aggregates"
        );
    }

    #[test]
    fn prefer_close_goes_to_the_nearest_healthy_cluster_only() {
        let mut i = import("None");
        i.spec.traffic_distribution = Some("PreferClose".into());
        let (c2, c3) = (copy("c2", "100.66.0.5", true), copy("c3", "100.67.0.5", true));
        let rtt: HashMap<String, u64> = [("c2".to_string(), 900), ("c3".to_string(), 300)].into();
        let health = Health {
            connected: None,
            rtt_us: &rtt,
        };
        let f = forwards("c1", &[&i], &[&c2, &c3], health);
        assert_eq!(f[0].backends, [(ip("100.67.0.5"), 80)], "c3 is nearer");
        let c3_down = copy("c3", "100.67.0.5", false);
        let f = forwards("c1", &[&i], &[&c2, &c3_down], health);
        assert_eq!(f[0].backends, [(ip("100.66.0.5"), 80)], "the nearest ready one");
    }
}
