//! The hot path: the common query — one question, class IN, A or AAAA, at most a bare OPT
//! record — answered straight from the snapshot into a reused buffer, with no `Message` built
//! and no allocation. Anything else (SRV, TXT, EDNS options, truncation, malformed input) returns
//! `false` and goes through [`super::respond`]; a differential test holds the two to the same
//! answers.

use std::net::IpAddr;

use super::{EDNS_PAYLOAD, Zones};
use crate::resolve::{Answer, Qtype, Snapshot, resolve};

const MAX_LABELS: usize = 16;

pub(super) struct Question<'a> {
    /// The name as sent (for the echo in the answer), type and class included.
    wire: &'a [u8],
    pub(super) qtype: u16,
    /// Offset of each label in `wire`.
    starts: [usize; MAX_LABELS],
    labels: usize,
    /// End of the question section in the request.
    end: usize,
}

/// The question type of a request as this parser reads it (one reading of the wire format for
/// answers and metrics); `None` for junk, compression or a class other than IN.
pub fn question_type(req: &[u8]) -> Option<u16> {
    question(req).map(|q| q.qtype)
}

pub(super) fn question(req: &[u8]) -> Option<Question<'_>> {
    let mut q = Question {
        wire: &[],
        qtype: 0,
        starts: [0; MAX_LABELS],
        labels: 0,
        end: 0,
    };
    let mut i = 12;
    loop {
        let len = usize::from(*req.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        if len > 63 || q.labels == MAX_LABELS || i + 1 + len > req.len() {
            return None;
        }
        q.starts[q.labels] = i - 12;
        q.labels += 1;
        i += 1 + len;
    }
    let t = req.get(i..i + 4)?;
    q.qtype = u16::from_be_bytes([t[0], t[1]]);
    if u16::from_be_bytes([t[2], t[3]]) != 1 {
        return None;
    }
    q.end = i + 4;
    q.wire = &req[12..q.end];
    Some(q)
}

fn label<'a>(q: &Question<'_>, lower: &'a [u8], n: usize) -> &'a [u8] {
    let at = q.starts[n];
    let len = usize::from(q.wire[at]);
    &lower[at + 1..at + 1 + len]
}

/// Writes the answer to `req` into `out`; `false` when the slow path must answer instead.
pub fn respond(snap: &Snapshot, zones: &Zones, serial: u32, req: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if req.len() < 12 || req[2] & 0xf8 != 0 {
        // A response, or an opcode other than QUERY.
        return false;
    }
    let counts = |i: usize| u16::from_be_bytes([req[i], req[i + 1]]);
    if counts(4) != 1 || counts(6) != 0 || counts(8) != 0 || counts(10) > 1 {
        return false;
    }
    let Some(q) = question(req) else { return false };
    let want = match q.qtype {
        1 => Qtype::A,
        28 => Qtype::Aaaa,
        _ => return false,
    };
    // A bare OPT (no options) is the only additional record handled here.
    let mut limit = 512usize;
    let edns = counts(10) == 1;
    if edns {
        let opt = &req[q.end..];
        if opt.len() != 11
            || opt[0] != 0
            || u16::from_be_bytes([opt[1], opt[2]]) != 41
            || opt[6] != 0
            || opt[9] != 0
            || opt[10] != 0
        {
            return false;
        }
        limit = usize::from(u16::from_be_bytes([opt[3], opt[4]]).clamp(512, EDNS_PAYLOAD));
    }
    let mut lower = [0u8; 256];
    let name = &q.wire[..q.wire.len() - 4];
    if name.len() > lower.len() {
        return false;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    // The longest zone the name ends in.
    let mut zone_at = None;
    for z in &zones.zones {
        let zl = usize::from(z.num_labels());
        if zl > q.labels {
            continue;
        }
        let matches = z
            .iter()
            .enumerate()
            .all(|(k, zlabel)| label(&q, &lower, q.labels - zl + k) == zlabel);
        if matches && zone_at.is_none_or(|(best, _)| zl > best) {
            zone_at = Some((zl, q.labels - zl));
        }
    }
    let Some((_, first_zone_label)) = zone_at else {
        return false;
    };
    let mut rel: [&str; MAX_LABELS] = [""; MAX_LABELS];
    for (k, slot) in rel.iter_mut().enumerate().take(first_zone_label) {
        let Ok(text) = std::str::from_utf8(label(&q, &lower, k)) else {
            return false;
        };
        *slot = text;
    }
    let answer = resolve(snap, &rel[..first_zone_label], want);
    let (rcode, ips): (u8, &[IpAddr]) = match &answer {
        Answer::Addrs(ips) => (0, ips),
        Answer::NoData => (0, &[]),
        Answer::NxDomain => (3, &[]),
        _ => return false,
    };
    let negative = ips.is_empty();
    // Header: ID, QR|AA, RD copied, counts.
    out.extend_from_slice(&req[0..2]);
    out.push(0x84 | (req[2] & 0x01));
    out.push(rcode);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(ips.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, u8::from(negative)]);
    out.extend_from_slice(&[0, u8::from(edns)]);
    out.extend_from_slice(q.wire);
    let ttl = zones.ttl.to_be_bytes();
    for ip in ips {
        // Owner: a pointer to the question name at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        match ip {
            IpAddr::V4(v4) => {
                out.extend_from_slice(&[0, 1, 0, 1]);
                out.extend_from_slice(&ttl);
                out.extend_from_slice(&[0, 4]);
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.extend_from_slice(&[0, 28, 0, 1]);
                out.extend_from_slice(&ttl);
                out.extend_from_slice(&[0, 16]);
                out.extend_from_slice(&v6.octets());
            }
        }
    }
    if negative {
        // SOA of the zone, its owner a pointer to the zone's labels inside the question.
        let zone_ptr = (12 + q.starts[first_zone_label]) as u16 | 0xc000;
        let zp = zone_ptr.to_be_bytes();
        out.extend_from_slice(&zp);
        out.extend_from_slice(&[0, 6, 0, 1]);
        out.extend_from_slice(&ttl);
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&[2, b'n', b's', 3, b'd', b'n', b's']);
        out.extend_from_slice(&zp);
        out.extend_from_slice(&[10, b'h', b'o', b's', b't', b'm', b'a', b's', b't', b'e', b'r']);
        out.extend_from_slice(&zp);
        for v in [serial, 7200, 1800, 86400, zones.ttl] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let rdlen = (out.len() - len_at - 2) as u16;
        out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
    if edns {
        out.extend_from_slice(&[0, 0, 41]);
        out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    if out.len() > limit {
        out.clear();
        return false;
    }
    true
}
