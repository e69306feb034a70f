//! Builds the resolver's [`Snapshot`] from the objects in the cluster: the aggregated
//! ServiceImports, the Lighthouse EndpointSlices (one per exporting cluster) and the active
//! Gateway's connections. Pure.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::Value;

use crate::labels::*;
use crate::resolve::{Backend, ClusterAddrs, Port, Service, Snapshot};

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn label<'a>(v: &'a Value, key: &str) -> &'a str {
    s(v, &format!("/metadata/labels/{}", key.replace('/', "~1")))
}

fn ips(v: &Value) -> Vec<IpAddr> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str()?.parse().ok())
        .collect()
}

fn go_duration_us(text: &str) -> Option<u64> {
    let i = text.find(|c: char| c.is_alphabetic() || c == 'µ')?;
    let (n, unit) = text.split_at(i);
    let n: f64 = n.parse().ok()?;
    let us = match unit {
        "ns" => n / 1000.0,
        "µs" | "us" => n,
        "ms" => n * 1000.0,
        "s" => n * 1e6,
        _ => return None,
    };
    Some(us as u64)
}

/// The snapshot for `local` from lists of objects (any JSON the API returns).
pub fn build(
    local: &str,
    imports: &[Value],
    slices: &[Value],
    gateways: &[Value],
    prefer_nearest: bool,
) -> Snapshot {
    let mut snap = Snapshot {
        local: local.into(),
        prefer_nearest,
        ..Default::default()
    };
    // Per-cluster imports carry the service-name label; the aggregates DNS serves do not.
    for i in imports.iter().filter(|i| label(i, SERVICE_NAME).is_empty()) {
        let (ns, name) = (s(i, "/metadata/namespace"), s(i, "/metadata/name"));
        let ports = i
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some(Port {
                    name: p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_lowercase(),
                    protocol: p
                        .get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("TCP")
                        .to_lowercase(),
                    port: u16::try_from(p.get("port")?.as_u64()?).ok()?,
                })
            })
            .collect();
        snap.services.insert(
            (ns.to_lowercase(), name.to_lowercase()),
            Service {
                headless: s(i, "/spec/type") == "Headless",
                ports,
                ..Default::default()
            },
        );
    }
    for sl in slices.iter().filter(|sl| label(sl, MANAGED_BY) == MANAGER) {
        let ns = s(sl, "/metadata/namespace");
        // Only copies in the service's own namespace (not the broker's).
        if label(sl, SOURCE_NAMESPACE) != ns {
            continue;
        }
        let key = (ns.to_lowercase(), label(sl, SERVICE_NAME).to_lowercase());
        let Some(svc) = snap.services.get_mut(&key) else {
            continue;
        };
        let cluster = label(sl, SOURCE_CLUSTER).to_string();
        let publish_not_ready = s(
            sl,
            &format!("/metadata/annotations/{}", PUBLISH_NOT_READY.replace('/', "~1")),
        ) == "true";
        for e in sl
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ready =
                publish_not_ready || e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false);
            let addrs = ips(&e["addresses"]);
            if svc.headless {
                svc.backends.push(Backend {
                    cluster: cluster.clone(),
                    hostname: e.get("hostname").and_then(Value::as_str).map(str::to_lowercase),
                    ips: addrs,
                    ready,
                });
            } else {
                match svc.clusters.iter_mut().find(|c| c.cluster == cluster) {
                    Some(c) => {
                        c.ips.extend(addrs);
                        c.ready |= ready;
                    }
                    None => svc.clusters.push(ClusterAddrs {
                        cluster: cluster.clone(),
                        ips: addrs,
                        ready,
                    }),
                }
            }
        }
    }
    for svc in snap.services.values_mut() {
        svc.clusters.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    }
    // Only the active gateway's view counts; without any Gateway, every cluster is connected.
    let active: Vec<&Value> = gateways
        .iter()
        .filter(|g| s(g, "/status/haStatus") == "active")
        .collect();
    if !gateways.is_empty() {
        let mut connected = HashSet::new();
        for g in &active {
            for c in g
                .pointer("/status/connections")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let cluster = s(c, "/endpoint/cluster_id").to_string();
                if s(c, "/status") == "connected" {
                    if let Some(us) = go_duration_us(s(c, "/latencyRTT/average")) {
                        snap.rtt_us.insert(cluster.clone(), us);
                    }
                    connected.insert(cluster);
                }
            }
        }
        snap.connected = Some(connected);
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{Answer, Qtype, resolve};
    use serde_json::json;

    fn slice(cluster: &str, ip: &str, ready: bool) -> Value {
        json!({"metadata": {"name": format!("web-{cluster}"), "namespace": "shop", "labels": {
            MANAGED_BY: MANAGER, SOURCE_NAMESPACE: "shop", SERVICE_NAME: "web", SOURCE_CLUSTER: cluster}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]})
    }

    #[test]
    fn imports_slices_and_gateway_health_become_answers() {
        let imports = vec![
            json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"type": "ClusterSetIP",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
            // A per-cluster import (service-name label) is not served.
            json!({"metadata": {"name": "web-shop-c2", "namespace": "shop", "labels": {SERVICE_NAME: "web"}}, "spec": {"type": "ClusterSetIP"}}),
        ];
        let slices = vec![slice("c2", "100.66.0.5", true), slice("c3", "100.67.0.5", true)];
        let gw = json!({"status": {"haStatus": "active", "connections": [
            {"status": "connected", "endpoint": {"cluster_id": "c3"}, "latencyRTT": {"average": "1.5ms"}},
            {"status": "error", "endpoint": {"cluster_id": "c2"}}]}});
        let snap = build("c1", &imports, &slices, &[gw], false);
        assert_eq!(snap.services.len(), 1);
        assert_eq!(snap.rtt_us.get("c3"), Some(&1500));
        // c2's tunnel is in error: only c3 is answered.
        for _ in 0..3 {
            assert_eq!(
                resolve(&snap, &["web", "shop", "svc"], Qtype::A),
                Answer::Addrs(vec!["100.67.0.5".parse().expect("ip")])
            );
        }
        let no_gateways = build("c1", &imports, &slices, &[], false);
        assert!(no_gateways.connected.is_none());
    }
}
