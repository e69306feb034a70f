//! ICMP echo messages for the health checker: building requests and recognising replies in
//! what a raw IPv4 socket returns (IP header included). Replies are untrusted bytes: parsing
//! never panics and rejects anything malformed.

/// Builds an echo request with our identifier and sequence number and an 8-byte payload
/// (the send time, so a reply's RTT needs no lookup).
pub fn echo_request(id: u16, seq: u16, payload: u64) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 8; // echo request
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(&payload.to_be_bytes());
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo reply: source address, identifier, sequence and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Who answered.
    pub from: std::net::Ipv4Addr,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
    /// The 8-byte payload we sent.
    pub payload: u64,
}

/// Parses an IPv4 packet holding an ICMP echo reply with a valid checksum.
pub fn parse_reply(packet: &[u8]) -> Option<Reply> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || packet.len() < ihl + 16 || packet[9] != 1 {
        return None;
    }
    let icmp = &packet[ihl..];
    if icmp[0] != 0 || icmp[1] != 0 || checksum(icmp) != 0 {
        return None;
    }
    Some(Reply {
        from: std::net::Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: u64::from_be_bytes(icmp[8..16].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_to(req: &[u8; 16], from: [u8; 4]) -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0];
        ip.extend_from_slice(&from);
        ip.extend_from_slice(&[10, 129, 2, 1]);
        let mut icmp = req.to_vec();
        icmp[0] = 0;
        icmp[2] = 0;
        icmp[3] = 0;
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        ip.extend_from_slice(&icmp);
        ip
    }

    #[test]
    fn a_request_checks_out_and_its_reply_parses_back() {
        let req = echo_request(0x1234, 7, 99);
        assert_eq!(checksum(&req), 0);
        let r = parse_reply(&reply_to(&req, [10, 130, 2, 1])).expect("a reply");
        assert_eq!(
            r,
            Reply {
                from: [10, 130, 2, 1].into(),
                id: 0x1234,
                seq: 7,
                payload: 99
            }
        );
    }

    #[test]
    fn requests_corrupted_replies_and_garbage_are_rejected() {
        let req = echo_request(1, 1, 1);
        let mut bad = reply_to(&req, [1, 2, 3, 4]);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(parse_reply(&bad), None, "bad checksum");
        let mut as_request = reply_to(&req, [1, 2, 3, 4]);
        as_request[20] = 8;
        assert_eq!(parse_reply(&as_request), None, "not a reply");
        // No prefix of a good reply is accepted, and random bytes never panic the parser.
        let good = reply_to(&req, [1, 2, 3, 4]);
        for n in 0..good.len() {
            assert_eq!(parse_reply(&good[..n]), None);
        }
        let mut x: u32 = 12345;
        for _ in 0..10_000 {
            let len = (x % 80) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse_reply(&bytes);
        }
    }
}
