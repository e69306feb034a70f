//! The changes that bring the zone in line with the desired records. Only RRsets registered to
//! our owner ID are changed or deleted; a name held by another owner, or holding records no
//! registry claims, is left alone and reported. Every change is one RFC 2136 update carrying
//! prerequisites on exactly what was read (the registry record and the old RRset), so a
//! concurrent writer makes the update fail instead of being overwritten; the next pass rereads.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::RType;
use crate::name;
use crate::registry;
use crate::source::{Desired, Skip};

/// One record of the zone as read (a zone transfer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneRecord {
    /// Owner name (normal form).
    pub name: String,
    /// Type as DNS writes it (`A`, `TXT`, …).
    pub rtype: String,
    /// TTL.
    pub ttl: u32,
    /// The data in presentation form; a TXT record's strings joined.
    pub data: String,
}

/// ExternalDNS's policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Create, update and delete.
    Sync,
    /// Create and update, never delete.
    UpsertOnly,
}

/// Whose records, where.
#[derive(Clone, Debug)]
pub struct Config {
    /// Our registry owner ID.
    pub owner: String,
    /// The policy.
    pub policy: Policy,
    /// Only names within one of these (normal form; empty: the whole zone).
    pub domain_filter: Vec<String>,
}

/// What an update does to one RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Add the RRset and its registry record; neither may exist.
    Create,
    /// Replace our RRset (`old`, possibly empty) and registry record.
    Update {
        /// The RRset read, which must still be there.
        old: BTreeSet<IpAddr>,
        /// Our registry record's text as read, which must still be there.
        registry: String,
    },
    /// Remove our RRset and registry record.
    Delete {
        /// The RRset read.
        old: BTreeSet<IpAddr>,
        /// Our registry record's text as read.
        registry: String,
    },
}

/// One update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Owner name.
    pub name: String,
    /// A or AAAA.
    pub rtype: RType,
    /// What it does.
    pub op: Op,
    /// The new RRset (empty for a delete).
    pub targets: BTreeSet<IpAddr>,
    /// Its TTL.
    pub ttl: u32,
    /// The registry record's name.
    pub txt_name: String,
    /// The new registry text (for create and update).
    pub txt: String,
}

/// What a pass will do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Planned {
    /// The updates to send.
    pub changes: Vec<Change>,
    /// Names left alone, and why.
    pub skipped: Vec<Skip>,
}

fn filtered(name: &str, filter: &[String]) -> bool {
    filter.is_empty() || filter.iter().any(|d| name::within(name, d))
}

/// The changes from `zone` (as read) to `desired`.
pub fn plan(zone: &[ZoneRecord], desired: &[Desired], cfg: &Config) -> Planned {
    let mut rrsets: BTreeMap<(&str, RType), (BTreeSet<IpAddr>, u32)> = BTreeMap::new();
    let mut other_types: BTreeMap<&str, &str> = BTreeMap::new();
    let mut registry_of: BTreeMap<(String, RType), Vec<registry::Label>> = BTreeMap::new();
    let mut ours: BTreeMap<(String, RType), String> = BTreeMap::new();
    for r in zone {
        match (RType::parse(&r.rtype), r.rtype.as_str()) {
            (Some(t), _) => {
                if let Ok(ip) = r.data.parse::<IpAddr>() {
                    let e = rrsets.entry((&r.name, t)).or_default();
                    e.0.insert(ip);
                    e.1 = r.ttl;
                }
            }
            (None, "TXT") => {
                if let (Some((t, n)), Some(label)) = (registry::registered(&r.name), registry::parse(&r.data))
                {
                    if label.owner == cfg.owner {
                        ours.insert((n.to_string(), t), r.data.trim_matches('"').to_string());
                    }
                    registry_of.entry((n.to_string(), t)).or_default().push(label);
                }
            }
            (None, "CNAME") => {
                other_types.insert(&r.name, "CNAME");
            }
            _ => {}
        }
    }
    let mut out = Planned::default();
    let mut wanted: BTreeSet<(String, RType)> = BTreeSet::new();
    for d in desired {
        let key = (d.name.clone(), d.rtype);
        wanted.insert(key.clone());
        let skip = |reason: String| Skip {
            name: d.name.clone(),
            resource: d.resource.clone(),
            reason,
        };
        if !filtered(&d.name, &cfg.domain_filter) {
            out.skipped.push(skip("outside --domain-filter".into()));
            continue;
        }
        let current = rrsets.get(&(d.name.as_str(), d.rtype));
        let txt = registry::value(&cfg.owner, &d.resource);
        let change = |op: Op| Change {
            name: d.name.clone(),
            rtype: d.rtype,
            op,
            targets: d.targets.clone(),
            ttl: d.ttl,
            txt_name: registry::txt_name(d.rtype, &d.name),
            txt: txt.clone(),
        };
        if let Some(registry) = ours.get(&key) {
            let same = current.is_some_and(|(t, ttl)| *t == d.targets && *ttl == d.ttl) && *registry == txt;
            if !same {
                out.changes.push(change(Op::Update {
                    old: current.map(|c| c.0.clone()).unwrap_or_default(),
                    registry: registry.clone(),
                }));
            }
            continue;
        }
        if let Some(other) = registry_of
            .get(&key)
            .and_then(|ls| ls.iter().find(|l| l.owner != cfg.owner))
        {
            out.skipped.push(skip(format!(
                "registered to owner {:?} ({}): left alone",
                other.owner, other.resource
            )));
            continue;
        }
        if current.is_some() || other_types.contains_key(d.name.as_str()) {
            out.skipped.push(skip(
                "the zone already holds records of this name that no registry record claims: left alone"
                    .into(),
            ));
            continue;
        }
        out.changes.push(change(Op::Create));
    }
    if cfg.policy == Policy::Sync {
        for ((n, t), registry) in &ours {
            if wanted.contains(&(n.clone(), *t)) || !filtered(n, &cfg.domain_filter) {
                continue;
            }
            out.changes.push(Change {
                name: n.clone(),
                rtype: *t,
                op: Op::Delete {
                    old: rrsets
                        .get(&(n.as_str(), *t))
                        .map(|c| c.0.clone())
                        .unwrap_or_default(),
                    registry: registry.clone(),
                },
                targets: BTreeSet::new(),
                ttl: 0,
                txt_name: registry::txt_name(*t, n),
                txt: String::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, rtype: &str, data: &str) -> ZoneRecord {
        ZoneRecord {
            name: name.into(),
            rtype: rtype.into(),
            ttl: 30,
            data: data.into(),
        }
    }

    fn want(name: &str, ips: &[&str]) -> Desired {
        Desired {
            name: name.into(),
            rtype: RType::A,
            targets: ips.iter().map(|i| i.parse().expect("ip")).collect(),
            ttl: 30,
            resource: "service/default/web".into(),
            clusters: vec!["c1".into()],
        }
    }

    fn cfg(policy: Policy) -> Config {
        Config {
            owner: "subsea".into(),
            policy,
            domain_filter: Vec::new(),
        }
    }

    const OURS: &str =
        "heritage=external-dns,external-dns/owner=subsea,external-dns/resource=service/default/web";

    #[test]
    fn a_new_name_is_created_with_its_registry_record() {
        let p = plan(
            &[rec("example.com", "SOA", "…")],
            &[want("web.example.com", &["192.0.2.1"])],
            &cfg(Policy::Sync),
        );
        assert_eq!(p.changes.len(), 1);
        let c = &p.changes[0];
        assert_eq!(c.op, Op::Create);
        assert_eq!((c.txt_name.as_str(), c.txt.as_str()), ("a-web.example.com", OURS));
    }

    #[test]
    fn our_names_are_updated_only_when_they_differ_and_deleted_when_gone() {
        let zone = [
            rec("web.example.com", "A", "192.0.2.1"),
            rec("a-web.example.com", "TXT", OURS),
            rec("old.example.com", "A", "192.0.2.9"),
            rec("a-old.example.com", "TXT", OURS),
        ];
        let p = plan(
            &zone,
            &[want("web.example.com", &["192.0.2.1"])],
            &cfg(Policy::Sync),
        );
        assert_eq!(p.changes.len(), 1, "web is in line: only old goes");
        assert_eq!(p.changes[0].name, "old.example.com");
        assert!(
            matches!(&p.changes[0].op, Op::Delete { old, registry } if old.len() == 1 && registry == OURS)
        );
        let p = plan(
            &zone,
            &[want("web.example.com", &["192.0.2.1", "192.0.2.2"])],
            &cfg(Policy::UpsertOnly),
        );
        assert_eq!(p.changes.len(), 1, "upsert-only never deletes");
        assert!(matches!(&p.changes[0].op, Op::Update { old, .. } if old.len() == 1));
    }

    #[test]
    fn records_of_other_owners_or_of_no_owner_are_never_touched() {
        let foreign = "heritage=external-dns,external-dns/owner=team-a,external-dns/resource=ingress/x/y";
        let zone = [
            rec("shop.example.com", "A", "203.0.113.1"),
            rec("a-shop.example.com", "TXT", foreign),
            rec("mail.example.com", "A", "203.0.113.2"),
            rec("alias.example.com", "CNAME", "mail.example.com."),
            rec("a-gone.example.com", "TXT", foreign),
        ];
        let d = [
            want("shop.example.com", &["192.0.2.1"]),
            want("mail.example.com", &["192.0.2.1"]),
            want("alias.example.com", &["192.0.2.1"]),
        ];
        let p = plan(&zone, &d, &cfg(Policy::Sync));
        assert!(p.changes.is_empty(), "{:?}", p.changes);
        assert_eq!(p.skipped.len(), 3);
        assert!(p.skipped[0].reason.contains("team-a"));
        assert!(p.skipped[1].reason.contains("no registry record claims"));
    }

    #[test]
    fn the_domain_filter_limits_creates_and_deletes() {
        let zone = [rec("a-old.other.example.com", "TXT", OURS)];
        let c = Config {
            domain_filter: vec!["svc.example.com".into()],
            ..cfg(Policy::Sync)
        };
        let p = plan(
            &zone,
            &[
                want("web.example.com", &["192.0.2.1"]),
                want("web.svc.example.com", &["192.0.2.1"]),
            ],
            &c,
        );
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].name, "web.svc.example.com");
        assert_eq!(p.skipped[0].reason, "outside --domain-filter");
    }

    #[test]
    fn a_registry_record_of_ours_without_records_is_repaired() {
        let p = plan(
            &[rec("a-web.example.com", "TXT", OURS)],
            &[want("web.example.com", &["192.0.2.1"])],
            &cfg(Policy::Sync),
        );
        assert!(matches!(&p.changes[0].op, Op::Update { old, .. } if old.is_empty()));
    }
}
