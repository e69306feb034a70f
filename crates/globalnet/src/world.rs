//! From the API's typed objects to the plain [`World`] the plan decides on.

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{Pod as KPod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::DynamicObject;
use subsea_api::globalnet::{
    ClusterGlobalEgressIP, GlobalEgressIP, GlobalIngressIP, TARGET_HEADLESS_POD, TARGET_SERVICE,
};
use subsea_api::submariner::Endpoint;
use subsea_cidr::Cidr;
use subsea_globalnet_core::plan::{CLUSTER_EGRESS, EGRESS, INGRESS};
use subsea_globalnet_core::{Egress, Export, Ingress, Key, Pod, Scope, Target};

fn created<K: kube::Resource>(o: &K) -> String {
    o.meta()
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default()
}

/// The egress objects.
pub fn egress(ns: &[&GlobalEgressIP], cluster: &[&ClusterGlobalEgressIP]) -> Vec<Egress> {
    let mut out: Vec<Egress> = ns
        .iter()
        .map(|g| Egress {
            key: Key {
                kind: EGRESS,
                namespace: g.namespace().unwrap_or_default(),
                name: g.name_any(),
            },
            scope: Scope::Namespace(g.spec.pod_selector.clone()),
            requested: g.spec.number_of_ips.unwrap_or(1),
            held: g
                .status
                .as_ref()
                .map(|s| s.allocated_ips.clone())
                .unwrap_or_default(),
            created: created(*g),
        })
        .collect();
    out.extend(cluster.iter().map(|g| {
        Egress {
            key: Key {
                kind: CLUSTER_EGRESS,
                namespace: String::new(),
                name: g.name_any(),
            },
            scope: Scope::Cluster,
            requested: g
                .spec
                .num_global_ips
                .unwrap_or(i64::from(subsea_api::globalnet::DEFAULT_CLUSTER_EGRESS_IPS)),
            held: g
                .status
                .as_ref()
                .map(|s| s.allocated_ips.clone())
                .unwrap_or_default(),
            created: created(*g),
        }
    }));
    out
}

/// The ingress objects (ones with an unknown target are left alone: not ours to manage).
pub fn ingress(list: &[&GlobalIngressIP]) -> Vec<Ingress> {
    list.iter()
        .filter_map(|g| {
            let target = match g.spec.target.as_str() {
                TARGET_SERVICE => Target::Service(g.spec.service_ref.as_ref()?.name.clone()),
                TARGET_HEADLESS_POD => Target::HeadlessPod {
                    service: g
                        .labels()
                        .get(subsea_api::globalnet::SERVICE_REF_LABEL)
                        .cloned()
                        .unwrap_or_default(),
                    pod: g.spec.pod_ref.as_ref()?.name.clone(),
                },
                _ => return None,
            };
            Some(Ingress {
                key: Key {
                    kind: INGRESS,
                    namespace: g.namespace().unwrap_or_default(),
                    name: g.name_any(),
                },
                target,
                held: g
                    .status
                    .as_ref()
                    .map(|s| s.allocated_ip.clone())
                    .unwrap_or_default(),
                created: created(*g),
            })
        })
        .collect()
}

/// The exported Services: a ServiceExport with its Service; headless ones with their ready pods.
pub fn exports(exports: &[&DynamicObject], services: &[&Service], slices: &[&EndpointSlice]) -> Vec<Export> {
    exports
        .iter()
        .filter(|e| e.metadata.deletion_timestamp.is_none())
        .filter_map(|e| {
            let (ns, name) = (e.namespace()?, e.name_any());
            let svc = services
                .iter()
                .find(|s| s.namespace().as_deref() == Some(&ns) && s.name_any() == name)?;
            let spec = svc.spec.as_ref()?;
            let headless = spec.cluster_ip.as_deref() == Some("None");
            let mut ready_pods: Vec<String> = if headless {
                slices
                    .iter()
                    .filter(|s| {
                        s.namespace().as_deref() == Some(&ns)
                            && s.labels().get("kubernetes.io/service-name") == Some(&name)
                    })
                    .flat_map(|s| s.endpoints.iter())
                    .filter(|ep| ep.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                    .filter_map(|ep| ep.target_ref.as_ref())
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .filter_map(|r| r.name.clone())
                    .collect()
            } else {
                vec![]
            };
            ready_pods.sort();
            ready_pods.dedup();
            Some(Export {
                namespace: ns,
                name,
                headless,
                ready_pods,
            })
        })
        .collect()
}

/// Pods with their IPv4 address.
pub fn pods(list: &[&KPod]) -> Vec<Pod> {
    list.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| Pod {
            namespace: p.namespace().unwrap_or_default(),
            name: p.name_any(),
            labels: p.labels().clone(),
            ip: p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse::<Ipv4Addr>().ok()),
        })
        .collect()
}

/// Whether `hostname` is the cluster's active gateway: the host of its newest local Endpoint.
pub fn is_active(endpoints: &[&Endpoint], cluster_id: &str, hostname: &str) -> bool {
    endpoints
        .iter()
        .filter(|e| e.spec.cluster_id == cluster_id)
        .max_by_key(|e| created(**e))
        .is_some_and(|e| e.spec.hostname == hostname)
}

/// Other clusters' GlobalCIDRs (their Endpoints' subnets).
pub fn remote_cidrs(endpoints: &[&Endpoint], cluster_id: &str) -> Vec<Cidr> {
    let mut out: Vec<Cidr> = endpoints
        .iter()
        .filter(|e| e.spec.cluster_id != cluster_id)
        .flat_map(|e| e.spec.subnets.iter())
        .filter_map(|s| Cidr::parse(s).ok())
        .filter(|c| c.addr.is_ipv4())
        .collect();
    out.sort_by_key(|c| c.to_string());
    out.dedup();
    out
}

/// The node's IPv4 address inside the pod CIDRs (its CNI interface address).
pub fn cni_ip(addrs: &[IpAddr], pod_cidrs: &[Cidr]) -> Option<Ipv4Addr> {
    addrs.iter().find_map(|ip| match ip {
        IpAddr::V4(v4) if pod_cidrs.iter().any(|c| c.contains(*ip)) => Some(*v4),
        _ => None,
    })
}
