//! The ClusterSetIP: one virtual IP per service for the whole cluster set, agreed by the
//! exporting clusters through their broker imports, without a central allocator.
//!
//! Each exporting cluster's broker import carries the service's VIP and when it was first
//! claimed (annotation [`ANNOTATION`], `"<ip> <claimed-at>"`). The service's VIP is the one its
//! imports carry that was claimed first; an exporter that finds none claims the first free
//! address of the range from a slot hashed from the service's name (so two exporters of one
//! service pick the same). Should two services claim one address at once, the earlier claim
//! keeps it and the other service claims again. Every exporter carries the VIP, so it stays
//! while any exporter does (stable across agent restarts and exporters leaving) and is free
//! again once the last export goes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use subsea_api::mcs::v1alpha1::ServiceImport;
use subsea_cidr::Cidr;

use crate::export::{annotation, label};
use crate::labels::{SERVICE_NAME, SOURCE_NAMESPACE};

/// Lighthouse's per-export opt-in (`"true"`) or opt-out (`"false"`), on the ServiceExport.
pub const USE_CLUSTERSET_IP: &str = "lighthouse.submariner.io/use-clusterset-ip";
/// On a broker import: the service's VIP and when it was first claimed.
pub const ANNOTATION: &str = "subsea.io/clusterset-ip";
/// Submariner's default ClusterSetIP range.
pub const DEFAULT_RANGE: &str = "243.0.0.0/8";

/// The cluster set's ClusterSetIP settings, as the agent was given them.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Whether an export without the annotation gets a VIP.
    pub default_on: bool,
    /// The range VIPs are claimed from.
    pub range: Cidr,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_on: false,
            range: Cidr::parse(DEFAULT_RANGE).unwrap_or_else(|_| Cidr {
                addr: IpAddr::V4(Ipv4Addr::new(243, 0, 0, 0)),
                prefix: 8,
            }),
        }
    }
}

/// Whether an export asks for a VIP: its annotation, else the cluster set's default.
pub fn wanted(export: &ObjectMeta, default_on: bool) -> bool {
    match annotation(export, USE_CLUSTERSET_IP) {
        "true" => true,
        "false" => false,
        _ => default_on,
    }
}

/// A VIP claim: the address and the claim time (RFC 3339, compared as text: all are UTC `Z`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    /// When first claimed.
    pub at: String,
    /// The address.
    pub ip: Ipv4Addr,
}

impl Claim {
    /// The annotation value.
    pub fn value(&self) -> String {
        format!("{} {}", self.ip, self.at)
    }

    fn parse(v: &str) -> Option<Self> {
        let (ip, at) = v.split_once(' ')?;
        Some(Self {
            ip: ip.parse().ok()?,
            at: at.to_string(),
        })
    }
}

/// `(namespace, service)`.
type Svc = (String, String);

/// Who holds which VIP, from every broker import.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Each service's VIP: its earliest claim that it did not lose.
    pub by_service: HashMap<Svc, Claim>,
    /// Every address some import carries (a lost claim included: not free until dropped).
    taken: HashSet<Ipv4Addr>,
}

impl Table {
    /// Reads the claims of `imports` (everything on the broker).
    pub fn new(imports: &[&ServiceImport]) -> Self {
        let mut claims: BTreeMap<Ipv4Addr, Vec<(Claim, Svc)>> = BTreeMap::new();
        for i in imports {
            let Some(mut c) = Claim::parse(annotation(&i.metadata, ANNOTATION)) else {
                continue;
            };
            // A claim is no older than the import carrying it (a time the broker set): another
            // cluster cannot take a held address by backdating its claim.
            if let Some(created) = i
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| format!("{:.0}", t.0))
            {
                if c.at < created {
                    c.at = created;
                }
            }
            let svc = (
                label(&i.metadata, SOURCE_NAMESPACE).to_string(),
                label(&i.metadata, SERVICE_NAME).to_string(),
            );
            claims.entry(c.ip).or_default().push((c, svc));
        }
        let mut table = Self::default();
        // Each address goes to its earliest claim (then the service's name, so every cluster
        // decides alike); a service keeps the earliest of the addresses it won.
        for (ip, mut cs) in claims {
            table.taken.insert(ip);
            cs.sort();
            let (claim, svc) = cs.swap_remove(0);
            match table.by_service.get(&svc) {
                Some(held) if *held <= claim => {}
                _ => {
                    table.by_service.insert(svc, claim);
                }
            }
        }
        table
    }

    /// The service's VIP.
    pub fn of(&self, ns: &str, svc: &str) -> Option<&Claim> {
        self.by_service.get(&(ns.to_string(), svc.to_string()))
    }

    /// The claim this cluster's import of `<ns>/<svc>` carries: the service's VIP, or a new
    /// claim of the first free address of `range` from the service's slot (at `now`). `None`
    /// when the range is full or not IPv4.
    pub fn claim(&self, ns: &str, svc: &str, range: &Cidr, now: &str) -> Option<Claim> {
        if let Some(c) = self.of(ns, svc) {
            return Some(c.clone());
        }
        let IpAddr::V4(base) = range.nth(0)? else {
            return None;
        };
        let size = u64::try_from(range.size()).ok()?;
        // The first and last address of the range stay unused, as a subnet's would.
        let usable = size.checked_sub(2).filter(|u| *u > 0)?;
        let start = slot(ns, svc) % usable;
        (0..usable).find_map(|k| {
            let offset = 1 + (start + k) % usable;
            let ip = Ipv4Addr::from(u32::from(base).checked_add(u32::try_from(offset).ok()?)?);
            (!self.taken.contains(&ip)).then(|| Claim {
                ip,
                at: now.to_string(),
            })
        })
    }
}

/// FNV-1a of `<ns>/<svc>`: the same in every agent, whatever it was built with (std's hasher
/// may change between Rust releases).
fn slot(ns: &str, svc: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ns.bytes().chain([b'/']).chain(svc.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn import(ns: &str, svc: &str, cluster: &str, claim: Option<&str>) -> ServiceImport {
        let mut v = json!({"metadata": {"name": format!("{svc}-{ns}-{cluster}"), "namespace": "broker",
            "labels": {SOURCE_NAMESPACE: ns, SERVICE_NAME: svc}},
            "spec": {"type": "ClusterSetIP", "ports": []}});
        if let Some(c) = claim {
            v["metadata"]["annotations"] = json!({ANNOTATION: c});
        }
        serde_json::from_value(v).expect("import")
    }

    fn range() -> Cidr {
        Cidr::parse("243.0.0.0/29").expect("cidr")
    }

    #[test]
    fn a_new_service_claims_a_free_address_and_exporters_agree() {
        let empty = Table::new(&[]);
        let c = empty.claim("shop", "web", &range(), "t1").expect("a claim");
        assert!(range().contains(IpAddr::V4(c.ip)));
        assert!(c.ip != Ipv4Addr::new(243, 0, 0, 0) && c.ip != Ipv4Addr::new(243, 0, 0, 7));
        assert_eq!(
            empty.claim("shop", "web", &range(), "t2").map(|c| c.ip),
            Some(c.ip),
            "two exporters of one service pick the same address"
        );
        // Once c1 carries it, c2 takes that claim, time included.
        let i = import("shop", "web", "c1", Some(&c.value()));
        let t = Table::new(&[&i]);
        assert_eq!(t.claim("shop", "web", &range(), "t9"), Some(c));
    }

    #[test]
    fn no_two_services_share_an_address_and_a_full_range_claims_nothing() {
        let mut imports = Vec::new();
        let mut seen = Vec::new();
        for n in 0..6 {
            let svc = format!("s{n}");
            let t = Table::new(&imports.iter().collect::<Vec<_>>());
            let c = t
                .claim("ns", &svc, &range(), &format!("t{n}"))
                .expect("room left");
            assert!(!seen.contains(&c.ip), "{} given twice", c.ip);
            seen.push(c.ip);
            imports.push(import("ns", &svc, "c1", Some(&c.value())));
        }
        let t = Table::new(&imports.iter().collect::<Vec<_>>());
        assert_eq!(
            t.claim("ns", "s6", &range(), "t7"),
            None,
            "6 usable addresses, all held"
        );
        // The last export of s0 goes: its address is free again.
        imports.remove(0);
        let t = Table::new(&imports.iter().collect::<Vec<_>>());
        assert_eq!(t.claim("ns", "s6", &range(), "t8").map(|c| c.ip), Some(seen[0]));
    }

    #[test]
    fn the_earlier_claim_keeps_a_contested_address_and_the_other_claims_again() {
        let a = import("ns", "a", "c1", Some("243.0.0.3 2026-01-01T00:00:00Z"));
        let b = import("ns", "b", "c2", Some("243.0.0.3 2026-01-01T00:00:05Z"));
        let t = Table::new(&[&a, &b]);
        assert_eq!(t.of("ns", "a").map(|c| c.ip), Some(Ipv4Addr::new(243, 0, 0, 3)));
        assert_eq!(t.of("ns", "b"), None, "b lost");
        let again = t
            .claim("ns", "b", &range(), "2026-01-01T00:00:06Z")
            .expect("claim");
        assert_ne!(again.ip, Ipv4Addr::new(243, 0, 0, 3));
        // Exporters of one service that claimed apart settle on the earlier claim.
        let c1 = import("ns", "web", "c1", Some("243.0.0.5 2026-01-01T00:00:02Z"));
        let c2 = import("ns", "web", "c2", Some("243.0.0.6 2026-01-01T00:00:01Z"));
        let t = Table::new(&[&c1, &c2]);
        assert_eq!(t.of("ns", "web").map(|c| c.ip), Some(Ipv4Addr::new(243, 0, 0, 6)));
        // A claim cannot be backdated before the import carrying it was created.
        let mut thief = import("ns", "thief", "c9", Some("243.0.0.3 1970-01-01T00:00:00Z"));
        thief.metadata.creation_timestamp =
            Some(serde_json::from_value(json!("2026-01-01T00:00:09Z")).expect("time"));
        let t = Table::new(&[&a, &thief]);
        assert_eq!(t.of("ns", "a").map(|c| c.ip), Some(Ipv4Addr::new(243, 0, 0, 3)));
        assert_eq!(t.of("ns", "thief"), None, "a backdated claim loses");
        // Garbage claims are ignored.
        let junk = import("ns", "x", "c3", Some("not an address"));
        assert_eq!(Table::new(&[&junk]).of("ns", "x"), None);
    }

    #[test]
    fn the_annotation_or_the_default_decides() {
        let meta = |v: Option<&str>| ObjectMeta {
            annotations: v.map(|v| [(USE_CLUSTERSET_IP.to_string(), v.to_string())].into()),
            ..Default::default()
        };
        assert!(wanted(&meta(Some("true")), false));
        assert!(!wanted(&meta(Some("false")), true));
        assert!(wanted(&meta(None), true));
        assert!(!wanted(&meta(None), false));
    }
}
