//! The write-ahead log as found after a crash or on a damaged disk: any bytes decode to a valid
//! prefix of records (never a panic), the decoded records replay into a store, and encoding
//! them again decodes to the same records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsea_store::{Store, record};

fuzz_target!(|data: &[u8]| {
    let (events, valid) = record::decode_all(data);
    assert!(valid <= data.len());
    let mut store = Store::new();
    for ev in &events {
        store.replay(ev);
    }
    let mut again = Vec::new();
    for ev in &events {
        record::encode(ev, &mut again);
    }
    let (round, all) = record::decode_all(&again);
    assert_eq!(all, again.len(), "re-encoded records decode whole");
    assert_eq!(round.len(), events.len());
    for (a, b) in round.iter().zip(&events) {
        assert_eq!((a.rev, &a.ty, a.kind, &a.object), (b.rev, &b.ty, b.kind, &b.object));
    }
});
