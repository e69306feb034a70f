//! The sandbox's addressing plan, as a pure function of its name and size. Shipyard-like:
//! cluster `i` (from 1) has pods in `10.(128+i).0.0/16` and services in `100.(64+i).0.0/16`;
//! every node of every cluster and the broker share one underlay, `172.30.0.0/16`, as kind
//! nodes share a Docker network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// What a node does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the cluster's API server.
    ControlPlane,
    /// Gateway-capable (labelled `submariner.io/gateway=true`).
    Gateway,
    /// An ordinary worker.
    Worker,
}

/// One node: a network namespace on the underlay with a pod bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Node name, as in Kubernetes (`cluster1-gw1`).
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Its role.
    pub role: Role,
    /// Index inside the cluster (1-based): the third octet of its pod range.
    pub index: u8,
    /// Underlay address.
    pub ip: Ipv4Addr,
    /// IPv6 underlay address when dual-stack (`fd00:30::<cluster>:<node>`).
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    /// Pod range of this node (`10.(128+i).index.0/24`).
    pub pod_cidr: String,
    /// The node's own address on its pod bridge (the "CNI interface" address).
    pub cni_ip: Ipv4Addr,
    /// IPv6 pod range and bridge address when dual-stack.
    pub pod_cidr_v6: Option<String>,
    /// IPv6 bridge address.
    pub cni_ip_v6: Option<Ipv6Addr>,
}

/// One simulated cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Cluster ID (`cluster1`).
    pub id: String,
    /// 1-based index.
    pub index: u8,
    /// Pod CIDRs (IPv4 first).
    pub pod_cidrs: Vec<String>,
    /// Service CIDRs (IPv4 first).
    pub service_cidrs: Vec<String>,
    /// Its nodes: control plane, two gateways, one worker.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// The control-plane node.
    pub fn control_plane(&self) -> &Node {
        &self.nodes[0]
    }
}

/// The whole sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Prefix of every namespace name.
    pub name: String,
    /// Namespace of the underlay bridge.
    pub underlay_netns: String,
    /// Namespace of the broker.
    pub broker_netns: String,
    /// Broker address.
    pub broker_ip: Ipv4Addr,
    /// Clusters.
    pub clusters: Vec<Cluster>,
}

/// Underlay prefix length (IPv6: /64).
pub const UNDERLAY_PREFIX: u8 = 16;
/// Most clusters a sandbox holds: each takes a /24 of the underlay and a /16 of pods.
pub const MAX_CLUSTERS: usize = 9;

/// How clusters are addressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cidrs {
    /// Distinct per cluster (Shipyard's plan).
    #[default]
    Distinct,
    /// kind's defaults in every cluster: pods `10.244.0.0/16`, services `10.96.0.0/16`
    /// (Globalnet's case).
    Same,
}

impl Cidrs {
    /// Second octet of cluster `i`'s pod range, and first two octets of its service range.
    fn octets(self, i: u8) -> (u8, (u8, u8)) {
        match self {
            Cidrs::Distinct => (128 + i, (100, 64 + i)),
            Cidrs::Same => (244, (10, 96)),
        }
    }
}

impl Topology {
    /// Plans `clusters` clusters under the namespace prefix `name`.
    pub fn new(name: &str, clusters: usize, dual_stack: bool) -> Result<Self, String> {
        Self::with_cidrs(name, clusters, dual_stack, Cidrs::Distinct)
    }

    /// [`Topology::new`] with a choice of addressing.
    pub fn with_cidrs(name: &str, clusters: usize, dual_stack: bool, cidrs: Cidrs) -> Result<Self, String> {
        if dual_stack && cidrs == Cidrs::Same {
            return Err(
                "--same-cidrs is IPv4-only (Globalnet allocates IPv4 global IPs): leave out --dual-stack"
                    .into(),
            );
        }
        if clusters == 0 || clusters > MAX_CLUSTERS {
            return Err(format!(
                "--clusters must be between 1 and {MAX_CLUSTERS}, got {clusters}"
            ));
        }
        if name.is_empty()
            || name.len() > 8
            || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(format!(
                "sandbox name {name:?} must be 1-8 lowercase letters or digits"
            ));
        }
        let clusters = (1..=clusters as u8)
            .map(|i| {
                let id = format!("cluster{i}");
                let (pod, (s1, s2)) = cidrs.octets(i);
                let roles = [
                    ("cp", Role::ControlPlane),
                    ("gw1", Role::Gateway),
                    ("gw2", Role::Gateway),
                    ("worker", Role::Worker),
                ];
                let nodes = roles
                    .iter()
                    .enumerate()
                    .map(|(k, (suffix, role))| {
                        let k = k as u8 + 1;
                        Node {
                            name: format!("{id}-{suffix}"),
                            netns: format!("{name}-c{i}-{suffix}"),
                            role: *role,
                            index: k,
                            ip: Ipv4Addr::new(172, 30, i, 10 + k),
                            ip6: dual_stack.then(|| {
                                Ipv6Addr::new(
                                    0xfd00,
                                    0x30,
                                    0,
                                    0,
                                    0,
                                    0,
                                    as_hex(u16::from(i)),
                                    as_hex(10 + u16::from(k)),
                                )
                            }),
                            pod_cidr: format!("10.{pod}.{k}.0/24"),
                            cni_ip: Ipv4Addr::new(10, pod, k, 1),
                            pod_cidr_v6: dual_stack.then(|| format!("fd00:{}:{k}::/64", 128 + u16::from(i))),
                            cni_ip_v6: dual_stack.then(|| {
                                Ipv6Addr::new(
                                    0xfd00,
                                    as_hex(128 + u16::from(i)),
                                    as_hex(u16::from(k)),
                                    0,
                                    0,
                                    0,
                                    0,
                                    1,
                                )
                            }),
                        }
                    })
                    .collect();
                let mut pod_cidrs = vec![format!("10.{pod}.0.0/16")];
                let mut service_cidrs = vec![format!("{s1}.{s2}.0.0/16")];
                if dual_stack {
                    pod_cidrs.push(format!("fd00:{}::/32", 128 + u16::from(i)));
                    service_cidrs.push(format!("fd00:{}::/112", 64 + u16::from(i)));
                }
                Cluster {
                    id,
                    index: i,
                    pod_cidrs,
                    service_cidrs,
                    nodes,
                }
            })
            .collect();
        Ok(Self {
            name: name.to_string(),
            underlay_netns: format!("{name}-underlay"),
            broker_netns: format!("{name}-broker"),
            broker_ip: Ipv4Addr::new(172, 30, 0, 2),
            clusters,
        })
    }

    /// Every namespace the sandbox creates for its infrastructure (pods come on top).
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.underlay_netns.clone(), self.broker_netns.clone()];
        v.extend(
            self.clusters
                .iter()
                .flat_map(|c| c.nodes.iter().map(|n| n.netns.clone())),
        );
        v
    }

    /// The cluster with this ID.
    pub fn cluster(&self, id: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.id == id)
    }
}

/// The IPv6 group that reads like `n` in decimal ("130" → 0x130), so v6 addresses mirror the
/// v4 plan.
fn as_hex(n: u16) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).unwrap_or(0)
}

/// The cluster DNS Service address: the 10th address of the service range (kubeadm's choice).
pub fn dns_ip(c: &Cluster) -> IpAddr {
    let base = c
        .service_cidrs
        .first()
        .and_then(|s| s.split('/').next())
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        .unwrap_or(Ipv4Addr::new(100, 64 + c.index, 0, 0));
    let o = base.octets();
    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 10))
}

/// The address of the `n`th pod (1-based) on a node.
pub fn pod_ip(node: &Node, n: u8) -> IpAddr {
    let o = node.cni_ip.octets();
    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 10 + n))
}

/// Its IPv6 address, when dual-stack.
pub fn pod_ip_v6(node: &Node, n: u8) -> Option<IpAddr> {
    node.cni_ip_v6.map(|v6| {
        let s = v6.segments();
        IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0x10 + u16::from(n)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_shipyard_plan_and_never_collide() {
        let t = Topology::new("ss", 3, true).expect("valid");
        let c2 = t.cluster("cluster2").expect("cluster2");
        assert_eq!(c2.pod_cidrs, ["10.130.0.0/16", "fd00:130::/32"]);
        assert_eq!(c2.service_cidrs[0], "100.66.0.0/16");
        assert_eq!(dns_ip(c2).to_string(), "100.66.0.10");
        let gw1 = &c2.nodes[1];
        assert_eq!(
            (gw1.name.as_str(), gw1.netns.as_str()),
            ("cluster2-gw1", "ss-c2-gw1")
        );
        assert_eq!(gw1.ip, Ipv4Addr::new(172, 30, 2, 12));
        assert_eq!(gw1.pod_cidr, "10.130.2.0/24");
        assert_eq!(pod_ip(gw1, 1).to_string(), "10.130.2.11");
        assert_eq!(
            pod_ip_v6(gw1, 1).map(|i| i.to_string()).as_deref(),
            Some("fd00:130:2::11")
        );
        let mut ips: Vec<Ipv4Addr> = t
            .clusters
            .iter()
            .flat_map(|c| c.nodes.iter().map(|n| n.ip))
            .collect();
        ips.push(t.broker_ip);
        let n = ips.len();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), n);
        let ns = t.namespaces();
        assert_eq!(ns.len(), 2 + 3 * 4);
    }

    #[test]
    fn same_cidrs_give_every_cluster_kinds_ranges_on_distinct_underlay_addresses() {
        let t = Topology::with_cidrs("ss", 3, false, Cidrs::Same).expect("valid");
        for c in &t.clusters {
            assert_eq!(c.pod_cidrs, ["10.244.0.0/16"]);
            assert_eq!(c.service_cidrs, ["10.96.0.0/16"]);
            assert_eq!(dns_ip(c).to_string(), "10.96.0.10");
            assert_eq!(c.nodes[1].cni_ip, Ipv4Addr::new(10, 244, 2, 1));
        }
        assert_ne!(t.clusters[0].nodes[1].ip, t.clusters[1].nodes[1].ip);
        assert!(Topology::with_cidrs("ss", 2, true, Cidrs::Same).is_err());
    }

    #[test]
    fn refuses_sizes_and_names_it_cannot_address() {
        assert!(Topology::new("ss", 0, false).unwrap_err().contains("--clusters"));
        assert!(Topology::new("ss", 10, false).is_err());
        assert!(
            Topology::new("Bad Name", 2, false)
                .unwrap_err()
                .contains("sandbox name")
        );
    }
}
