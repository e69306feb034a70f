//! The broker's `submariner-globalnet-info` ConfigMap, which any holder of the broker admin
//! token can edit: any data (a JSON object of strings) parses or is refused by name; what parses
//! allocates without panicking, never overlaps another cluster's block, and round-trips.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use subsea_broker::globalnet::{Info, allocate};

fuzz_target!(|data: &[u8]| {
    let Ok(map) = serde_json::from_slice::<BTreeMap<String, String>>(data) else {
        return;
    };
    let Ok(mut info) = Info::from_data(&map) else {
        return;
    };
    let again = Info::from_data(&info.to_data()).expect("what parses re-encodes");
    assert_eq!(again, info);
    let size = u64::from(data.first().copied().unwrap_or(0)) << (data.len() % 24);
    if let Ok(a) = allocate(&mut info, "fuzz", None, size) {
        for c in info.clusters.iter().filter(|c| c.cluster_id != "fuzz") {
            for b in c.global_cidr.iter().filter_map(|s| subsea_cidr::Cidr::parse(s).ok()) {
                assert!(!b.overlaps(&a.cidr), "{} overlaps {b} of {}", a.cidr, c.cluster_id);
            }
        }
    }
});
