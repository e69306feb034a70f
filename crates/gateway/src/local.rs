//! The objects a gateway publishes about itself, as pure functions of its settings and node.

use std::collections::BTreeMap;
use std::net::IpAddr;

use subsea_api::submariner::{ClusterSpec, EndpointSpec};

use crate::settings::Settings;

/// What the gateway found out about its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Host name.
    pub hostname: String,
    /// Address other gateways reach us at.
    pub private_ip: IpAddr,
    /// Public address, when known.
    pub public_ip: Option<IpAddr>,
    /// Address of the node inside the cluster CIDR: health checks target it, and traffic the
    /// node itself sends into the tunnel leaves from it.
    pub cni_ip: Option<IpAddr>,
    /// The node's IPv6 underlay address on dual-stack nodes (published in `private_ips`, the
    /// next hop route agents use for IPv6 remote subnets).
    pub private_ip6: Option<IpAddr>,
    /// The node's IPv6 address inside the cluster CIDR.
    pub cni_ip6: Option<IpAddr>,
}

/// The label that makes a node a gateway candidate.
pub const GATEWAY_LABEL: &str = "submariner.io/gateway";

/// Whether this node may be the gateway, from its Node object's labels: removing the label
/// takes a node out of the election, as removing it from Submariner's DaemonSet selector does.
/// A node whose object cannot be read stays eligible (a gateway run outside Kubernetes'
/// bookkeeping, or an API hiccup, must not drop the tunnels).
pub fn eligible(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    labels.is_none_or(|l| l.get(GATEWAY_LABEL).map(String::as_str) == Some("true"))
}

/// Submariner's name sanitiser (`EnsureValidName`): lowercase, anything outside
/// `[a-z0-9.-]` becomes `-`, no leading or trailing `-`.
pub fn valid_name(s: &str) -> String {
    let mapped: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_matches('-').to_string()
}

/// `submariner-cable-<clusterID>-<private IP with dashes>`.
pub fn cable_name(cluster_id: &str, private_ip: IpAddr) -> String {
    let ip = private_ip.to_string().replace(['.', ':'], "-");
    format!("submariner-cable-{cluster_id}-{ip}")
}

/// The local Endpoint's spec.
/// `global_ip` is the node's global IP (Globalnet), once allocated.
pub fn endpoint(
    s: &Settings,
    node: &Node,
    public_key: &str,
    port: u16,
    global_ip: Option<IpAddr>,
) -> EndpointSpec {
    let v4 = |ip: Option<IpAddr>| {
        ip.filter(IpAddr::is_ipv4)
            .map(|i| i.to_string())
            .unwrap_or_default()
    };
    let mut backend_config = BTreeMap::new();
    backend_config.insert("publicKey".to_string(), public_key.to_string());
    backend_config.insert("udp-port".to_string(), port.to_string());
    backend_config.insert("interface-name".to_string(), "submariner".to_string());
    // With Globalnet the CNI address is ambiguous (every cluster may use the same pod CIDR):
    // the health-check address is the node's global IP, published once Globalnet allocates it.
    let (health_check_ip, health_check_ips) = match (global_ip, s.global_cidr) {
        (Some(g), _) => (g.to_string(), vec![g.to_string()]),
        (None, Some(_)) => (String::new(), vec![]),
        (None, None) => (
            v4(node.cni_ip),
            node.cni_ip
                .iter()
                .chain(&node.cni_ip6)
                .map(ToString::to_string)
                .collect(),
        ),
    };
    EndpointSpec {
        cluster_id: s.cluster_id.clone(),
        cable_name: cable_name(&s.cluster_id, node.private_ip),
        health_check_ip,
        health_check_ips,
        hostname: node.hostname.clone(),
        subnets: s.subnets().iter().map(ToString::to_string).collect(),
        private_ip: v4(Some(node.private_ip)),
        private_ips: std::iter::once(node.private_ip)
            .chain(node.private_ip6)
            .map(|i| i.to_string())
            .collect(),
        public_ip: v4(node.public_ip),
        public_ips: node.public_ip.map(|i| vec![i.to_string()]).unwrap_or_default(),
        nat_enabled: s.nat_enabled,
        backend: "wireguard".into(),
        backend_config,
    }
}

/// From the node's addresses: its IPv4 and IPv6 addresses inside the cluster CIDRs, and an
/// IPv6 underlay address (global, outside the cluster CIDRs).
pub fn pick_addresses(
    addrs: &[IpAddr],
    cluster_cidrs: &[subsea_cidr::Cidr],
) -> (Option<IpAddr>, Option<IpAddr>, Option<IpAddr>) {
    let inside = |ip: &IpAddr| cluster_cidrs.iter().any(|c| c.contains(*ip));
    let cni4 = addrs.iter().copied().find(|ip| ip.is_ipv4() && inside(ip));
    let cni6 = addrs.iter().copied().find(|ip| ip.is_ipv6() && inside(ip));
    let under6 = addrs.iter().copied().find(|ip| match ip {
        IpAddr::V6(v6) => !inside(ip) && !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
        IpAddr::V4(_) => false,
    });
    (cni4, cni6, under6)
}

/// The Endpoint object's name: `<clusterID>-<cable name>`, sanitised.
pub fn endpoint_name(spec: &EndpointSpec) -> String {
    valid_name(&format!("{}-{}", spec.cluster_id, spec.cable_name))
}

/// The local Cluster's spec. Submariner publishes IPv4 CIDRs only here and always the colour
/// "blue".
pub fn cluster(s: &Settings) -> ClusterSpec {
    let v4 = |c: &[subsea_cidr::Cidr]| {
        c.iter()
            .filter(|c| c.addr.is_ipv4())
            .map(ToString::to_string)
            .collect()
    };
    ClusterSpec {
        cluster_id: s.cluster_id.clone(),
        color_codes: vec!["blue".into()],
        service_cidr: v4(&s.service_cidrs),
        cluster_cidr: v4(&s.cluster_cidrs),
        global_cidr: s.global_cidr.iter().map(ToString::to_string).collect(),
    }
}

/// Local Endpoints to delete when `current` is ours: the other ones of our cluster (a previous
/// gateway's, after a failover), as Submariner's `ensureExclusiveEndpoint` does.
pub fn stale_local_endpoints<'a>(
    cluster_id: &str,
    current: &str,
    endpoints: &'a [(String, EndpointSpec)],
) -> Vec<&'a str> {
    endpoints
        .iter()
        .filter(|(name, spec)| spec.cluster_id == cluster_id && name != current)
        .map(|(name, _)| name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        crate::settings::from_spec(&subsea_api::operator::SubmarinerSpec {
            broker_k8s_api_server: "b:6443".into(),
            cluster_cidr: "10.129.0.0/16,fd00:129::/64".into(),
            service_cidr: "100.65.0.0/16".into(),
            cluster_id: "Cluster_1".into(),
            nat_enabled: true,
            ..Default::default()
        })
        .expect("settings")
    }

    #[test]
    fn endpoint_follows_submariners_names_and_fields() {
        let node = Node {
            hostname: "c1-gw1".into(),
            private_ip: "172.30.0.11".parse().expect("ip"),
            public_ip: None,
            cni_ip: Some("10.129.1.1".parse().expect("ip")),
            private_ip6: Some("fd00:30::1:12".parse().expect("ip")),
            cni_ip6: None,
        };
        let spec = endpoint(&settings(), &node, "KEY=", 4500, None);
        assert_eq!(spec.cable_name, "submariner-cable-Cluster_1-172-30-0-11");
        assert_eq!(
            endpoint_name(&spec),
            "cluster-1-submariner-cable-cluster-1-172-30-0-11"
        );
        assert_eq!(spec.subnets, ["100.65.0.0/16", "10.129.0.0/16", "fd00:129::/64"]);
        assert_eq!(spec.private_ip, "172.30.0.11");
        assert_eq!(spec.private_ips, ["172.30.0.11", "fd00:30::1:12"]);
        assert_eq!(spec.health_check_ip, "10.129.1.1");
        assert_eq!(spec.public_ip, "");
        assert_eq!(spec.backend_config["publicKey"], "KEY=");
        assert_eq!(spec.backend_config["udp-port"], "4500");
        assert!(spec.nat_enabled);
    }

    #[test]
    fn addresses_are_sorted_into_cni_and_underlay_by_family() {
        let cidrs = [
            subsea_cidr::Cidr::parse("10.129.0.0/16").expect("c"),
            subsea_cidr::Cidr::parse("fd00:129::/32").expect("c"),
        ];
        let addrs: Vec<IpAddr> = [
            "127.0.0.1",
            "::1",
            "fe80::1",
            "172.30.1.12",
            "fd00:30::1:12",
            "10.129.2.1",
            "fd00:129:2::1",
        ]
        .iter()
        .map(|a| a.parse().expect("ip"))
        .collect();
        let (c4, c6, u6) = pick_addresses(&addrs, &cidrs);
        assert_eq!(c4, Some("10.129.2.1".parse().expect("ip")));
        assert_eq!(c6, Some("fd00:129:2::1".parse().expect("ip")));
        assert_eq!(u6, Some("fd00:30::1:12".parse().expect("ip")));
    }

    #[test]
    fn cluster_object_keeps_ipv4_only() {
        let c = cluster(&settings());
        assert_eq!(c.cluster_cidr, ["10.129.0.0/16"]);
        assert_eq!(c.color_codes, ["blue"]);
        assert!(c.global_cidr.is_empty());
    }

    #[test]
    fn only_other_endpoints_of_our_cluster_are_stale() {
        let spec = |c: &str| EndpointSpec {
            cluster_id: c.into(),
            ..Default::default()
        };
        let eps = vec![
            ("a".to_string(), spec("c1")),
            ("b".to_string(), spec("c1")),
            ("x".to_string(), spec("c2")),
        ];
        assert_eq!(stale_local_endpoints("c1", "b", &eps), ["a"]);
    }

    #[test]
    fn only_a_labelled_node_or_an_unknown_one_is_eligible() {
        let labels = |v: &str| {
            let mut m = std::collections::BTreeMap::new();
            m.insert(GATEWAY_LABEL.to_string(), v.to_string());
            m
        };
        assert!(eligible(Some(&labels("true"))));
        assert!(!eligible(Some(&labels("false"))));
        assert!(!eligible(Some(&Default::default())));
        assert!(eligible(None));
    }
}
