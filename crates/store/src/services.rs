//! ClusterIP and NodePort allocation for Services: cluster IPs from the configured service
//! CIDRs, node ports from kube-apiserver's default `--service-node-port-range` (30000-32767),
//! with Kubernetes' errors for out-of-range, taken or changed values. Join discovers the
//! service CIDR from the "range of valid IPs" message, as Submariner does on clusters that hide it.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use subsea_cidr::Cidr;

use crate::error::Cause;

fn ips_of(svc: &Value) -> Vec<String> {
    let spec = &svc["spec"];
    let mut out: Vec<String> = spec["clusterIPs"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    if out.is_empty() {
        if let Some(ip) = spec["clusterIP"].as_str().filter(|s| !s.is_empty()) {
            out.push(ip.to_string());
        }
    }
    out
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn list(ips: &[String]) -> String {
    format!(
        "[]string{{{}}}",
        ips.iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Assigns (or checks) the ClusterIPs of a Service being written. `others` are the other
/// Services; `previous` is the stored version on update.
pub fn assign(
    obj: &mut Value,
    others: &[Arc<Value>],
    ranges: &[Cidr],
    previous: Option<&Value>,
) -> Result<(), Vec<Cause>> {
    if ranges.is_empty()
        || obj["spec"]["type"] == "ExternalName"
        || !obj["spec"].is_object() && previous.is_none()
    {
        return Ok(());
    }
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let wanted = ips_of(obj);
    if let Some(prev) = previous {
        let before = ips_of(prev);
        if wanted.is_empty() {
            if !before.is_empty() {
                obj["spec"]["clusterIP"] = json!(before[0]);
                obj["spec"]["clusterIPs"] = json!(before);
            }
            return Ok(());
        }
        if wanted != before {
            return Err(vec![Cause::invalid(
                "spec.clusterIPs",
                &json!(list(&wanted)),
                "may not change once set",
            )]);
        }
        return Ok(());
    }
    if wanted.first().is_some_and(|ip| ip == "None") {
        obj["spec"]["clusterIPs"] = json!(["None"]);
        return Ok(());
    }
    let used: HashSet<String> = others.iter().flat_map(|o| ips_of(o)).collect();
    let valid: Vec<String> = ranges.iter().map(ToString::to_string).collect();
    let mut assigned = Vec::new();
    if !wanted.is_empty() {
        for ip in &wanted {
            let parsed: IpAddr = ip.parse().map_err(|_| {
                vec![Cause::invalid(
                    "spec.clusterIPs",
                    &json!(list(&wanted)),
                    "must be a valid IP address",
                )]
            })?;
            if !ranges.iter().any(|r| r.contains(parsed)) {
                return Err(vec![Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: {}: failed to allocate IP {ip}: provided IP is not in the valid range. The range of valid IPs is {}",
                        list(&wanted),
                        valid.join(",")
                    ),
                )]);
            }
            if used.contains(ip) {
                return Err(vec![Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: {}: failed to allocate IP {ip}: provided IP is already allocated",
                        list(&wanted)
                    ),
                )]);
            }
            assigned.push(parsed);
        }
    } else {
        let dual = matches!(
            obj["spec"]["ipFamilyPolicy"].as_str(),
            Some("PreferDualStack" | "RequireDualStack")
        );
        let wanted_ranges: Vec<&Cidr> = if dual {
            ranges.iter().take(2).collect()
        } else {
            ranges.iter().take(1).collect()
        };
        for r in wanted_ranges {
            // Skip the network address; allocate the lowest free one, bounded by the block size.
            let ip = (1..r.size().min(1 << 20))
                .filter_map(|n| r.nth(n))
                .find(|ip| !used.contains(&ip.to_string()))
                .ok_or_else(|| {
                    vec![Cause::new(
                        "FieldValueInvalid",
                        "spec.clusterIPs",
                        format!("Internal error: range {r} is full"),
                    )]
                })?;
            assigned.push(ip);
        }
    }
    let strs: Vec<String> = assigned.iter().map(ToString::to_string).collect();
    obj["spec"]["clusterIP"] = json!(strs[0]);
    obj["spec"]["clusterIPs"] = json!(strs);
    obj["spec"]["ipFamilies"] = json!(assigned.iter().map(family).collect::<Vec<_>>());
    if obj["spec"]["ipFamilyPolicy"].is_null() {
        obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
    }
    if obj["spec"]["type"].is_null() {
        obj["spec"]["type"] = json!("ClusterIP");
    }
    Ok(())
}

/// kube-apiserver's default `--service-node-port-range`.
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

fn node_ports_of(svc: &Value) -> Vec<u64> {
    svc["spec"]["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["nodePort"].as_u64())
                .filter(|n| *n != 0)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a Service of this spec gets node ports: NodePort, and LoadBalancer unless
/// `allocateLoadBalancerNodePorts` is false.
fn wants_node_ports(spec: &Value) -> bool {
    match spec["type"].as_str() {
        Some("NodePort") => true,
        Some("LoadBalancer") => spec["allocateLoadBalancerNodePorts"] != false,
        _ => false,
    }
}

/// Assigns (or checks) the node ports of a Service being written, as kube-apiserver does:
/// a port without one gets the lowest free port of [`NODE_PORTS`] (on update, the one it had);
/// a given one must be in range and not used by another Service; leaving NodePort for a type
/// without node ports releases them.
pub fn assign_node_ports(
    obj: &mut Value,
    others: &[Arc<Value>],
    previous: Option<&Value>,
) -> Result<(), Vec<Cause>> {
    let Some(ports) = obj["spec"]["ports"].as_array() else {
        return Ok(());
    };
    let before = previous.map(node_ports_of).unwrap_or_default();
    if !wants_node_ports(&obj["spec"]) {
        let now = node_ports_of(obj);
        if !now.is_empty() && now == before {
            for p in obj["spec"]["ports"].as_array_mut().into_iter().flatten() {
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
            }
            return Ok(());
        }
        let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
        let causes: Vec<Cause> = ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p["nodePort"].as_u64().is_some_and(|n| n != 0))
            .map(|(i, _)| {
                Cause::new(
                    "FieldValueForbidden",
                    format!("spec.ports[{i}].nodePort"),
                    format!("Forbidden: may not be used when `type` is '{ty}'"),
                )
            })
            .collect();
        return if causes.is_empty() { Ok(()) } else { Err(causes) };
    }
    let used: HashSet<u64> = others.iter().flat_map(|o| node_ports_of(o)).collect();
    let previous_ports: Vec<&Value> = previous
        .and_then(|p| p["spec"]["ports"].as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let range = format!("{}-{}", NODE_PORTS.start(), NODE_PORTS.end());
    let mut chosen: Vec<Option<u64>> = Vec::new();
    let mut causes = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let field = format!("spec.ports[{i}].nodePort");
        match p["nodePort"].as_u64().filter(|n| *n != 0) {
            Some(n) => {
                if !(u64::from(*NODE_PORTS.start())..=u64::from(*NODE_PORTS.end())).contains(&n) {
                    causes.push(Cause::invalid(
                        field,
                        &p["nodePort"],
                        &format!(
                            "provided port is not in the valid range. The range of valid ports is {range}"
                        ),
                    ));
                } else if used.contains(&n) {
                    causes.push(Cause::invalid(
                        field,
                        &p["nodePort"],
                        "provided port is already allocated",
                    ));
                }
                chosen.push(Some(n));
            }
            None => {
                // On update a port keeps the node port it had (matched by name, then by port).
                let kept = previous_ports
                    .iter()
                    .find(|q| q["name"] == p["name"] && q["port"] == p["port"])
                    .and_then(|q| q["nodePort"].as_u64())
                    .filter(|n| *n != 0 && before.contains(n));
                chosen.push(kept);
            }
        }
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    let mut taken: HashSet<u64> = used;
    taken.extend(chosen.iter().flatten());
    for (i, c) in chosen.iter_mut().enumerate() {
        if c.is_none() {
            let free = NODE_PORTS
                .map(u64::from)
                .find(|n| !taken.contains(n))
                .ok_or_else(|| {
                    vec![Cause::new(
                        "FieldValueInvalid",
                        format!("spec.ports[{i}].nodePort"),
                        format!("Internal error: range {range} is full"),
                    )]
                })?;
            taken.insert(free);
            *c = Some(free);
        }
    }
    for (p, n) in obj["spec"]["ports"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .zip(chosen)
    {
        p["nodePort"] = json!(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges() -> Vec<Cidr> {
        vec![
            Cidr::parse("100.66.0.0/16").expect("v4"),
            Cidr::parse("fd00:66::/112").expect("v6"),
        ]
    }

    #[test]
    fn allocates_lowest_free_address() {
        let taken = Arc::new(json!({"spec": {"clusterIP": "100.66.0.1"}}));
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        assign(&mut svc, &[taken], &ranges(), None).expect("allocates");
        assert_eq!(svc["spec"]["clusterIP"], "100.66.0.2");
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        let mut dual = json!({"spec": {"ipFamilyPolicy": "PreferDualStack"}});
        assign(&mut dual, &[], &ranges(), None).expect("dual");
        assert_eq!(dual["spec"]["clusterIPs"], json!(["100.66.0.1", "fd00:66::1"]));
    }

    #[test]
    fn out_of_range_message_names_the_valid_range() {
        let mut svc = json!({"spec": {"clusterIP": "1.1.1.1"}});
        let err = assign(&mut svc, &[], &ranges()[..1], None).expect_err("out of range");
        assert!(
            err[0]
                .message
                .ends_with("The range of valid IPs is 100.66.0.0/16"),
            "{}",
            err[0].message
        );
    }

    #[test]
    fn headless_external_and_immutable() {
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        assign(&mut headless, &[], &ranges(), None).expect("headless");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut ext = json!({"spec": {"type": "ExternalName", "externalName": "x.example"}});
        assign(&mut ext, &[], &ranges(), None).expect("external");
        assert!(ext["spec"].get("clusterIP").is_none());
        let prev = json!({"spec": {"clusterIP": "100.66.0.5", "clusterIPs": ["100.66.0.5"]}});
        let mut keep = json!({"spec": {}});
        assign(&mut keep, &[], &ranges(), Some(&prev)).expect("kept");
        assert_eq!(keep["spec"]["clusterIP"], "100.66.0.5");
        let mut change = json!({"spec": {"clusterIP": "100.66.0.6"}});
        assert!(assign(&mut change, &[], &ranges(), Some(&prev)).is_err());
    }

    #[test]
    fn node_ports_allocated_kept_checked_and_released() {
        let taken =
            Arc::new(json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30000}]}}));
        let mut svc =
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443, "nodePort": 30001}]}});
        assign_node_ports(&mut svc, std::slice::from_ref(&taken), None).expect("allocates");
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30002);
        assert_eq!(svc["spec"]["ports"][1]["nodePort"], 30001);
        let prev = svc.clone();
        let mut update = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        assign_node_ports(&mut update, &[], Some(&prev)).expect("kept");
        assert_eq!(update["spec"]["ports"], prev["spec"]["ports"]);
        let mut clash = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30000}]}});
        let err = assign_node_ports(&mut clash, std::slice::from_ref(&taken), None).expect_err("taken");
        assert_eq!(
            err[0].message,
            "Invalid value: 30000: provided port is already allocated"
        );
        let mut low = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}});
        let err = assign_node_ports(&mut low, &[], None).expect_err("range");
        assert!(
            err[0]
                .message
                .ends_with("The range of valid ports is 30000-32767"),
            "{}",
            err[0].message
        );
        let mut back = prev.clone();
        back["spec"]["type"] = json!("ClusterIP");
        assign_node_ports(&mut back, &[], Some(&prev)).expect("released");
        assert!(back["spec"]["ports"][0].get("nodePort").is_none());
        let mut forbidden =
            json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30005}]}});
        let err = assign_node_ports(&mut forbidden, &[], None).expect_err("forbidden");
        assert_eq!(err[0].field, "spec.ports[0].nodePort");
        let mut lb = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}});
        assign_node_ports(&mut lb, &[], None).expect("no ports");
        assert!(lb["spec"]["ports"][0].get("nodePort").is_none());
    }
}
