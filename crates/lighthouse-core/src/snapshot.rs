//! Builds the resolver's [`Snapshot`] from the objects in the cluster: the aggregated
//! ServiceImports, the Lighthouse EndpointSlices (one per exporting cluster) and the active
//! Gateway's connections. Pure. [`build_with`] reuses the services whose objects did not change
//! since the last build (by resourceVersion), so a rebuild at 10,000 services after one change
//! groups objects but builds one service.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use subsea_api::mcs::v1alpha1::ServiceImport;
use subsea_api::submariner::Gateway;
use subsea_health::duration::parse_go_duration;

use crate::export::{annotation, key, label};
use crate::labels::*;
use crate::resolve::{Backend, ClusterAddrs, Port, Service, Snapshot};

/// The services of the last build with a fingerprint of the objects each was built from.
#[derive(Debug, Default)]
pub struct Memo {
    built: HashMap<(String, String), (u64, Arc<Service>)>,
}

/// The snapshot for `local` from the objects in the cluster.
pub fn build(
    local: &str,
    imports: &[&ServiceImport],
    slices: &[&EndpointSlice],
    gateways: &[&Gateway],
    prefer_nearest: bool,
) -> Snapshot {
    build_with(local, imports, slices, gateways, prefer_nearest, &Memo::default()).0
}

/// One service's objects: its aggregated import and its Lighthouse slices in its namespace.
struct Group<'a> {
    import: &'a ServiceImport,
    slices: Vec<&'a EndpointSlice>,
}

/// [`build`], reusing from `memo` every service whose objects are unchanged; returns the memo
/// for the next build. Same snapshot as [`build`] (round-robin positions carry over).
pub fn build_with(
    local: &str,
    imports: &[&ServiceImport],
    slices: &[&EndpointSlice],
    gateways: &[&Gateway],
    prefer_nearest: bool,
    memo: &Memo,
) -> (Snapshot, Memo) {
    let mut groups: HashMap<(String, String), Group> = HashMap::new();
    // Per-cluster imports carry the service-name label; the aggregates DNS serves do not.
    for i in imports
        .iter()
        .filter(|i| label(&i.metadata, SERVICE_NAME).is_empty())
    {
        let (ns, name) = key(&i.metadata);
        groups.insert(
            (ns.to_lowercase(), name.to_lowercase()),
            Group {
                import: i,
                slices: Vec::new(),
            },
        );
    }
    for sl in slices
        .iter()
        .filter(|sl| label(&sl.metadata, MANAGED_BY) == MANAGER)
    {
        let ns = key(&sl.metadata).0;
        // Only copies in the service's own namespace (not the broker's).
        if label(&sl.metadata, SOURCE_NAMESPACE) != ns {
            continue;
        }
        let service_key = (
            ns.to_lowercase(),
            label(&sl.metadata, SERVICE_NAME).to_lowercase(),
        );
        if let Some(g) = groups.get_mut(&service_key) {
            g.slices.push(sl);
        }
    }
    let mut snap = Snapshot {
        local: local.into(),
        prefer_nearest,
        ..Default::default()
    };
    let mut next = Memo::default();
    for (service_key, mut g) in groups {
        // The same objects in the same order give the same answers, whatever the list order.
        g.slices
            .sort_by(|a, b| key(&a.metadata).1.cmp(key(&b.metadata).1));
        let print = fingerprint(&g, local);
        let reused = print.and_then(|p| {
            memo.built
                .get(&service_key)
                .filter(|(q, _)| *q == p)
                .map(|(_, svc)| svc.clone())
        });
        let svc = reused.unwrap_or_else(|| Arc::new(service(local, &service_key, &g, slices)));
        if let Some(p) = print {
            next.built.insert(service_key.clone(), (p, svc.clone()));
        }
        snap.services.insert(service_key, svc);
    }
    gateway_health(&mut snap, gateways);
    snap.index_reverse();
    (snap, next)
}

/// A fingerprint of what a service is built from, `None` when it cannot be told apart from a
/// changed one: an object without a resourceVersion (a fixture), or a headless export of this
/// cluster under Globalnet, which reads the cluster's own Kubernetes slices too.
fn fingerprint(g: &Group, local: &str) -> Option<u64> {
    let mut h = DefaultHasher::new();
    g.import.metadata.resource_version.as_deref()?.hash(&mut h);
    key(&g.import.metadata).hash(&mut h);
    for sl in &g.slices {
        if label(&sl.metadata, SOURCE_CLUSTER) == local
            && annotation(&sl.metadata, crate::globalnet::GLOBALNET_ENABLED) == "true"
        {
            return None;
        }
        key(&sl.metadata).hash(&mut h);
        sl.metadata.resource_version.as_deref()?.hash(&mut h);
    }
    Some(h.finish())
}

/// One service from its import and slices.
fn service(local: &str, service_key: &(String, String), g: &Group, all: &[&EndpointSlice]) -> Service {
    let ports = g
        .import
        .spec
        .ports
        .iter()
        .filter_map(|p| {
            Some(Port {
                name: p.name.as_deref().unwrap_or_default().to_lowercase(),
                protocol: p.protocol.as_deref().unwrap_or("TCP").to_lowercase(),
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    let headless = g.import.spec.type_ == "Headless";
    let mut svc = Service {
        headless,
        ports,
        prefer_close: g.import.spec.traffic_distribution.as_deref() == Some(crate::resolve::PREFER_CLOSE),
        vips: if headless {
            Vec::new()
        } else {
            g.import
                .spec
                .ips
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect()
        },
        ..Default::default()
    };
    for sl in &g.slices {
        let ns = key(&sl.metadata).0;
        let cluster = label(&sl.metadata, SOURCE_CLUSTER).to_string();
        let publish_not_ready = annotation(&sl.metadata, PUBLISH_NOT_READY) == "true";
        // Under Globalnet a headless export carries its pods' global IPs, which are not routable
        // inside their own cluster: the local cluster answers its pods' own addresses.
        let own_pods: Vec<k8s_openapi::api::discovery::v1::Endpoint>;
        let endpoints = if svc.headless
            && cluster == local
            && annotation(&sl.metadata, crate::globalnet::GLOBALNET_ENABLED) == "true"
        {
            own_pods = all
                .iter()
                .filter(|k| {
                    key(&k.metadata).0 == ns
                        && label(&k.metadata, MANAGED_BY) != MANAGER
                        && label(&k.metadata, K8S_SERVICE_NAME).eq_ignore_ascii_case(&service_key.1)
                })
                .flat_map(|k| k.endpoints.iter().cloned())
                .map(|mut e| {
                    if e.hostname.is_none() {
                        e.hostname = e.target_ref.as_ref().and_then(|t| t.name.clone());
                    }
                    e
                })
                .collect();
            &own_pods
        } else {
            &sl.endpoints
        };
        for e in endpoints {
            let ready = publish_not_ready || e.conditions.as_ref().and_then(|c| c.ready) != Some(false);
            let addrs: Vec<IpAddr> = e.addresses.iter().filter_map(|a| a.parse().ok()).collect();
            if svc.headless {
                svc.backends.push(Backend {
                    cluster: cluster.clone(),
                    hostname: e.hostname.as_deref().map(str::to_lowercase),
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
    svc.clusters.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    svc
}

/// Only the active gateway's view counts; without any Gateway, every cluster is connected.
fn gateway_health(snap: &mut Snapshot, gateways: &[&Gateway]) {
    snap.connected = connected(gateways);
    snap.rtt_us = rtts(gateways);
}

/// The average RTT in µs the active gateway measured to each connected cluster.
pub fn rtts(gateways: &[&Gateway]) -> HashMap<String, u64> {
    active_connections(gateways)
        .filter_map(|c| {
            let rtt = c
                .latency_rtt
                .as_ref()
                .and_then(|r| parse_go_duration(&r.average))?;
            Some((c.endpoint.cluster_id.clone(), rtt.as_micros() as u64))
        })
        .collect()
}

/// The active gateway's connected connections.
fn active_connections<'a>(
    gateways: &'a [&'a Gateway],
) -> impl Iterator<Item = &'a subsea_api::submariner::Connection> {
    gateways
        .iter()
        .filter_map(|g| g.status.as_ref())
        .filter(|st| st.ha_status == "active")
        .flat_map(|st| &st.connections)
        .filter(|c| c.status == "connected")
}

/// The clusters the active gateway's tunnels reach; `None` without any Gateway (then every
/// cluster counts as connected, as Lighthouse does).
pub fn connected(gateways: &[&Gateway]) -> Option<HashSet<String>> {
    (!gateways.is_empty()).then(|| {
        active_connections(gateways)
            .map(|c| c.endpoint.cluster_id.clone())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{Answer, Qtype, resolve};
    use serde_json::{Value, json};

    fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("a valid object")
    }

    fn slice(cluster: &str, ip: &str, ready: bool) -> EndpointSlice {
        typed(
            json!({"metadata": {"name": format!("web-{cluster}"), "namespace": "shop", "labels": {
            MANAGED_BY: MANAGER, SOURCE_NAMESPACE: "shop", SERVICE_NAME: "web", SOURCE_CLUSTER: cluster}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]}),
        )
    }

    #[test]
    fn imports_slices_and_gateway_health_become_answers() {
        let imports: Vec<ServiceImport> = vec![
            typed(
                json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                "metadata": {"name": "web", "namespace": "shop"}, "spec": {"type": "ClusterSetIP",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
            ),
            // A per-cluster import (service-name label) is not served.
            typed(
                json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                "metadata": {"name": "web-shop-c2", "namespace": "shop", "labels": {SERVICE_NAME: "web"}}, "spec": {"type": "ClusterSetIP"}}),
            ),
        ];
        let imports: Vec<&ServiceImport> = imports.iter().collect();
        let slices = [slice("c2", "100.66.0.5", true), slice("c3", "100.67.0.5", true)];
        let slices: Vec<&EndpointSlice> = slices.iter().collect();
        let ep = |c: &str| {
            json!({"cluster_id": c, "cable_name": format!("submariner-cable-{c}"), "hostname": "gw",
            "subnets": [], "private_ip": "172.30.0.1", "public_ip": "", "nat_enabled": false, "backend": "wireguard"})
        };
        let gw: Gateway = typed(
            json!({"apiVersion": "submariner.io/v1", "kind": "Gateway", "metadata": {"name": "gw"},
            "status": {"haStatus": "active", "localEndpoint": ep("c1"), "connections": [
            {"status": "connected", "endpoint": ep("c3"), "latencyRTT": {"average": "1.5ms"}},
            {"status": "error", "endpoint": ep("c2")}]}}),
        );
        let snap = build("c1", &imports, &slices, &[&gw], false);
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

    #[test]
    fn a_rebuild_reuses_unchanged_services_and_answers_as_a_fresh_build() {
        let import = |name: &str| -> ServiceImport {
            typed(
                json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                "metadata": {"name": name, "namespace": "shop", "resourceVersion": "1"},
                "spec": {"type": "ClusterSetIP"}}),
            )
        };
        let slice = |name: &str, cluster: &str, ip: &str, rv: &str| -> EndpointSlice {
            typed(
                json!({"metadata": {"name": format!("{name}-{cluster}"), "namespace": "shop",
                "resourceVersion": rv, "labels": {MANAGED_BY: MANAGER, SOURCE_NAMESPACE: "shop",
                SERVICE_NAME: name, SOURCE_CLUSTER: cluster}},
                "addressType": "IPv4", "endpoints": [{"addresses": [ip]}]}),
            )
        };
        let imports = [import("web"), import("db")];
        let imports: Vec<&ServiceImport> = imports.iter().collect();
        let first = [
            slice("web", "c2", "100.66.0.5", "2"),
            slice("db", "c2", "100.66.0.6", "3"),
        ];
        let (s1, memo) = build_with(
            "c1",
            &imports,
            &first.iter().collect::<Vec<_>>(),
            &[],
            false,
            &Memo::default(),
        );
        // db's slice changes and c3 exports web too.
        let second = [
            slice("web", "c2", "100.66.0.5", "2"),
            slice("db", "c2", "100.66.0.9", "4"),
            slice("web", "c3", "100.67.0.5", "5"),
        ];
        let second: Vec<&EndpointSlice> = second.iter().collect();
        let (s2, memo) = build_with("c1", &imports, &second, &[], false, &memo);
        let fresh = build("c1", &imports, &second, &[], false);
        let svc = |s: &Snapshot, n: &str| s.services[&("shop".to_string(), n.to_string())].clone();
        assert!(
            !Arc::ptr_eq(&svc(&s1, "db"), &svc(&s2, "db")),
            "a changed slice rebuilds"
        );
        assert!(
            !Arc::ptr_eq(&svc(&s1, "web"), &svc(&s2, "web")),
            "a new slice rebuilds"
        );
        for name in ["web", "db"] {
            assert_eq!(svc(&s2, name).clusters, svc(&fresh, name).clusters, "{name}");
        }
        assert_eq!(
            resolve(&s2, &["db", "shop", "svc"], Qtype::A),
            Answer::Addrs(vec!["100.66.0.9".parse().expect("ip")])
        );
        // Nothing changed: every service is the same one; a withdrawn import disappears.
        let (s3, memo) = build_with("c1", &imports, &second, &[], false, &memo);
        assert!(Arc::ptr_eq(&svc(&s2, "db"), &svc(&s3, "db")));
        assert!(Arc::ptr_eq(&svc(&s2, "web"), &svc(&s3, "web")));
        let (s4, _) = build_with("c1", &imports[..1], &second, &[], false, &memo);
        assert_eq!(s4.services.len(), 1);
        assert_eq!(resolve(&s4, &["db", "shop", "svc"], Qtype::A), Answer::NxDomain);
    }

    #[test]
    fn under_globalnet_the_local_cluster_answers_its_headless_pods_own_addresses() {
        let import: ServiceImport = typed(
            json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "db", "namespace": "shop"}, "spec": {"type": "Headless"}}),
        );
        let lh = |cluster: &str, ip: &str| -> EndpointSlice {
            typed(
                json!({"metadata": {"name": format!("db-{cluster}"), "namespace": "shop",
                "labels": {MANAGED_BY: MANAGER, SOURCE_NAMESPACE: "shop", SERVICE_NAME: "db", SOURCE_CLUSTER: cluster},
                "annotations": {crate::globalnet::GLOBALNET_ENABLED: "true"}},
                "addressType": "IPv4", "endpoints": [{"addresses": [ip], "hostname": "db-0"}]}),
            )
        };
        let k8s: EndpointSlice = typed(json!({"metadata": {"name": "db-abc", "namespace": "shop",
            "labels": {K8S_SERVICE_NAME: "db"}}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.1.5"], "targetRef": {"kind": "Pod", "name": "db-0"}}]}));
        let slices = [lh("c1", "242.0.0.11"), lh("c2", "242.1.0.11"), k8s];
        let slices: Vec<&EndpointSlice> = slices.iter().collect();
        let snap = build("c1", &[&import], &slices, &[], false);
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        assert_eq!(
            resolve(&snap, &["db-0", "c1", "db", "shop", "svc"], Qtype::A),
            Answer::Addrs(vec![ip("10.244.1.5")]),
            "our own pod at its own address"
        );
        assert_eq!(
            resolve(&snap, &["db-0", "c2", "db", "shop", "svc"], Qtype::A),
            Answer::Addrs(vec![ip("242.1.0.11")]),
            "another cluster's pod at its global IP"
        );
        // Seen from c2, c1's pod is at its global IP.
        let from_c2 = build("c2", &[&import], &slices, &[], false);
        assert_eq!(
            resolve(&from_c2, &["db-0", "c1", "db", "shop", "svc"], Qtype::A),
            Answer::Addrs(vec![ip("242.0.0.11")])
        );
    }
}
