//! The records every exported service should have. For each Service exported with external
//! addresses (a LoadBalancer's ingress IPs or its external IPs, which the Lighthouse agent
//! writes on the cluster's broker ServiceImport): the name (its hostname annotation, else
//! `<svc>.<ns>.<zone>`) holds the addresses of every reachable exporting cluster, and
//! `<cluster>.<name>` holds each reachable cluster's own. When every exporting cluster looks
//! down the name keeps all their addresses: an empty answer helps no client, and a partition
//! seen from everywhere is more likely the observers' problem (Route 53's rule for health
//! checks that all fail).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use subsea_api::extdns::{EXTERNAL_ANNOTATION, External};
use subsea_api::mcs::v1alpha1::ServiceImport;

use crate::RType;
use crate::health::Health;
use crate::name;

/// One cluster's part of an export.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// The exporting cluster.
    pub cluster: String,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub service: String,
    /// What it publishes.
    pub external: External,
}

fn label<'a>(si: &'a ServiceImport, key: &str) -> &'a str {
    si.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

/// The parts on the broker: each cluster's ServiceImport with a non-empty external annotation.
pub fn parts(imports: &[&ServiceImport]) -> Vec<Part> {
    imports
        .iter()
        .filter_map(|si| {
            let text = si.metadata.annotations.as_ref()?.get(EXTERNAL_ANNOTATION)?;
            let external: External = serde_json::from_str(text).ok()?;
            let part = Part {
                cluster: label(si, "multicluster.kubernetes.io/source-cluster").to_string(),
                namespace: label(si, "lighthouse.submariner.io/sourceNamespace").to_string(),
                service: label(si, "multicluster.kubernetes.io/service-name").to_string(),
                external,
            };
            (!part.cluster.is_empty() && !part.namespace.is_empty() && !part.service.is_empty())
                .then_some(part)
        })
        .collect()
}

/// What every record gets unless the Service says otherwise.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The zone the records go in (normal form).
    pub zone: String,
    /// TTL in seconds.
    pub ttl: u32,
}

/// One RRset the zone should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The owner name (normal form).
    pub name: String,
    /// A or AAAA.
    pub rtype: RType,
    /// The addresses.
    pub targets: BTreeSet<IpAddr>,
    /// TTL in seconds.
    pub ttl: u32,
    /// `service/<ns>/<name>`, as the TXT registry writes it.
    pub resource: String,
    /// The clusters whose addresses these are.
    pub clusters: Vec<String>,
}

/// A name not published, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The name.
    pub name: String,
    /// The Service it was for.
    pub resource: String,
    /// Why.
    pub reason: String,
}

/// The records `parts` call for under `health`, and the names refused.
pub fn desired(parts: &[Part], health: &Health, s: &Settings) -> (Vec<Desired>, Vec<Skip>) {
    let mut services: BTreeMap<(&str, &str), Vec<&Part>> = BTreeMap::new();
    for p in parts {
        services.entry((&p.namespace, &p.service)).or_default().push(p);
    }
    let mut out: Vec<Desired> = Vec::new();
    let mut skipped = Vec::new();
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for ((ns, svc), mut ps) in services {
        ps.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        let resource = format!("service/{ns}/{svc}");
        let mut hostnames: BTreeSet<String> = ps
            .iter()
            .flat_map(|p| p.external.hostnames.iter().map(|h| name::normal(h)))
            .collect();
        if hostnames.is_empty() {
            hostnames.insert(format!("{svc}.{ns}.{}", s.zone));
        }
        let addressed: Vec<&Part> = ps
            .iter()
            .copied()
            .filter(|p| !p.external.addresses.is_empty())
            .collect();
        let up: Vec<&Part> = addressed
            .iter()
            .copied()
            .filter(|p| health.is_up(&p.cluster))
            .collect();
        // Fail open when every cluster looks down (see the module text).
        let serving = if up.is_empty() {
            addressed.clone()
        } else {
            up.clone()
        };
        let ttl = ps.iter().filter_map(|p| p.external.ttl).min().unwrap_or(s.ttl);
        for h in hostnames {
            let refuse = |reason: String| Skip {
                name: h.clone(),
                resource: resource.clone(),
                reason,
            };
            if let Some(why) = name::invalid(&h) {
                skipped.push(refuse(why));
                continue;
            }
            if !name::within(&h, &s.zone) {
                skipped.push(refuse(format!("outside the zone {}", s.zone)));
                continue;
            }
            if let Some(holder) = claimed.get(&h) {
                skipped.push(refuse(format!("already published for {holder}")));
                continue;
            }
            claimed.insert(h.clone(), resource.clone());
            push(&mut out, &h, &serving, ttl, &resource);
            for p in &up {
                let per = format!("{}.{h}", name::normal(&p.cluster));
                if name::invalid(&per).is_none() {
                    push(&mut out, &per, &[*p], ttl, &resource);
                }
            }
        }
    }
    (out, skipped)
}

fn push(out: &mut Vec<Desired>, name: &str, parts: &[&Part], ttl: u32, resource: &str) {
    for rtype in [RType::A, RType::Aaaa] {
        let mut clusters = Vec::new();
        let mut targets = BTreeSet::new();
        for p in parts {
            let mine: Vec<IpAddr> = p
                .external
                .addresses
                .iter()
                .filter_map(|a| a.parse().ok())
                .filter(|ip| RType::of(ip) == rtype)
                .collect();
            if !mine.is_empty() {
                clusters.push(p.cluster.clone());
                targets.extend(mine);
            }
        }
        if !targets.is_empty() {
            out.push(Desired {
                name: name.to_string(),
                rtype,
                targets,
                ttl,
                resource: resource.to_string(),
                clusters,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Heartbeat, health};

    fn part(cluster: &str, svc: &str, addrs: &[&str], hostnames: &[&str]) -> Part {
        Part {
            cluster: cluster.into(),
            namespace: "default".into(),
            service: svc.into(),
            external: External {
                hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
                addresses: addrs.iter().map(|a| a.to_string()).collect(),
                ttl: None,
            },
        }
    }

    fn settings() -> Settings {
        Settings {
            zone: "clusters.example.com".into(),
            ttl: 30,
        }
    }

    fn find<'a>(d: &'a [Desired], name: &str, t: RType) -> Option<&'a Desired> {
        d.iter().find(|x| x.name == name && x.rtype == t)
    }

    fn ips(d: &Desired) -> Vec<String> {
        d.targets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn one_name_holds_every_clusters_addresses_and_each_cluster_has_its_own() {
        let parts = [
            part("c1", "web", &["192.0.2.1", "2001:db8::1"], &[]),
            part("c2", "web", &["198.51.100.2"], &[]),
        ];
        let (d, skipped) = desired(&parts, &Health::default(), &settings());
        assert!(skipped.is_empty());
        let all = find(&d, "web.default.clusters.example.com", RType::A).expect("A");
        assert_eq!(ips(all), ["192.0.2.1", "198.51.100.2"]);
        assert_eq!(all.clusters, ["c1", "c2"]);
        assert_eq!((all.ttl, all.resource.as_str()), (30, "service/default/web"));
        let v6 = find(&d, "web.default.clusters.example.com", RType::Aaaa).expect("AAAA");
        assert_eq!(ips(v6), ["2001:db8::1"]);
        assert_eq!(
            ips(find(&d, "c2.web.default.clusters.example.com", RType::A).expect("per cluster")),
            ["198.51.100.2"]
        );
        assert!(find(&d, "c2.web.default.clusters.example.com", RType::Aaaa).is_none());
        assert_eq!(d.len(), 5);
    }

    #[test]
    fn an_unreachable_cluster_leaves_every_name_but_the_last_cluster_stays() {
        let beats = [
            Heartbeat {
                cluster: "c1".into(),
                renewed: 100.0,
                seconds: 10.0,
                connections: [("c2".to_string(), "error".to_string())].into(),
            },
            Heartbeat {
                cluster: "c2".into(),
                renewed: 50.0,
                seconds: 10.0,
                connections: Default::default(),
            },
        ];
        let h = health(&beats, 101.0);
        let parts = [
            part("c1", "web", &["192.0.2.1"], &[]),
            part("c2", "web", &["198.51.100.2"], &[]),
        ];
        let (d, _) = desired(&parts, &h, &settings());
        assert_eq!(
            ips(find(&d, "web.default.clusters.example.com", RType::A).expect("A")),
            ["192.0.2.1"]
        );
        assert!(find(&d, "c2.web.default.clusters.example.com", RType::A).is_none());
        // Only c2 exports: every exporter is down, so the name keeps its addresses.
        let (d, _) = desired(&parts[1..], &h, &settings());
        assert_eq!(
            ips(find(&d, "web.default.clusters.example.com", RType::A).expect("A")),
            ["198.51.100.2"]
        );
    }

    #[test]
    fn hostname_annotations_name_the_records_and_bad_or_taken_names_are_refused() {
        let parts = [
            part("c1", "api", &["192.0.2.1"], &["api.clusters.example.com"]),
            part(
                "c1",
                "web",
                &["192.0.2.2"],
                &[
                    "api.clusters.example.com",
                    "www.other.org",
                    "bad_-.clusters.example.com.",
                ],
            ),
            part("c1", "quiet", &[], &[]),
        ];
        let (d, skipped) = desired(&parts, &Health::default(), &settings());
        assert_eq!(
            ips(find(&d, "api.clusters.example.com", RType::A).expect("api")),
            ["192.0.2.1"]
        );
        let reasons: Vec<(&str, &str)> = skipped
            .iter()
            .map(|s| (s.name.as_str(), s.reason.as_str()))
            .collect();
        assert!(
            reasons.contains(&(
                "api.clusters.example.com",
                "already published for service/default/api"
            )),
            "{reasons:?}"
        );
        assert!(
            reasons.contains(&("www.other.org", "outside the zone clusters.example.com")),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|(n, r)| *n == "bad_-.clusters.example.com" && r.contains("label")),
            "{reasons:?}"
        );
        assert!(
            d.iter().all(|x| !x.name.contains("quiet")),
            "no addresses, nothing published"
        );
    }

    #[test]
    fn the_shortest_ttl_any_cluster_asks_for_wins() {
        let mut a = part("c1", "web", &["192.0.2.1"], &[]);
        a.external.ttl = Some(120);
        let mut b = part("c2", "web", &["192.0.2.2"], &[]);
        b.external.ttl = Some(60);
        let (d, _) = desired(&[a, b], &Health::default(), &settings());
        assert!(d.iter().all(|x| x.ttl == 60));
    }

    #[test]
    fn parts_come_from_the_annotated_imports_only() {
        let si = |ann: Option<&str>| -> ServiceImport {
            let mut v = serde_json::json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                "metadata": {"name": "web-default-c1", "namespace": "submariner-k8s-broker",
                    "labels": {"multicluster.kubernetes.io/source-cluster": "c1", "lighthouse.submariner.io/sourceNamespace": "default",
                        "multicluster.kubernetes.io/service-name": "web"}},
                "spec": {"type": "ClusterSetIP", "ports": []}});
            if let Some(a) = ann {
                v["metadata"]["annotations"] = serde_json::json!({EXTERNAL_ANNOTATION: a});
            }
            serde_json::from_value(v).expect("import")
        };
        let with = si(Some(r#"{"addresses":["192.0.2.1"]}"#));
        let empty = si(Some(""));
        let none = si(None);
        let p = parts(&[&with, &empty, &none]);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (
                p[0].cluster.as_str(),
                p[0].namespace.as_str(),
                p[0].service.as_str()
            ),
            ("c1", "default", "web")
        );
    }
}
