//! A WireGuard handshake flood, as an attacker on the underlay would send it: initiations with
//! a valid MAC1 for the target's public key (published on the broker, so known to anyone), from
//! many fresh static keys, precomputed so the sender needs no crypto per packet. A responder that
//! did the full handshake for each would spend two X25519 operations per packet; under load
//! WireGuard answers with cookie replies instead (what this measures).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use serde::Serialize;

/// What came back.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Report {
    /// Initiations sent.
    pub sent: u64,
    /// Handshake responses (type 2): the responder did the work.
    pub responses: u64,
    /// Cookie replies (type 3): the responder was under load and asked for a cookie.
    pub cookies: u64,
    /// Anything else received.
    pub other: u64,
    /// Seconds spent sending.
    pub seconds: f64,
}

/// `n` distinct initiations to the holder of `responder` (a public key).
pub fn initiations(responder: [u8; 32], n: usize) -> Vec<Vec<u8>> {
    let peer = PublicKey::from(responder);
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; 256];
    for i in 0..n {
        let secret = StaticSecret::from(rand_key(i));
        let mut t = Tunn::new(secret, peer, None, None, i as u32, None);
        if let TunnResult::WriteToNetwork(p) = t.format_handshake_initiation(&mut buf, true) {
            out.push(p.to_vec());
        }
    }
    out
}

fn rand_key(i: usize) -> [u8; 32] {
    // Distinct per packet and unpredictable enough for a load test: not a secret.
    let mut k = [0u8; 32];
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ std::process::id() as u64;
    for (j, b) in k.iter_mut().enumerate() {
        *b = (seed.rotate_left((j * 7) as u32) >> (j % 8)) as u8 ^ j as u8;
    }
    k
}

/// Sends `packets` round-robin to `target` at `rate` per second for `secs`, counting replies.
pub fn flood(target: SocketAddr, packets: &[Vec<u8>], rate: u32, secs: f64) -> std::io::Result<Report> {
    let sock = UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
    sock.set_nonblocking(true)?;
    let mut r = Report::default();
    if packets.is_empty() {
        return Ok(r);
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut buf = [0u8; 2048];
    let mut next = 0usize;
    while Instant::now() < end {
        // Due by now at `rate`: keeps the average exact whatever the sleep granularity.
        let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64;
        while r.sent < due {
            match sock.send_to(&packets[next % packets.len()], target) {
                Ok(_) => {
                    r.sent += 1;
                    next += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, _)) if n > 0 => match buf[0] {
                    2 => r.responses += 1,
                    3 => r.cookies += 1,
                    _ => r.other += 1,
                },
                Ok(_) => r.other += 1,
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    r.seconds = start.elapsed().as_secs_f64();
    // Late replies.
    let drain = Instant::now() + Duration::from_millis(200);
    while Instant::now() < drain {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) if n > 0 && buf[0] == 2 => r.responses += 1,
            Ok((n, _)) if n > 0 && buf[0] == 3 => r.cookies += 1,
            Ok(_) => r.other += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initiations_are_distinct_wireguard_type_1_messages() {
        let responder = PublicKey::from(&StaticSecret::from([7u8; 32])).to_bytes();
        let p = initiations(responder, 3);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|m| m.len() == 148 && m[0] == 1), "type 1, 148 bytes");
        assert_ne!(p[0], p[1]);
    }
}
