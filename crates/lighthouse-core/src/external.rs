//! A cluster's externally reachable part of an export, for the external DNS publisher: what
//! ExternalDNS would publish for the Service (its load-balancer ingress IPs and external IPs,
//! under the names of its hostname annotation).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use subsea_api::extdns::{External, HOSTNAME_ANNOTATION, TTL_ANNOTATION};

use crate::export::annotation;

/// The [`subsea_api::extdns::EXTERNAL_ANNOTATION`] value for `svc`: JSON, or empty when the
/// Service is neither a LoadBalancer nor annotated with a hostname.
pub fn annotation_value(svc: &Service) -> String {
    external(svc)
        .and_then(|e| serde_json::to_string(&e).ok())
        .unwrap_or_default()
}

/// What the publisher may publish for `svc`.
pub fn external(svc: &Service) -> Option<External> {
    let spec = svc.spec.as_ref();
    let lb = spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    let hostnames: Vec<String> = annotation(&svc.metadata, HOSTNAME_ANNOTATION)
        .split(',')
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if !lb && hostnames.is_empty() {
        return None;
    }
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone());
    let external_ips = spec.and_then(|s| s.external_ips.clone()).into_iter().flatten();
    let mut addresses: Vec<IpAddr> = ingress
        .chain(external_ips)
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    addresses.sort();
    addresses.dedup();
    Some(External {
        hostnames,
        addresses: addresses.iter().map(IpAddr::to_string).collect(),
        ttl: annotation(&svc.metadata, TTL_ANNOTATION).trim().parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    #[test]
    fn a_load_balancer_publishes_its_ingress_ips_sorted() {
        let s = svc(
            serde_json::json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"ip": "2001:db8::1"}, {"ip": "198.51.100.2"}, {"hostname": "lb.example.net"}]}}}),
        );
        let e = external(&s).expect("published");
        assert_eq!(e.addresses, ["198.51.100.2", "203.0.113.9", "2001:db8::1"]);
        assert!(e.hostnames.is_empty());
    }

    #[test]
    fn the_hostname_annotation_names_the_records_and_sets_the_ttl() {
        let s = svc(
            serde_json::json!({"metadata": {"name": "web", "namespace": "default",
            "annotations": {HOSTNAME_ANNOTATION: "Web.Example.com., api.example.com", TTL_ANNOTATION: "60"}},
            "spec": {"type": "ClusterIP", "externalIPs": ["192.0.2.7", "not-an-ip"]}}),
        );
        let e = external(&s).expect("published");
        assert_eq!(e.hostnames, ["web.example.com", "api.example.com"]);
        assert_eq!(e.addresses, ["192.0.2.7"]);
        assert_eq!(e.ttl, Some(60));
    }

    #[test]
    fn a_plain_cluster_ip_service_publishes_nothing() {
        let s = svc(
            serde_json::json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.5"}}),
        );
        assert_eq!(external(&s), None);
        assert_eq!(annotation_value(&s), "");
    }
}
