//! What the etcd backend reads back (keys and values anyone with etcd access can write): a key
//! parses to an object identity or is not ours, a value becomes an object or is refused, never
//! a panic; what parses goes back to the same key and carries the revision it was read at.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsea_store::layout::{Layout, object_from_storage, revision_of, storage_value};

fuzz_target!(|data: &[u8]| {
    let layout = Layout::new("/registry", ["/configmaps", "/services", "/nodes", "apps/deployments"]);
    let (key, value) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    if let Some(k) = layout.parse(&String::from_utf8_lossy(key)) {
        assert_eq!(layout.parse(&layout.key(&k)), Some(k));
    }
    if let Ok(obj) = object_from_storage(value, 7) {
        assert_eq!(revision_of(&obj), Some(7));
        let again = object_from_storage(storage_value(&obj).as_bytes(), 9).expect("stored form reads back");
        assert_eq!(revision_of(&again), Some(9));
    }
});
