//! The zone as a transfer returns it (bytes from the DNS server, and records anyone with the
//! zone's key can write): whatever it holds, the publisher's plan never changes or deletes an
//! RRset whose registry record is not ours, and never creates over existing records.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use subsea_extdns_core::RType;
use subsea_extdns_core::plan::{Config, Op, Policy, ZoneRecord, plan};
use subsea_extdns_core::registry;
use subsea_extdns_core::source::Desired;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // One record per line: `name type data`.
    let zone: Vec<ZoneRecord> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            Some(ZoneRecord {
                name: f.next()?.to_string(),
                rtype: f.next()?.to_string(),
                ttl: 30,
                data: f.next().unwrap_or_default().to_string(),
            })
        })
        .collect();
    let names: BTreeSet<&str> = zone.iter().map(|r| r.name.as_str()).collect();
    let desired: Vec<Desired> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, n)| Desired {
            name: n.to_string(),
            rtype: RType::A,
            targets: ["192.0.2.1".parse().expect("ip")].into(),
            ttl: 30,
            resource: "service/default/web".into(),
            clusters: vec!["c1".into()],
        })
        .collect();
    let cfg = Config {
        owner: "subsea".into(),
        policy: if data.len() % 2 == 0 { Policy::Sync } else { Policy::UpsertOnly },
        domain_filter: Vec::new(),
    };
    let p = plan(&zone, &desired, &cfg);
    for c in &p.changes {
        let txt = registry::txt_name(c.rtype, &c.name);
        let labels: Vec<registry::Label> = zone
            .iter()
            .filter(|r| r.rtype == "TXT" && r.name == txt)
            .filter_map(|r| registry::parse(&r.data))
            .collect();
        match &c.op {
            Op::Create => {
                assert!(labels.is_empty(), "created over a registry record: {c:?}");
                assert!(
                    !zone.iter().any(|r| r.name == c.name && r.rtype == c.rtype.as_str() && r.data.parse::<std::net::IpAddr>().is_ok()),
                    "created over existing records: {c:?}"
                );
            }
            Op::Update { .. } | Op::Delete { .. } => {
                assert!(labels.iter().any(|l| l.owner == "subsea"), "changed a name that is not ours: {c:?}");
                if matches!(c.op, Op::Delete { .. }) {
                    assert_eq!(cfg.policy, Policy::Sync, "upsert-only deleted {c:?}");
                }
            }
        }
    }
});
