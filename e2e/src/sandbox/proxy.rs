//! A small kube-proxy stand-in: DNAT from Service ClusterIPs to ready endpoints, as one
//! nftables table per node rebuilt atomically from the cluster's Services and EndpointSlices.
//! The ruleset is a pure function of plain data; the loop around it is thin.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::{Context, Result};
use serde_json::Value;

/// The nftables table the stand-in owns.
pub const TABLE: &str = "subsea-proxy";

/// One Service port with where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// A ClusterIP.
    pub cluster_ip: IpAddr,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Service port.
    pub port: u16,
    /// Ready endpoints and their target port.
    pub endpoints: Vec<(IpAddr, u16)>,
}

/// The forwards of one Service from its object and its EndpointSlices (JSON).
pub fn forwards(service: &Value, slices: &[&Value]) -> Vec<Forward> {
    let ips: Vec<IpAddr> = service
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .or_else(|| {
            service
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .map(|ip| vec![ip])
        })
        .unwrap_or_default();
    // External IPs are served like ClusterIPs (Globalnet reaches ClusterIP Services this way).
    let ips: Vec<IpAddr> = ips
        .into_iter()
        .chain(
            service
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str()?.parse().ok()),
        )
        .collect();
    let mut out = Vec::new();
    for p in service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        let protocol = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_lowercase();
        let Some(port) = p
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|x| u16::try_from(x).ok())
        else {
            continue;
        };
        for ip in &ips {
            let mut endpoints = Vec::new();
            for s in slices {
                let Some(target) = s
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|sp| sp.get("name").and_then(Value::as_str).unwrap_or("") == name)
                    .and_then(|sp| sp.get("port").and_then(Value::as_u64))
                    .and_then(|x| u16::try_from(x).ok())
                else {
                    continue;
                };
                for e in s.get("endpoints").and_then(Value::as_array).into_iter().flatten() {
                    if e.pointer("/conditions/ready").and_then(Value::as_bool) == Some(false) {
                        continue;
                    }
                    for a in e.get("addresses").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(addr) = a.as_str().and_then(|a| a.parse::<IpAddr>().ok()) {
                            if addr.is_ipv4() == ip.is_ipv4() {
                                endpoints.push((addr, target));
                            }
                        }
                    }
                }
            }
            endpoints.sort();
            endpoints.dedup();
            out.push(Forward {
                cluster_ip: *ip,
                protocol: protocol.clone(),
                port,
                endpoints,
            });
        }
    }
    out
}

fn target(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4} . {port}"),
        IpAddr::V6(v6) => format!("{v6} . {port}"),
    }
}

/// The whole table, replacing any previous one in one transaction.
pub fn ruleset(forwards: &[Forward]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "table inet {TABLE} {{}}\ndelete table inet {TABLE}\ntable inet {TABLE} {{"
    );
    s.push_str("  chain services {\n");
    for f in forwards.iter().filter(|f| !f.endpoints.is_empty()) {
        let (fam, daddr) = if f.cluster_ip.is_ipv4() {
            ("ip", "ip daddr")
        } else {
            ("ip6", "ip6 daddr")
        };
        let map: Vec<String> = f
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, (ip, port))| format!("{i} : {}", target(*ip, *port)))
            .collect();
        let _ = writeln!(
            s,
            "    {daddr} {} {} dport {} dnat {fam} addr . port to numgen random mod {} map {{ {} }}",
            f.cluster_ip,
            f.protocol,
            f.port,
            f.endpoints.len(),
            map.join(", ")
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    jump services\n  }\n");
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    jump services\n  }\n}\n");
    s
}

/// Every Service's forwards, from the lists of Services and EndpointSlices.
pub fn all_forwards(services: &[Value], slices: &[Value]) -> Vec<Forward> {
    let mut by_service: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
    for s in slices {
        let ns = s
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(svc) = s
            .pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)
        {
            by_service.entry((ns, svc.to_string())).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for svc in services {
        let ns = svc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = svc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let slices = by_service.get(&(ns, name)).cloned().unwrap_or_default();
        out.extend(forwards(svc, &slices));
    }
    out
}

/// Loads a ruleset with `nft -f -`.
pub fn apply(ruleset: &str) -> Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run nft (install nftables)")?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(ruleset.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "nft rejected the ruleset: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "100.65.0.10", "clusterIPs": ["100.65.0.10"],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}})
    }

    fn slice(ready: bool) -> Value {
        json!({"metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.129.4.11"], "conditions": {"ready": true}},
                          {"addresses": ["10.129.2.11"], "conditions": {"ready": ready}}]})
    }

    #[test]
    fn only_ready_endpoints_of_the_services_slices_are_targets() {
        let f = all_forwards(&[svc()], &[slice(false)]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].endpoints, vec![("10.129.4.11".parse().expect("ip"), 8080)]);
        let f = all_forwards(&[svc()], &[slice(true)]);
        assert_eq!(f[0].endpoints.len(), 2);
        let text = ruleset(&f);
        assert!(
            text.contains("ip daddr 100.65.0.10 tcp dport 80 dnat ip addr . port to numgen random mod 2 map { 0 : 10.129.2.11 . 8080, 1 : 10.129.4.11 . 8080 }"),
            "{text}"
        );
        assert!(text.starts_with("table inet subsea-proxy {}\ndelete table inet subsea-proxy\n"));
    }

    #[test]
    fn services_without_endpoints_or_slices_get_no_rule() {
        let text = ruleset(&all_forwards(&[svc()], &[]));
        assert!(!text.contains("dnat"), "{text}");
    }
}

/// Watches the cluster and keeps the node's table in step; runs until killed.
pub async fn run(kubeconfig: &std::path::Path) -> Result<()> {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
    use subsea_runtime::reflect::{reflect, values};
    let client = subsea_runtime::client::local(Some(kubeconfig), None).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let watch = |group: &str, version: &str, kind: &str, plural: &str| {
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        reflect(api, &ar, tx.clone())
    };
    let services = watch("", "v1", "Service", "services");
    let slices = watch("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices");
    let last = std::sync::Mutex::new(String::new());
    subsea_runtime::controller::Loop::new("kube-proxy stand-in")
        .run(&mut rx, std::future::pending(), |_| async {
            let text = ruleset(&all_forwards(&values(&services), &values(&slices)));
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if text != *last {
                apply(&text).map_err(|e| format!("kube-proxy stand-in: {e:#}"))?;
                *last = text;
            }
            Ok::<(), String>(())
        })
        .await;
    Ok(())
}
