//! The TSIG key file (`--tsig-key-file`, operator-supplied bytes): anything parses or is refused
//! with a reason, never a panic; what parses keeps a non-empty secret and a name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsea_extdns_core::key::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse(&text) {
        Ok(k) => {
            assert!(!k.secret.is_empty() && !k.name.is_empty());
            assert!(format!("{k:?}").contains(&format!("<{} bytes>", k.secret.len())), "Debug hides the secret");
        }
        Err(e) => assert!(e.to_string().contains("tsig-keygen")),
    }
});
