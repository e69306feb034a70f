//! The health checker's ICMP echo-reply parser, fed whatever a raw socket may return.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = subsea_health::icmp::parse_reply(data);
});
