//! Lighthouse under Globalnet: other clusters reach an exported Service at its
//! GlobalIngressIP, never at its ClusterIP or pod IPs (those may be the same in every
//! cluster). The export is rewritten before it is published: a ClusterIP Service's address
//! becomes its global IP, a headless Service's endpoints their pods' global IPs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use subsea_api::globalnet::{GlobalIngressIP, TARGET_HEADLESS_POD, TARGET_SERVICE};

use crate::export::{Invalid, key};

/// Annotation on a headless Service's Lighthouse EndpointSlices when their addresses are
/// global IPs.
pub const GLOBALNET_ENABLED: &str = "lighthouse.submariner.io/globalnet-enabled";

/// The allocated global IPs of a cluster, from its GlobalIngressIPs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalIps {
    /// `(namespace, service)` → global IP of a ClusterIP Service.
    pub services: BTreeMap<(String, String), String>,
    /// `(namespace, pod)` → global IP of a headless Service's pod.
    pub pods: BTreeMap<(String, String), String>,
}

impl GlobalIps {
    /// From the GlobalIngressIPs (those without an allocated address are left out).
    pub fn from_ingress(list: &[&GlobalIngressIP]) -> Self {
        let mut g = Self::default();
        for i in list {
            let (ns, _) = key(&i.metadata);
            let Some(ip) = i
                .status
                .as_ref()
                .map(|s| s.allocated_ip.clone())
                .filter(|ip| !ip.is_empty())
            else {
                continue;
            };
            match i.spec.target.as_str() {
                TARGET_SERVICE => {
                    if let Some(r) = &i.spec.service_ref {
                        g.services.insert((ns.into(), r.name.clone()), ip);
                    }
                }
                TARGET_HEADLESS_POD => {
                    if let Some(r) = &i.spec.pod_ref {
                        g.pods.insert((ns.into(), r.name.clone()), ip);
                    }
                }
                _ => {}
            }
        }
        g
    }
}

/// A ClusterIP Service as published under Globalnet: its only address is its global IP.
pub fn service(svc: &Service, g: &GlobalIps) -> Result<Service, Invalid> {
    let (ns, name) = key(&svc.metadata);
    let Some(ip) = g.services.get(&(ns.to_string(), name.to_string())) else {
        return Err((
            "ServiceGlobalIPUnavailable",
            "Service doesn't have a global IP yet".into(),
        ));
    };
    let mut out = svc.clone();
    if let Some(spec) = out.spec.as_mut() {
        spec.cluster_ip = Some(ip.clone());
        spec.cluster_ips = Some(vec![ip.clone()]);
        spec.ip_families = Some(vec!["IPv4".into()]);
    }
    Ok(out)
}

/// A headless Service's EndpointSlices under Globalnet: each pod's addresses replaced by its
/// global IP; pods without one yet are left out until Globalnet allocates it.
pub fn headless_slices(ns: &str, slices: &[&EndpointSlice], g: &GlobalIps) -> Vec<EndpointSlice> {
    slices
        .iter()
        .filter(|s| s.address_type == "IPv4")
        .map(|s| {
            let mut out = (*s).clone();
            out.endpoints = s
                .endpoints
                .iter()
                .filter_map(|e| {
                    let pod = e.target_ref.as_ref()?.name.clone()?;
                    let ip = g.pods.get(&(ns.to_string(), pod))?;
                    let mut e = e.clone();
                    e.addresses = vec![ip.clone()];
                    Some(e)
                })
                .collect();
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn giip(ns: &str, name: &str, target: &str, reference: &str, ip: &str) -> GlobalIngressIP {
        let refs = if target == TARGET_SERVICE {
            json!({"serviceRef": {"name": reference}})
        } else {
            json!({"podRef": {"name": reference}})
        };
        let mut spec = json!({"target": target});
        spec.as_object_mut()
            .expect("object")
            .extend(refs.as_object().expect("refs").clone());
        serde_json::from_value(
            json!({"apiVersion": "submariner.io/v1", "kind": "GlobalIngressIP",
            "metadata": {"name": name, "namespace": ns}, "spec": spec, "status": {"allocatedIP": ip}}),
        )
        .expect("giip")
    }

    #[test]
    fn services_take_their_global_ip_or_wait_for_one() {
        let g = GlobalIps::from_ingress(&[
            &giip("default", "web", TARGET_SERVICE, "web", "242.0.0.10"),
            &giip("default", "pending", TARGET_SERVICE, "pending", ""),
        ]);
        let svc: Service =
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.4", "clusterIPs": ["10.96.0.4"], "ports": [{"port": 80}]}}))
            .expect("svc");
        let out = service(&svc, &g).expect("has one");
        assert_eq!(
            out.spec.as_ref().and_then(|s| s.cluster_ip.clone()).as_deref(),
            Some("242.0.0.10")
        );
        let mut pending = svc.clone();
        pending.metadata.name = Some("pending".into());
        assert_eq!(
            service(&pending, &g).expect_err("none yet").0,
            "ServiceGlobalIPUnavailable"
        );
    }

    #[test]
    fn headless_endpoints_carry_their_pods_global_ips() {
        let g = GlobalIps::from_ingress(&[&giip(
            "default",
            "pod-web-0",
            TARGET_HEADLESS_POD,
            "web-0",
            "242.0.0.11",
        )]);
        let slice: EndpointSlice = serde_json::from_value(json!({"metadata": {"name": "web-x", "namespace": "default"},
            "addressType": "IPv4", "endpoints": [
                {"addresses": ["10.244.1.5"], "targetRef": {"kind": "Pod", "name": "web-0"}, "hostname": "web-0"},
                {"addresses": ["10.244.2.5"], "targetRef": {"kind": "Pod", "name": "web-1"}}]}))
        .expect("slice");
        let out = headless_slices("default", &[&slice], &g);
        assert_eq!(out[0].endpoints.len(), 1, "web-1 has no global IP yet");
        assert_eq!(out[0].endpoints[0].addresses, ["242.0.0.11"]);
        assert_eq!(out[0].endpoints[0].hostname.as_deref(), Some("web-0"));
    }
}
