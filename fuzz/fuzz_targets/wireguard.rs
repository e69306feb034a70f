//! The gateway's WireGuard peer table: any datagram from the network, and any packet from the
//! TUN device, handled without panicking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use subsea_wg::{Device, PeerConfig, keys};

fuzz_target!(|data: &[u8]| {
    static KEYS: OnceLock<(keys::Key, keys::Key)> = OnceLock::new();
    let (mine, theirs) = KEYS.get_or_init(|| (keys::generate_private(), keys::generate_private()));
    let mut dev = Device::new(*mine, Some(keys::psk_from_text("fuzz")));
    dev.set_peers(&[PeerConfig {
        public_key: keys::public_of(theirs),
        endpoint: Some("192.0.2.1:4500".parse().expect("addr")),
        allowed_ips: vec![subsea_cidr::Cidr::parse("10.130.0.0/16").expect("cidr")],
        keepalive: Some(10),
    }]);
    let mut out = vec![0u8; 65_600];
    dev.decapsulate("192.0.2.1:4500".parse().expect("addr"), data, &mut out, &mut |_| {});
    let _ = dev.encapsulate(data, &mut out);
    dev.tick(&mut out, &mut |_| {});
});
