//! The DNS answer as a pure function: [`respond`] turns request bytes into response bytes from a
//! [`Snapshot`] (A, AAAA, SRV, TXT, PTR for headless backends, SOA on negatives, NXDOMAIN/NODATA,
//! SERVFAIL before the first sync, REFUSED out of zone, EDNS with its size limit and TC); [`fast`] answers the common
//! single A/AAAA question without allocating, exactly as `respond` would.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::resolve::{Answer, Qtype, Snapshot, resolve};

pub mod fast;

/// A zone that is not a domain name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("zone {0:?} is not a domain name: {1}")]
pub struct ZoneError(pub String, pub String);

/// Largest UDP answer with EDNS (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;

/// Server settings.
#[derive(Clone, Debug)]
pub struct Zones {
    /// Zones served, lowercase, fully qualified.
    pub zones: Vec<Name>,
    /// TTL of every record, also the SOA minimum.
    pub ttl: u32,
    /// Zones answered with NXDOMAIN for every name (a stand-in for the cluster's own
    /// `cluster.local`, so resolvers walking the search path move on instead of stopping at
    /// REFUSED).
    pub empty: Vec<Name>,
}

impl Zones {
    /// `clusterset.local` plus custom domains.
    pub fn new(domains: &[String], ttl: u32) -> Result<Self, ZoneError> {
        let mut zones = Vec::new();
        for d in std::iter::once("clusterset.local").chain(domains.iter().map(String::as_str)) {
            let mut n = Name::from_ascii(d).map_err(|e| ZoneError(d.to_string(), e.to_string()))?;
            n.set_fqdn(true);
            zones.push(n.to_lowercase());
        }
        Ok(Self {
            zones,
            ttl,
            empty: Vec::new(),
        })
    }

    /// Adds zones that hold no names at all.
    pub fn with_empty(mut self, domains: &[String]) -> Result<Self, ZoneError> {
        for d in domains {
            let mut n = Name::from_ascii(d).map_err(|e| ZoneError(d.to_string(), e.to_string()))?;
            n.set_fqdn(true);
            self.empty.push(n.to_lowercase());
        }
        Ok(self)
    }
}

fn soa(zone: &Name, ttl: u32, serial: u32) -> Record {
    let mname = Name::from_ascii("ns.dns")
        .unwrap_or_else(|_| Name::root())
        .append_domain(zone)
        .unwrap_or_else(|_| zone.clone());
    let rname = Name::from_ascii("hostmaster")
        .unwrap_or_else(|_| Name::root())
        .append_domain(zone)
        .unwrap_or_else(|_| zone.clone());
    Record::from_rdata(
        zone.clone(),
        ttl,
        RData::SOA(SOA::new(mname, rname, serial, 7200, 1800, 86400, ttl)),
    )
}

fn qtype(t: RecordType) -> Qtype {
    match t {
        RecordType::A => Qtype::A,
        RecordType::AAAA => Qtype::Aaaa,
        RecordType::SRV => Qtype::Srv,
        RecordType::TXT => Qtype::Txt,
        _ => Qtype::Other,
    }
}

fn error_reply(bytes: &[u8], rcode: ResponseCode) -> Option<Vec<u8>> {
    // Enough of the header to answer with the same ID; shorter junk is dropped.
    if bytes.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let mut m = Message::response(id, OpCode::Query);
    m.metadata.response_code = rcode;
    m.to_vec().ok()
}

/// Answers one request. `snapshot` is `None` until the first sync (SERVFAIL then, never a
/// false NXDOMAIN). `udp` applies the size limit and sets TC when the answer does not fit.
pub fn respond(
    snapshot: Option<&Snapshot>,
    zones: &Zones,
    serial: u32,
    bytes: &[u8],
    udp: bool,
) -> Option<Vec<u8>> {
    let req = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(_) => return error_reply(bytes, ResponseCode::FormErr),
    };
    if req.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    let limit = match &req.edns {
        Some(e) => {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            resp.set_edns(edns);
            usize::from(e.max_payload().clamp(512, EDNS_PAYLOAD))
        }
        None => 512,
    };
    // RFC 6891 §6.1.3: only EDNS version 0 exists; a higher one is answered BADVERS (with our
    // OPT, version 0) and nothing else.
    if req.edns.as_ref().is_some_and(|e| e.version() > 0) {
        resp.metadata.response_code = ResponseCode::BADVERS;
        return resp.to_vec().ok();
    }
    if req.metadata.op_code != OpCode::Query {
        resp.metadata.response_code = ResponseCode::NotImp;
        return resp.to_vec().ok();
    }
    let Some(q) = req.queries.first().filter(|_| req.queries.len() == 1) else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp.to_vec().ok();
    };
    resp.add_query(q.clone());
    let name = q.name().to_lowercase();
    if let Some(ip) = reverse_ip(&name) {
        if !answer_reverse(&mut resp, snapshot, zones, q.query_type(), ip) {
            resp.metadata.response_code = ResponseCode::Refused;
        }
        return finish(resp, udp, limit);
    }
    let Some(zone) = zones
        .zones
        .iter()
        .filter(|z| z.zone_of(&name))
        .max_by_key(|z| z.num_labels())
    else {
        if let Some(empty) = zones.empty.iter().find(|z| z.zone_of(&name)) {
            resp.metadata.authoritative = true;
            resp.metadata.response_code = if &name == empty {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            resp.authorities.push(soa(empty, zones.ttl, serial));
            return resp.to_vec().ok();
        }
        resp.metadata.response_code = ResponseCode::Refused;
        return resp.to_vec().ok();
    };
    let Some(snap) = snapshot else {
        resp.metadata.response_code = ResponseCode::ServFail;
        return resp.to_vec().ok();
    };
    resp.metadata.authoritative = true;
    let relative = usize::from(name.num_labels() - zone.num_labels());
    let labels: Vec<String> = name
        .iter()
        .take(relative)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let ttl = zones.ttl;
    let qname = q.name().clone();
    let answer = if refs.is_empty() && q.query_type() == RecordType::SOA {
        resp.add_answer(soa(zone, ttl, serial));
        Answer::Txt(vec![])
    } else {
        resolve(snap, &refs, qtype(q.query_type()))
    };
    match answer {
        Answer::Addrs(ips) => {
            for ip in ips {
                let rdata = match ip {
                    std::net::IpAddr::V4(v4) => RData::A(A(v4)),
                    std::net::IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                };
                resp.add_answer(Record::from_rdata(qname.clone(), ttl, rdata));
            }
        }
        Answer::Srv(records) => {
            for (port, target) in records {
                let target = Name::from_labels(target.iter().map(String::as_bytes))
                    .and_then(|n| n.append_domain(zone))
                    .unwrap_or_else(|_| zone.clone());
                resp.add_answer(Record::from_rdata(
                    qname.clone(),
                    ttl,
                    RData::SRV(SRV::new(0, 50, port, target)),
                ));
            }
        }
        Answer::Txt(t) if !t.is_empty() => {
            resp.add_answer(Record::from_rdata(qname.clone(), ttl, RData::TXT(TXT::new(t))));
        }
        Answer::Txt(_) => {}
        Answer::NoData => {
            resp.authorities.push(soa(zone, ttl, serial));
        }
        Answer::NxDomain => {
            resp.metadata.response_code = ResponseCode::NXDomain;
            resp.authorities.push(soa(zone, ttl, serial));
        }
    }
    finish(resp, udp, limit)
}

/// The response's bytes; over UDP, an empty truncated one (TC) when they exceed `limit`.
fn finish(mut resp: Message, udp: bool, limit: usize) -> Option<Vec<u8>> {
    let out = resp.to_vec().ok()?;
    if udp && out.len() > limit {
        resp.answers.clear();
        resp.authorities.clear();
        resp.metadata.truncation = true;
        return resp.to_vec().ok();
    }
    Some(out)
}

/// The address of an `in-addr.arpa` or `ip6.arpa` name.
fn reverse_ip(name: &Name) -> Option<std::net::IpAddr> {
    // Every query passes here: look at the labels only for a name under `arpa`.
    if !name
        .iter()
        .last()
        .is_some_and(|l| l.eq_ignore_ascii_case(b"arpa"))
    {
        return None;
    }
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    crate::resolve::reverse_name(&refs)
}

/// Answers a reverse query for `ip` with PTR records to the names of the first zone, as the MCS
/// DNS spec's headless PTR. False (to be REFUSED) when the address is not one this server
/// knows: the reverse zone is not ours, and another server may know it. SERVFAIL before the
/// first sync; other types at a known address get an empty answer.
fn answer_reverse(
    resp: &mut Message,
    snapshot: Option<&Snapshot>,
    zones: &Zones,
    qtype: RecordType,
    ip: std::net::IpAddr,
) -> bool {
    let Some(snap) = snapshot else {
        resp.metadata.response_code = ResponseCode::ServFail;
        return true;
    };
    let (Some(zone), targets) = (zones.zones.first(), crate::resolve::reverse(snap, ip)) else {
        return false;
    };
    if targets.is_empty() {
        return false;
    }
    resp.metadata.authoritative = true;
    if qtype == RecordType::PTR {
        let qname = resp.queries[0].name().clone();
        for t in targets {
            if let Ok(target) =
                Name::from_labels(t.iter().map(String::as_bytes)).and_then(|n| n.append_domain(zone))
            {
                resp.add_answer(Record::from_rdata(
                    qname.clone(),
                    zones.ttl,
                    RData::PTR(PTR(target)),
                ));
            }
        }
    }
    true
}

#[cfg(test)]
mod tests;
