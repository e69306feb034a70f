//! `subctl diagnose firewall`: what only traffic can tell. A Don't-Fragment probe from a pod in
//! one cluster to a pod in another finds the path MTU and whether larger packets are refused
//! with ICMP (TCP adapts) or silently dropped (connections hang on the first full-size packet).

use std::time::Duration;

use anyhow::Result;
use subsea_nettest::mtu::{Finding, Limit};

use super::Line;
use crate::pods::{self, Side, Workload, nettest};

const PORT: u16 = 7002;

/// The smallest MTU IPv6 allows; a path below it breaks IPv6 outright.
const IPV6_MIN: usize = 1280;

/// The verdict on a probe from cluster `from` to cluster `to`.
pub fn verdict(from: &str, to: &str, f: &Finding) -> Line {
    let path = format!("pod traffic from {from} to {to}");
    match f.limit {
        _ if f.largest == 0 => Line::Fail(format!(
            "{path}: not even small datagrams get through: check the tunnel (`subctl diagnose connections`) and any firewall between the pods"
        )),
        Limit::Silent => Line::Fail(format!(
            "{path}: packets over {} bytes are dropped without ICMP \"fragmentation needed\" (an MTU black hole): allow ICMP type 3 code 4 and ICMPv6 type 2 on the path, or lower the pod MTU to {}",
            f.largest, f.largest
        )),
        _ if f.largest < IPV6_MIN => Line::Warn(format!(
            "{path}: path MTU {} bytes is below IPv6's minimum of {IPV6_MIN}: raise the underlay MTU",
            f.largest
        )),
        Limit::Icmp => Line::Ok(format!(
            "{path}: path MTU {} bytes, larger packets are refused with ICMP so TCP adapts",
            f.largest
        )),
        Limit::None => Line::Ok(format!(
            "{path}: every size up to {} bytes passes unfragmented",
            f.largest
        )),
    }
}

/// Which ordered pairs of `n` clusters to probe: both ways for two, a ring for more, so every
/// cluster sends and receives once.
pub fn pairs(n: usize) -> Vec<(usize, usize)> {
    match n {
        0 | 1 => vec![],
        2 => vec![(0, 1), (1, 0)],
        _ => (0..n).map(|i| (i, (i + 1) % n)).collect(),
    }
}

/// Probes from `a` to `b` through pods; cleans up after itself.
pub async fn probe(a: &Side, b: &Side, image: &str, namespace: &str, timeout: Duration) -> Result<Finding> {
    for side in [a, b] {
        pods::namespace(&side.client, namespace).await?;
    }
    let pod = |name: &str, node: String, command: Vec<String>| Workload {
        name: name.to_string(),
        namespace: namespace.to_string(),
        node,
        image: image.to_string(),
        command,
        labels: vec![],
        host_network: false,
    };
    let r = async {
        let server = pod(
            "firewall-echo",
            b.node(false)?,
            nettest(&["udp-echo-server", "--port", &PORT.to_string()]),
        );
        pods::start(&b.client, &server).await?;
        let ips = pods::wait_running(&b.client, namespace, &server.name, timeout).await?;
        let client = pod(
            "firewall-probe",
            a.node(false)?,
            nettest(&["mtu-probe", &format!("{}:{PORT}", ips[0]), "--wait", "20"]),
        );
        pods::run::<Finding>(&a.client, &client, timeout).await
    }
    .await;
    for side in [a, b] {
        pods::cleanup(&side.client, namespace).await;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_holes_fail_and_icmp_limits_pass() {
        let f = |largest, limit| Finding { largest, limit };
        assert!(matches!(verdict("c1", "c2", &f(1420, Limit::Icmp)), Line::Ok(m) if m.contains("1420")));
        assert!(matches!(verdict("c1", "c2", &f(1500, Limit::None)), Line::Ok(_)));
        assert!(
            matches!(verdict("c1", "c2", &f(1372, Limit::Silent)), Line::Fail(m) if m.contains("black hole") && m.contains("ICMP type 3 code 4"))
        );
        assert!(
            matches!(verdict("c1", "c2", &f(0, Limit::Silent)), Line::Fail(m) if m.contains("diagnose connections"))
        );
        assert!(matches!(
            verdict("c1", "c2", &f(1200, Limit::Icmp)),
            Line::Warn(_)
        ));
    }

    #[test]
    fn every_cluster_sends_and_receives() {
        assert!(pairs(1).is_empty());
        assert_eq!(pairs(2), vec![(0, 1), (1, 0)]);
        assert_eq!(pairs(3), vec![(0, 1), (1, 2), (2, 0)]);
    }
}
