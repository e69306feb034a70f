//! Globalnet verdicts: the gateway's own global IP, the egress pools and every export's
//! ingress IP, each with the fix.

use serde_json::Value;

use super::{Facts, Line, s};

fn allocated<'a>(o: &'a Value) -> Option<&'a Value> {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Allocated"))
}

/// Nothing when the cluster did not join with Globalnet.
pub fn verdicts(f: &Facts, sub: &Value) -> Vec<Line> {
    let cidr = s(sub, "/spec/globalCIDR");
    if cidr.is_empty() {
        return vec![];
    }
    let mut out = vec![Line::Ok(format!(
        "Globalnet is on: this cluster's GlobalCIDR is {cidr}"
    ))];
    let active: Vec<String> = f
        .gateways
        .iter()
        .filter(|g| s(g, "/status/haStatus") == "active")
        .map(|g| s(g, "/metadata/name"))
        .collect();
    for gw in &active {
        let ip = f
            .nodes
            .iter()
            .find(|n| s(n, "/metadata/name") == *gw)
            .map(|n| s(n, "/metadata/annotations/submariner.io~1globalIp"))
            .unwrap_or_default();
        out.push(if ip.is_empty() {
            Line::Fail(format!(
                "the active gateway node {gw} has no global IP (annotation submariner.io/globalIp): is `subsea globalnet` running on it? check the submariner-globalnet pod's log"
            ))
        } else {
            Line::Ok(format!("the active gateway node {gw} has global IP {ip}"))
        });
    }
    let cluster = f
        .cluster_egress
        .iter()
        .find(|e| s(e, "/metadata/name") == "cluster-egress.submariner.io");
    out.push(match cluster.map(|c| (c, allocated(c))) {
        None => Line::Fail(
            "there is no ClusterGlobalEgressIP cluster-egress.submariner.io, so pods cannot reach other clusters: the Globalnet daemon creates it when it runs on the active gateway".into(),
        ),
        Some((_, Some(a))) if a["status"] == "True" => Line::Ok(format!(
            "cluster egress: {}",
            s(a, "/message").trim_start_matches("allocated ")
        )),
        Some((_, a)) => Line::Fail(format!(
            "the cluster egress IPs are not allocated: {}",
            a.map(|a| s(a, "/message")).unwrap_or_else(|| "no Allocated condition yet".into())
        )),
    });
    for e in &f.egress {
        let name = format!("{}/{}", s(e, "/metadata/namespace"), s(e, "/metadata/name"));
        if let Some(a) = allocated(e).filter(|a| a["status"] == "False") {
            out.push(Line::Fail(format!(
                "GlobalEgressIP {name}: {} ({})",
                s(a, "/message"),
                s(a, "/reason")
            )));
        }
    }
    for x in &f.exports {
        let (ns, name) = (s(x, "/metadata/namespace"), s(x, "/metadata/name"));
        let giip = f
            .ingress
            .iter()
            .find(|g| s(g, "/metadata/namespace") == ns && s(g, "/metadata/name") == name);
        if let Some(g) = giip {
            let ip = s(g, "/status/allocatedIP");
            out.push(if ip.is_empty() {
                Line::Fail(format!(
                    "export {ns}/{name} has a GlobalIngressIP without an address: {}",
                    allocated(g)
                        .map(|a| s(a, "/message"))
                        .unwrap_or_else(|| "not allocated yet".into())
                ))
            } else {
                Line::Ok(format!("export {ns}/{name} is reachable at global IP {ip}"))
            });
        }
    }
    out
}
