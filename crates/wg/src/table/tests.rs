use super::*;
use crate::keys::{generate_private, psk_from_text, public_of};

fn ipv4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let len = 20 + payload.len();
    let mut p = vec![0x45, 0, (len >> 8) as u8, len as u8, 0, 0, 0, 0, 64, 17, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

struct Side {
    dev: Device,
    addr: SocketAddr,
}

fn pair() -> (Side, Side) {
    let (ka, kb) = (generate_private(), generate_private());
    let psk = Some(psk_from_text("shared-psk-text"));
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "192.0.2.1:4500".parse().expect("addr"),
        "192.0.2.2:4500".parse().expect("addr"),
    );
    let mut a = Device::new(ka, psk);
    let mut b = Device::new(kb, psk);
    a.set_peers(&[PeerConfig {
        public_key: public_of(&kb),
        endpoint: Some(b_addr),
        allowed_ips: vec![
            Cidr::parse("10.131.0.0/16").expect("cidr"),
            Cidr::parse("100.67.0.0/16").expect("cidr"),
        ],
        keepalive: None,
    }]);
    b.set_peers(&[PeerConfig {
        public_key: public_of(&ka),
        endpoint: Some(a_addr),
        allowed_ips: vec![Cidr::parse("10.130.0.0/16").expect("cidr")],
        keepalive: None,
    }]);
    (Side { dev: a, addr: a_addr }, Side { dev: b, addr: b_addr })
}

/// Delivers datagrams back and forth until quiet; returns what reached each TUN.
fn exchange(
    a: &mut Side,
    b: &mut Side,
    first: (SocketAddr, Vec<u8>),
    to_b: bool,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut in_flight = vec![(to_b, first.1)];
    let (mut tun_a, mut tun_b) = (Vec::new(), Vec::new());
    let mut out = vec![0u8; 2048];
    for _ in 0..20 {
        let Some((to_b, d)) = in_flight.pop() else { break };
        let (dst, from, tun) = if to_b {
            (&mut b.dev, a.addr, &mut tun_b)
        } else {
            (&mut a.dev, b.addr, &mut tun_a)
        };
        let mut produced = Vec::new();
        dst.decapsulate(from, &d, &mut out, &mut |act| match act {
            Action::Network(_, bytes) => produced.push((!to_b, bytes.to_vec())),
            Action::Tunnel(p) => tun.push(p.to_vec()),
        });
        in_flight.extend(produced);
    }
    (tun_a, tun_b)
}

#[test]
fn packets_cross_after_a_handshake_started_by_traffic() {
    let (mut a, mut b) = pair();
    let packet = ipv4([10, 130, 0, 5], [10, 131, 0, 7], b"hello");
    let mut out = vec![0u8; 2048];
    let init = match a.dev.encapsulate(&packet, &mut out) {
        Some(Action::Network(to, d)) => (to, d.to_vec()),
        other => panic!("expected a handshake initiation, got {other:?}"),
    };
    assert_eq!(init.0, b.addr);
    let (_, tun_b) = exchange(&mut a, &mut b, init, true);
    assert_eq!(
        tun_b,
        vec![packet.clone()],
        "the packet queued behind the handshake arrives"
    );
    let reply = ipv4([10, 131, 0, 7], [10, 130, 0, 5], b"world");
    let enc = match b.dev.encapsulate(&reply, &mut out) {
        Some(Action::Network(to, d)) => (to, d.to_vec()),
        other => panic!("expected data, got {other:?}"),
    };
    let (tun_a, _) = exchange(&mut a, &mut b, enc, false);
    assert_eq!(tun_a, vec![reply]);
    let stats = a.dev.stats();
    assert!(stats[0].last_handshake.is_some() && stats[0].rx_bytes > 0 && stats[0].tx_bytes > 0);
}

#[test]
fn inner_sources_outside_allowed_ips_are_dropped() {
    let (mut a, mut b) = pair();
    let mut out = vec![0u8; 2048];
    let first = ipv4([10, 130, 0, 5], [10, 131, 0, 7], b"x");
    let Some(Action::Network(to, d)) = a.dev.encapsulate(&first, &mut out) else {
        panic!("handshake")
    };
    let init = (to, d.to_vec());
    exchange(&mut a, &mut b, init, true);
    // A claims a source that belongs to neither cluster: B must drop it.
    let spoofed = ipv4([10, 99, 0, 1], [10, 131, 0, 7], b"evil");
    let Some(Action::Network(to, d)) = a.dev.encapsulate(&spoofed, &mut out) else {
        panic!("data")
    };
    let (_, tun_b) = exchange(&mut a, &mut b, (to, d.to_vec()), true);
    assert!(tun_b.is_empty());
    assert_eq!(b.dev.stats()[0].spoofed, 1);
}

#[test]
fn routing_picks_the_longest_prefix_and_unknowns_go_nowhere() {
    let (mut a, _) = pair();
    let other = public_of(&generate_private());
    let mut peers = vec![PeerConfig {
        public_key: other,
        endpoint: None,
        allowed_ips: vec![Cidr::parse("10.131.5.0/24").expect("cidr")],
        keepalive: None,
    }];
    peers.push(PeerConfig {
        public_key: a.dev.stats()[0].public_key,
        endpoint: Some("192.0.2.2:4500".parse().expect("addr")),
        allowed_ips: vec![Cidr::parse("10.131.0.0/16").expect("cidr")],
        keepalive: None,
    });
    a.dev.set_peers(&peers);
    let narrow = a.dev.route("10.131.5.9".parse().expect("ip"));
    let wide = a.dev.route("10.131.6.9".parse().expect("ip"));
    assert!(narrow.is_some() && wide.is_some() && narrow != wide);
    assert_eq!(a.dev.route("8.8.8.8".parse().expect("ip")), None);
    let mut out = vec![0u8; 2048];
    assert!(
        a.dev
            .encapsulate(&ipv4([10, 130, 0, 1], [10, 131, 5, 1], b""), &mut out)
            .is_none(),
        "no endpoint known yet"
    );
    a.dev.set_peers(&peers[1..]);
    assert_eq!(a.dev.stats().len(), 1, "removed peers are gone");
}

#[test]
fn garbage_and_unknown_peers_are_ignored() {
    let (mut a, _) = pair();
    let mut out = vec![0u8; 2048];
    let mut emitted = 0;
    for junk in [
        &b""[..],
        b"\x01\x00\x00\x00short",
        &[
            4u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3,
        ][..],
        &[0u8; 148][..],
    ] {
        a.dev.decapsulate(
            "198.51.100.1:4500".parse().expect("addr"),
            junk,
            &mut out,
            &mut |_| emitted += 1,
        );
    }
    // A handshake from a key we do not know.
    let (mut stranger, _) = pair();
    let Some(Action::Network(_, init)) = stranger
        .dev
        .encapsulate(&ipv4([10, 130, 0, 5], [10, 131, 0, 7], b"x"), &mut out)
    else {
        panic!("handshake")
    };
    let init = init.to_vec();
    a.dev.decapsulate(
        "198.51.100.1:4500".parse().expect("addr"),
        &init,
        &mut out,
        &mut |_| emitted += 1,
    );
    assert_eq!(emitted, 0);
}

#[test]
fn a_peer_restarted_with_a_new_key_handshakes_again() {
    let (mut a, mut b) = pair();
    let mut out = vec![0u8; 2048];
    // Each round the remote gateway restarts with a new key and the peer list is replaced, as
    // after a failover to a gateway whose Endpoint carries a new public key.
    for round in 0..3 {
        b.dev.tick(&mut out, &mut |_| {});
        let (ka, kb) = (generate_private(), b.dev.public_key());
        let mut fresh = Device::new(ka, Some(psk_from_text("shared-psk-text")));
        fresh.set_peers(&[PeerConfig {
            public_key: kb,
            endpoint: Some(b.addr),
            allowed_ips: vec![Cidr::parse("10.131.0.0/16").expect("cidr")],
            keepalive: None,
        }]);
        b.dev.set_peers(&[PeerConfig {
            public_key: public_of(&ka),
            endpoint: Some(a.addr),
            allowed_ips: vec![Cidr::parse("10.130.0.0/16").expect("cidr")],
            keepalive: None,
        }]);
        a.dev = fresh;
        let packet = ipv4(
            [10, 130, 0, 5],
            [10, 131, 0, 7],
            format!("round {round}").as_bytes(),
        );
        let Some(Action::Network(to, d)) = a.dev.encapsulate(&packet, &mut out) else {
            panic!("handshake")
        };
        let (_, tun_b) = exchange(&mut a, &mut b, (to, d.to_vec()), true);
        assert_eq!(tun_b, vec![packet], "round {round}");
    }
}

/// Initiations for `responder` from keys it does not know, with a valid MAC1 (what a flood
/// from someone who read the public key off the broker looks like).
fn strangers_initiations(responder: Key, n: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    (0..n)
        .filter_map(|i| {
            let mut t = Tunn::new(
                StaticSecret::from(generate_private()),
                PublicKey::from(responder),
                None,
                None,
                i as u32,
                None,
            );
            match t.format_handshake_initiation(&mut buf, true) {
                TunnResult::WriteToNetwork(p) => Some(p.to_vec()),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn a_handshake_flood_gets_cookie_replies_and_real_peers_still_connect() {
    let (mut a, mut b) = pair();
    let flood = strangers_initiations(a.dev.public_key(), HANDSHAKE_RATE_LIMIT as usize + 50);
    let mut out = vec![0u8; 2048];
    let mut cookies = 0;
    let mut other = 0;
    for init in &flood {
        a.dev.decapsulate(
            "198.51.100.9:4500".parse().expect("addr"),
            init,
            &mut out,
            &mut |act| match act {
                Action::Network(_, bytes) if bytes.first() == Some(&3) => cookies += 1,
                _ => other += 1,
            },
        );
    }
    // Within the budget each initiation is checked (and dropped: unknown key); beyond it, only
    // a cookie reply is made, without the X25519 work.
    assert!(cookies >= 50, "{cookies} cookie replies");
    assert_eq!(other, 0, "no handshake response to a stranger");
    assert_eq!(a.dev.cookies_sent(), cookies);
    // The budget refills each second (tick); then the real peer's handshake goes through.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    a.dev.tick(&mut out, &mut |_| {});
    let packet = ipv4([10, 131, 0, 7], [10, 130, 0, 5], b"after the flood");
    let init = match b.dev.encapsulate(&packet, &mut out) {
        Some(Action::Network(to, d)) => (to, d.to_vec()),
        other => panic!("expected a handshake initiation, got {other:?}"),
    };
    assert_eq!(init.0, a.addr);
    let (tun_a, _) = exchange(&mut a, &mut b, init, false);
    assert_eq!(tun_a, vec![packet], "the real peer's packet arrives");
}
