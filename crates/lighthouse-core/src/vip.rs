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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use subsea_api::mcs::v1alpha1::ServiceImport;
use subsea_cidr::Cidr;

use crate::export::{annotation, label};
use crate::labels::{SERVICE_NAME, SOURCE_NAMESPACE};

/// Lighthouse's per-export opt-in (`"true"`) or opt-out (`"false"`), on the ServiceExport.
pub const USE_CLUSTERSET_IP: &str = "lighthouse.submariner.io/use-clusterset-ip";
/// On a broker import: the service's IPv4 VIP and when it was first claimed.
pub const ANNOTATION: &str = "subsea.io/clusterset-ip";
/// On a broker import: the service's IPv6 VIP and when it was first claimed.
pub const ANNOTATION_V6: &str = "subsea.io/clusterset-ipv6";
/// Submariner's default ClusterSetIP range.
pub const DEFAULT_RANGE: &str = "243.0.0.0/8";
/// The default IPv6 range (Submariner has none): a unique-local /104, as many VIPs as the IPv4
/// default.
pub const DEFAULT_RANGE_V6: &str = "fd00:243::/104";

/// The annotation carrying the claim of one family.
pub fn annotation_of(v6: bool) -> &'static str {
    if v6 { ANNOTATION_V6 } else { ANNOTATION }
}

/// The cluster set's ClusterSetIP settings, as the agent was given them.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Whether an export without the annotation gets a VIP.
    pub default_on: bool,
    /// The range IPv4 VIPs are claimed from.
    pub range: Cidr,
    /// The range IPv6 VIPs are claimed from.
    pub range_v6: Cidr,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_on: false,
            range: Cidr {
                addr: IpAddr::V4(Ipv4Addr::new(243, 0, 0, 0)),
                prefix: 8,
            },
            range_v6: Cidr {
                addr: IpAddr::V6(Ipv6Addr::new(0xfd00, 0x243, 0, 0, 0, 0, 0, 0)),
                prefix: 104,
            },
        }
    }
}

impl Settings {
    /// The settings with the ranges of `ranges`, a comma-separated list of at most one CIDR per
    /// family (`243.0.0.0/8`, `243.0.0.0/8,fd00:243::/104`); a family not named keeps its
    /// default. The error says what is wrong with which part.
    pub fn with_ranges(mut self, ranges: &str) -> Result<Self, String> {
        let mut seen = [false; 2];
        for part in ranges.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let c = Cidr::parse(part).map_err(|e| format!("{part:?} is not a CIDR: {e}"))?;
            let v6 = c.addr.is_ipv6();
            if std::mem::replace(&mut seen[usize::from(v6)], true) {
                return Err(format!(
                    "{ranges:?} names two IPv{} ranges; give at most one per family",
                    if v6 { 6 } else { 4 }
                ));
            }
            if c.size() < 4 {
                return Err(format!("{part:?} is too small for ClusterSetIPs"));
            }
            if v6 {
                self.range_v6 = c;
            } else {
                self.range = c;
            }
        }
        Ok(self)
    }

    /// The range of one family.
    pub fn range_of(&self, v6: bool) -> &Cidr {
        if v6 { &self.range_v6 } else { &self.range }
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
    pub ip: IpAddr,
}

impl Claim {
    /// The annotation value.
    pub fn value(&self) -> String {
        format!("{} {}", self.ip, self.at)
    }

    fn parse(v: &str, v6: bool) -> Option<Self> {
        let (ip, at) = v.split_once(' ')?;
        let ip: IpAddr = ip.parse().ok()?;
        (ip.is_ipv6() == v6).then(|| Self {
            ip,
            at: at.to_string(),
        })
    }
}

/// `(namespace, service)`.
type Svc = (String, String);

/// Who holds which VIP, from every broker import.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Each service's VIP per family (`true`: IPv6): its earliest claim that it did not lose.
    pub by_service: HashMap<(Svc, bool), Claim>,
    /// Every address some import carries (a lost claim included: not free until dropped).
    taken: HashSet<IpAddr>,
}

impl Table {
    /// Reads the claims of `imports` (everything on the broker).
    pub fn new(imports: &[&ServiceImport]) -> Self {
        let mut claims: BTreeMap<IpAddr, Vec<(Claim, Svc)>> = BTreeMap::new();
        for i in imports {
            // A claim is no older than the import carrying it (a time the broker set): another
            // cluster cannot take a held address by backdating its claim.
            let created = i
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| format!("{:.0}", t.0));
            for v6 in [false, true] {
                let Some(mut c) = Claim::parse(annotation(&i.metadata, annotation_of(v6)), v6) else {
                    continue;
                };
                if let Some(created) = &created {
                    if c.at < *created {
                        c.at.clone_from(created);
                    }
                }
                let svc = (
                    label(&i.metadata, SOURCE_NAMESPACE).to_string(),
                    label(&i.metadata, SERVICE_NAME).to_string(),
                );
                claims.entry(c.ip).or_default().push((c, svc));
            }
        }
        let mut table = Self::default();
        // Each address goes to its earliest claim (then the service's name, so every cluster
        // decides alike); a service keeps the earliest of the addresses it won.
        for (ip, mut cs) in claims {
            table.taken.insert(ip);
            cs.sort();
            let (claim, svc) = cs.swap_remove(0);
            let k = (svc, ip.is_ipv6());
            match table.by_service.get(&k) {
                Some(held) if *held <= claim => {}
                _ => {
                    table.by_service.insert(k, claim);
                }
            }
        }
        table
    }

    /// The service's VIP of one family.
    pub fn of(&self, ns: &str, svc: &str, v6: bool) -> Option<&Claim> {
        self.by_service.get(&((ns.to_string(), svc.to_string()), v6))
    }

    /// The service's VIPs, the family `families` names first first (IPv4 first when it names
    /// none), as `spec.ips` lists them.
    pub fn ips(&self, ns: &str, svc: &str, families: &[String]) -> Vec<String> {
        let v6_first = families.first().is_some_and(|f| f == "IPv6");
        [v6_first, !v6_first]
            .into_iter()
            .filter_map(|v6| self.of(ns, svc, v6))
            .map(|c| c.ip.to_string())
            .collect()
    }

    /// The claim this cluster's import of `<ns>/<svc>` carries for the family of `range`: the
    /// service's VIP, or a new claim of the first free address of `range` from the service's
    /// slot (at `now`). `None` when the range is full.
    pub fn claim(&self, ns: &str, svc: &str, range: &Cidr, now: &str) -> Option<Claim> {
        let v6 = range.addr.is_ipv6();
        if let Some(c) = self.of(ns, svc, v6) {
            return Some(c.clone());
        }
        let base = match range.nth(0)? {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        // The first and last address of the range stay unused, as a subnet's would; an IPv6
        // range larger than 2^64 is searched in its first 2^64 addresses.
        let usable = u64::try_from(range.size().checked_sub(2)?).unwrap_or(u64::MAX);
        if usable == 0 {
            return None;
        }
        let start = slot(ns, svc) % usable;
        (0..usable).find_map(|k| {
            let offset = 1 + u128::from((start + k) % usable);
            let n = base.checked_add(offset)?;
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(n))
            } else {
                IpAddr::V4(Ipv4Addr::from(u32::try_from(n).ok()?))
            };
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

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn range() -> Cidr {
        Cidr::parse("243.0.0.0/29").expect("cidr")
    }

    #[test]
    fn a_new_service_claims_a_free_address_and_exporters_agree() {
        let empty = Table::new(&[]);
        let c = empty.claim("shop", "web", &range(), "t1").expect("a claim");
        assert!(range().contains(c.ip));
        assert!(c.ip != v4(243, 0, 0, 0) && c.ip != v4(243, 0, 0, 7));
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
        assert_eq!(t.of("ns", "a", false).map(|c| c.ip), Some(v4(243, 0, 0, 3)));
        assert_eq!(t.of("ns", "b", false), None, "b lost");
        let again = t
            .claim("ns", "b", &range(), "2026-01-01T00:00:06Z")
            .expect("claim");
        assert_ne!(again.ip, v4(243, 0, 0, 3));
        // Exporters of one service that claimed apart settle on the earlier claim.
        let c1 = import("ns", "web", "c1", Some("243.0.0.5 2026-01-01T00:00:02Z"));
        let c2 = import("ns", "web", "c2", Some("243.0.0.6 2026-01-01T00:00:01Z"));
        let t = Table::new(&[&c1, &c2]);
        assert_eq!(t.of("ns", "web", false).map(|c| c.ip), Some(v4(243, 0, 0, 6)));
        // A claim cannot be backdated before the import carrying it was created.
        let mut thief = import("ns", "thief", "c9", Some("243.0.0.3 1970-01-01T00:00:00Z"));
        thief.metadata.creation_timestamp =
            Some(serde_json::from_value(json!("2026-01-01T00:00:09Z")).expect("time"));
        let t = Table::new(&[&a, &thief]);
        assert_eq!(t.of("ns", "a", false).map(|c| c.ip), Some(v4(243, 0, 0, 3)));
        assert_eq!(t.of("ns", "thief", false), None, "a backdated claim loses");
        // Garbage claims are ignored.
        let junk = import("ns", "x", "c3", Some("not an address"));
        assert_eq!(Table::new(&[&junk]).of("ns", "x", false), None);
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

    #[test]
    fn each_family_has_its_own_claim_and_spec_ips_follow_the_primary_family() {
        let v6_range = Cidr::parse("fd00:243::/120").expect("cidr");
        let empty = Table::new(&[]);
        let c4 = empty.claim("shop", "web", &range(), "t1").expect("v4");
        let c6 = empty.claim("shop", "web", &v6_range, "t1").expect("v6");
        assert!(c6.ip.is_ipv6() && v6_range.contains(c6.ip), "{c6:?}");
        let mut i = import("shop", "web", "c1", Some(&c4.value()));
        i.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(ANNOTATION_V6.into(), c6.value());
        let t = Table::new(&[&i]);
        assert_eq!(t.of("shop", "web", true), Some(&c6));
        assert_eq!(t.ips("shop", "web", &[]), [c4.ip.to_string(), c6.ip.to_string()]);
        assert_eq!(
            t.ips("shop", "web", &["IPv6".into(), "IPv4".into()]),
            [c6.ip.to_string(), c4.ip.to_string()]
        );
        // An IPv6 address under the IPv4 annotation is no claim.
        let wrong = import("shop", "x", "c1", Some(&c6.value()));
        assert_eq!(Table::new(&[&wrong]).of("shop", "x", false), None);
        // A huge IPv6 range still claims from the service's slot.
        let big = Cidr::parse("fd00::/8").expect("cidr");
        assert!(
            empty
                .claim("shop", "web", &big, "t1")
                .is_some_and(|c| big.contains(c.ip))
        );
    }

    #[test]
    fn ranges_parse_one_per_family_with_errors_naming_the_part() {
        let s = Settings::default()
            .with_ranges("10.200.0.0/16, fd00:1::/112")
            .expect("parses");
        assert_eq!(s.range.to_string(), "10.200.0.0/16");
        assert_eq!(s.range_v6.to_string(), "fd00:1::/112");
        let s = Settings::default().with_ranges("10.200.0.0/16").expect("parses");
        assert_eq!(
            s.range_v6,
            Settings::default().range_v6,
            "the other family keeps its default"
        );
        let e = Settings::default()
            .with_ranges("10.0.0.0/8,11.0.0.0/8")
            .expect_err("two v4");
        assert!(e.contains("two IPv4"), "{e}");
        let e = Settings::default().with_ranges("bogus").expect_err("junk");
        assert!(e.contains("\"bogus\""), "{e}");
        assert!(Settings::default().with_ranges("10.0.0.0/31").is_err());
        assert_eq!(Settings::default().range.to_string(), DEFAULT_RANGE);
        assert_eq!(Settings::default().range_v6.to_string(), DEFAULT_RANGE_V6);
    }
}
