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
use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use subsea_api::mcs::v1alpha1::ServiceImport;

use crate::agent::AGGREGATE_LABEL;
use crate::export::{key, label};
use crate::labels::*;

/// One VIP port and where its connections go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The VIP.
    pub vip: IpAddr,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The port.
    pub port: u16,
    /// Spread by client address (`ClientIP` affinity) rather than at random.
    pub sticky: bool,
    /// Addresses (of the VIP's family) and ports, sorted; empty: no backend (connections are
    /// refused).
    pub backends: Vec<(IpAddr, u16)>,
}

/// Which endpoints of a slice a VIP port takes.
#[derive(Clone, Copy)]
struct Wanted<'a> {
    /// The port's name and protocol.
    name: &'a str,
    protocol: &'a str,
    /// The VIP's family.
    v6: bool,
    /// Only endpoints on this node (`internalTrafficPolicy: Local`).
    node: Option<&'a str>,
}

/// Ready addresses of the wanted family (and node) of a slice's endpoints, with the slice's
/// port named as wanted.
fn ready_targets(sl: &EndpointSlice, w: Wanted<'_>) -> Vec<(IpAddr, u16)> {
    let port = sl.ports.iter().flatten().find(|p| {
        p.name.as_deref().unwrap_or_default() == w.name
            && p.protocol
                .as_deref()
                .unwrap_or("TCP")
                .eq_ignore_ascii_case(w.protocol)
    });
    let Some(port) = port.and_then(|p| p.port).and_then(|p| u16::try_from(p).ok()) else {
        return Vec::new();
    };
    sl.endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .filter(|e| w.node.is_none_or(|n| e.node_name.as_deref() == Some(n)))
        .flat_map(|e| &e.addresses)
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .filter(|a| a.is_ipv6() == w.v6)
        .map(|a| (a, port))
        .collect()
}

/// Where the deciding node is, and how it was told to spread.
#[derive(Clone, Copy, Debug)]
pub struct Here<'a> {
    /// Its cluster's ID.
    pub cluster: &'a str,
    /// Its node's name.
    pub node: &'a str,
    /// The local cluster's pods first (the default); otherwise they share connections with
    /// every other healthy exporting cluster.
    pub local_first: bool,
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

/// Every VIP forward of the node `here`, from its cluster's aggregated ServiceImports and
/// EndpointSlices (Kubernetes' and Lighthouse's copies), for each VIP of each family; the
/// local cluster's pods first unless `here` says otherwise. A service
/// with `trafficDistribution: PreferClose` that is not served locally goes to the nearest
/// healthy cluster only; one with `internalTrafficPolicy: Local` only to this node's pods (none
/// here: refused, as a service proxy does).
pub fn forwards(
    here: Here<'_>,
    imports: &[&ServiceImport],
    slices: &[&EndpointSlice],
    health: Health<'_>,
) -> Vec<Forward> {
    let local = here.cluster;
    let mut out = Vec::new();
    for i in imports
        .iter()
        .filter(|i| label(&i.metadata, AGGREGATE_LABEL) == MANAGER && i.spec.type_ == "ClusterSetIP")
    {
        let (ns, name) = key(&i.metadata);
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
        let node_local = i.spec.internal_traffic_policy.as_deref() == Some("Local");
        let exports_here = copies
            .iter()
            .any(|sl| label(&sl.metadata, SOURCE_CLUSTER) == local);
        let vips = i.spec.ips.iter().filter_map(|ip| ip.parse::<IpAddr>().ok());
        for (vip, p) in vips.flat_map(|v| i.spec.ports.iter().map(move |p| (v, p))) {
            let Ok(port) = u16::try_from(p.port) else { continue };
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            let want = Wanted {
                name: p.name.as_deref().unwrap_or_default(),
                protocol,
                v6: vip.is_ipv6(),
                node: node_local.then_some(here.node),
            };
            let mut backends: Vec<(IpAddr, u16)> = if exports_here {
                // The local Service's ports are named as the import's; its slices carry target ports.
                pods.iter().flat_map(|sl| ready_targets(sl, want)).collect()
            } else {
                Vec::new()
            };
            if (backends.is_empty() || !here.local_first) && !node_local {
                let mut remote: Vec<(&str, Vec<(IpAddr, u16)>)> = copies
                    .iter()
                    .map(|sl| (label(&sl.metadata, SOURCE_CLUSTER), ready_targets(sl, want)))
                    .filter(|(c, targets)| {
                        *c != local
                            && !targets.is_empty()
                            && health.connected.is_none_or(|set| set.contains(*c))
                    })
                    .collect();
                if prefer_close {
                    let rtt = |c: &str| health.rtt_us.get(c).copied().unwrap_or(u64::MAX);
                    remote.sort_by_key(|(c, _)| (rtt(c), c.to_string()));
                    // A cluster's IPv4 and IPv6 copies are two entries: keep the nearest's.
                    if let Some(nearest) = remote.first().map(|r| r.0) {
                        remote.retain(|r| r.0 == nearest);
                    }
                }
                backends.extend(remote.into_iter().flat_map(|(_, t)| t));
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

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn at(cluster: &str) -> Here<'_> {
        Here {
            cluster,
            node: "n1",
            local_first: true,
        }
    }

    #[test]
    fn told_not_to_prefer_local_pods_it_spreads_over_every_exporter() {
        let i = import("None");
        let (c1, c2) = (copy("c1", "100.65.0.5", true), copy("c2", "100.66.0.5", true));
        let here = pods(true);
        let spread = Here {
            local_first: false,
            ..at("c1")
        };
        let f = forwards(spread, &[&i], &[&c1, &c2, &here], anywhere());
        assert_eq!(
            f[0].backends,
            [(ip("10.129.4.11"), 8080), (ip("100.66.0.5"), 80)],
            "the local pod and the remote cluster"
        );
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
        let f = forwards(at("c1"), &[&i], &all, anywhere());
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
        let f = forwards(at("c1"), &[&i], &[&c1, &c2, &c3, &not_ready], anywhere());
        assert_eq!(f[0].backends, [(ip("100.66.0.5"), 80)]);

        // A cluster that does not export it spreads over every ready remote one.
        let c3_ready = copy("c3", "100.67.0.5", true);
        let f = forwards(at("c9"), &[&i], &[&c1, &c2, &c3_ready], anywhere());
        assert_eq!(f[0].backends.len(), 3);
        // ... that is connected.
        let connected: HashSet<String> = ["c2".to_string()].into();
        let f = forwards(at("c9"), &[&i], &[&c1, &c2, &c3_ready], only(&connected));
        assert_eq!(f[0].backends, [(ip("100.66.0.5"), 80)]);
        let none = HashSet::new();
        assert!(
            forwards(at("c9"), &[&i], &[&c1, &c2], only(&none))[0]
                .backends
                .is_empty()
        );
    }

    #[test]
    fn affinity_and_imports_without_a_vip() {
        let sticky = import("ClientIP");
        let c2 = copy("c2", "100.66.0.5", true);
        assert!(forwards(at("c1"), &[&sticky], &[&c2], anywhere())[0].sticky);
        let mut no_vip = import("None");
        no_vip.spec.ips.clear();
        assert!(forwards(at("c1"), &[&no_vip], &[&c2], anywhere()).is_empty());
        let mut not_ours = import("None");
        not_ours.metadata.labels = None;
        assert!(
            forwards(at("c1"), &[&not_ours], &[&c2], anywhere()).is_empty(),
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
        let f = forwards(at("c1"), &[&i], &[&c2, &c3], health);
        assert_eq!(f[0].backends, [(ip("100.67.0.5"), 80)], "c3 is nearer");
        let c3_down = copy("c3", "100.67.0.5", false);
        let f = forwards(at("c1"), &[&i], &[&c2, &c3_down], health);
        assert_eq!(f[0].backends, [(ip("100.66.0.5"), 80)], "the nearest ready one");
    }

    fn with_node(mut sl: EndpointSlice, node: &str) -> EndpointSlice {
        for e in &mut sl.endpoints {
            e.node_name = Some(node.into());
        }
        sl
    }

    #[test]
    fn each_family_vip_goes_to_the_backends_of_its_family() {
        let mut i = import("None");
        i.spec.ips = vec!["243.0.0.9".into(), "fd00:243::9".into()];
        let c2 = copy("c2", "100.66.0.5", true);
        let mut c2_v6 = copy("c2", "fd00:66::5", true);
        c2_v6.address_type = "IPv6".into();
        c2_v6.metadata.name = Some("web-c2-v6".into());
        let f = forwards(at("c1"), &[&i], &[&c2, &c2_v6], anywhere());
        let by_vip: Vec<(String, Vec<(IpAddr, u16)>)> = f
            .iter()
            .map(|f| (f.vip.to_string(), f.backends.clone()))
            .collect();
        assert_eq!(
            by_vip,
            [
                ("243.0.0.9".to_string(), vec![(ip("100.66.0.5"), 80)]),
                ("fd00:243::9".to_string(), vec![(ip("fd00:66::5"), 80)]),
            ]
        );
    }

    #[test]
    fn internal_traffic_policy_local_keeps_connections_on_the_node() {
        let mut i = import("None");
        i.spec.internal_traffic_policy = Some("Local".into());
        let c1 = copy("c1", "100.65.0.5", true);
        let c2 = copy("c2", "100.66.0.5", true);
        let on_n1 = with_node(pods(true), "n1");
        let f = forwards(at("c1"), &[&i], &[&c1, &c2, &on_n1], anywhere());
        assert_eq!(f[0].backends, [(ip("10.129.4.11"), 8080)], "this node's pod");
        let on_n2 = with_node(pods(true), "n2");
        let f = forwards(at("c1"), &[&i], &[&c1, &c2, &on_n2], anywhere());
        assert!(
            f[0].backends.is_empty(),
            "no pod on this node: refused, not sent away"
        );
        let f = forwards(at("c9"), &[&i], &[&c1, &c2], anywhere());
        assert!(
            f[0].backends.is_empty(),
            "a cluster without the service has no local endpoint"
        );
        i.spec.internal_traffic_policy = Some("Cluster".into());
        let f = forwards(at("c1"), &[&i], &[&c1, &c2, &on_n2], anywhere());
        assert_eq!(
            f[0].backends,
            [(ip("10.129.4.11"), 8080)],
            "Cluster: any node's pod"
        );
    }
}
