//! The sandbox's networks: the underlay bridge, each node's namespace, pod bridge and routes, and pod slots.

use super::*;

/// The network namespace of the `k`th pod slot on a node.
pub fn pod_netns(t: &Topology, c: &Cluster, n: &Node, k: u8) -> String {
    format!("{}-c{}-p{}-{k}", t.name, c.index, n.index)
}

/// Wires an existing, empty namespace as pod slot `k` of node `n`: `eth0` on the node's pod
/// bridge, addresses, default routes and the pod's resolv.conf. Returns its addresses (IPv4
/// first).
pub fn plumb_pod(c: &Cluster, n: &Node, k: u8, netns: &str, namespace: &str) -> Result<Vec<String>> {
    let ip = topology::pod_ip(n, k).to_string();
    let port = format!("p{k}");
    sys::ip(&[
        "link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", &port, "netns", &n.netns,
    ])?;
    sys::ip_in(&n.netns, &["link", "set", &port, "master", "cni0", "up"])?;
    sys::ip_in(netns, &["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
    let mut ips = vec![ip];
    if let (Some(v6), Some(gw6)) = (topology::pod_ip_v6(n, k), n.cni_ip_v6) {
        sys::ip_in(
            netns,
            &["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"],
        )?;
        sys::ip_in(netns, &["link", "set", "eth0", "up"])?;
        sys::ip_in(netns, &["-6", "route", "add", "default", "via", &gw6.to_string()])?;
        ips.push(v6.to_string());
    }
    sys::ip_in(netns, &["link", "set", "eth0", "up"])?;
    sys::ip_in(
        netns,
        &["route", "replace", "default", "via", &n.cni_ip.to_string()],
    )?;
    // Pod DNS, as the kubelet writes it: `ip netns exec` bind-mounts this over /etc/resolv.conf.
    let etc = Path::new("/etc/netns").join(netns);
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("resolv.conf"),
        format!(
            "search {namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {}\noptions ndots:5\n",
            topology::dns_ip(c)
        ),
    )?;
    Ok(ips)
}

/// Pods `add-pod`/`deploy` may put on one node; the kubelet stand-in numbers its pods above.
pub const MAX_STATIC_PODS: u8 = 99;

impl Sandbox {
    pub(crate) fn add_netns(&mut self, ns: &str) -> Result<()> {
        if sys::namespaces().iter().any(|n| n == ns) {
            bail!(
                "network namespace {ns} already exists: another sandbox with this name is up (run `subsea-sandbox down`, or pick another --name)"
            );
        }
        sys::ip(&["netns", "add", ns])?;
        self.state.netns.push(ns.into());
        self.save()?;
        sys::ip_in(ns, &["link", "set", "lo", "up"])?;
        Ok(())
    }

    pub(crate) fn network(&mut self, t: &Topology) -> Result<()> {
        self.add_netns(&t.underlay_netns)?;
        let u = t.underlay_netns.as_str();
        sys::ip_in(u, &["link", "add", "br0", "type", "bridge"])?;
        sys::ip_in(u, &["link", "set", "br0", "up"])?;
        let attach = |ns: &str, port: &str, ip: Ipv4Addr| -> Result<()> {
            sys::ip(&[
                "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", u,
            ])?;
            sys::ip_in(u, &["link", "set", port, "master", "br0", "up"])?;
            sys::ip_in(
                ns,
                &[
                    "addr",
                    "add",
                    &format!("{ip}/{}", topology::UNDERLAY_PREFIX),
                    "dev",
                    "eth0",
                ],
            )?;
            sys::ip_in(ns, &["link", "set", "eth0", "up"])?;
            Ok(())
        };
        self.add_netns(&t.broker_netns)?;
        attach(&t.broker_netns, "broker", t.broker_ip)?;
        for c in &t.clusters {
            for n in &c.nodes {
                self.add_netns(&n.netns)?;
                attach(&n.netns, &format!("c{}n{}", c.index, n.index), n.ip)?;
                if let Some(ip6) = n.ip6 {
                    sys::ip_in(
                        &n.netns,
                        &["addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"],
                    )?;
                }
                self.node_network(c, n)?;
            }
        }
        Ok(())
    }

    pub(crate) fn node_network(&self, c: &Cluster, n: &Node) -> Result<()> {
        let ns = n.netns.as_str();
        sys::sysctl(
            ns,
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=2",
                "net.ipv4.conf.default.rp_filter=2",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )?;
        sys::ip_in(ns, &["link", "add", "cni0", "type", "bridge"])?;
        sys::ip_in(ns, &["addr", "add", &format!("{}/24", n.cni_ip), "dev", "cni0"])?;
        if let Some(v6) = n.cni_ip_v6 {
            sys::ip_in(ns, &["addr", "add", &format!("{v6}/64"), "dev", "cni0", "nodad"])?;
        }
        sys::ip_in(ns, &["link", "set", "cni0", "up"])?;
        // Pod ranges of the other nodes of the cluster, via their underlay address: the
        // sandbox's flat CNI, like kindnet.
        for other in c.nodes.iter().filter(|o| o.index != n.index) {
            sys::ip_in(
                ns,
                &["route", "add", &other.pod_cidr, "via", &other.ip.to_string()],
            )?;
            if let (Some(cidr), Some(via)) = (&other.pod_cidr_v6, other.ip6) {
                sys::ip_in(ns, &["-6", "route", "add", cidr, "via", &via.to_string()])?;
            }
        }
        Ok(())
    }
}
