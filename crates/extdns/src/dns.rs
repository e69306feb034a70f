//! RFC 2136 dynamic updates and zone transfers over TCP, signed with TSIG (RFC 8945) through
//! hickory-proto's message, update and TSIG types. Each change is one update message whose
//! prerequisites are exactly what the zone transfer showed, so the server applies it whole or
//! not at all.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use subsea_extdns_core::RType;
use subsea_extdns_core::key::{Algorithm, Key};
use subsea_extdns_core::plan::{Change, Op, ZoneRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// Every exchange must finish within this.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds of clock difference the server may accept (BIND's and RFC 8945's usual 300).
const FUDGE: u16 = 300;

/// An authoritative server and the zone updated on it.
pub struct Server {
    addr: SocketAddr,
    zone: Name,
    signer: TSigner,
    key_name: String,
}

fn name(text: &str) -> Result<Name> {
    let mut n =
        Name::from_ascii(text).map_err(|e| Error::Config(format!("{text:?} is not a domain name: {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Server {
    /// The server at `addr`, for `zone`, with `key`.
    pub fn new(addr: SocketAddr, zone: &str, key: &Key) -> Result<Self> {
        let algorithm = match key.algorithm {
            Algorithm::HmacSha256 => TsigAlgorithm::HmacSha256,
            Algorithm::HmacSha384 => TsigAlgorithm::HmacSha384,
            Algorithm::HmacSha512 => TsigAlgorithm::HmacSha512,
        };
        let signer = TSigner::new(key.secret.clone(), algorithm, name(&key.name)?, FUDGE)
            .map_err(|e| Error::Config(format!("TSIG key {:?}: {e}", key.name)))?;
        Ok(Self {
            addr,
            zone: name(zone)?,
            signer,
            key_name: key.name.clone(),
        })
    }

    /// Where the updates go, for messages.
    pub fn describe(&self) -> String {
        format!("{} (zone {})", self.addr, self.zone)
    }

    /// Every record of the zone (AXFR).
    pub async fn transfer(&self) -> Result<Vec<ZoneRecord>> {
        let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        let mut q = Query::query(self.zone.clone(), RecordType::AXFR);
        q.set_query_class(DNSClass::IN);
        msg.add_query(q);
        let records = tokio::time::timeout(TIMEOUT * 4, self.exchange(msg, true))
            .await
            .map_err(|_| self.down("the zone transfer timed out"))??;
        Ok(records.iter().filter_map(zone_record).collect())
    }

    /// Sends one change.
    pub async fn apply(&self, c: &Change) -> Result<()> {
        let msg = update(&self.zone, c)?;
        tokio::time::timeout(TIMEOUT, self.exchange(msg, false))
            .await
            .map_err(|_| self.down("the update timed out"))??;
        Ok(())
    }

    fn down(&self, what: &str) -> Error {
        Error::Server(format!("{}: {what}", self.describe()))
    }

    /// Signs `msg`, sends it and reads the (signed) answers: one for an update, up to the
    /// closing SOA for a transfer. Returns the answer records.
    async fn exchange(&self, mut msg: Message, transfer: bool) -> Result<Vec<Record>> {
        let mut verifier = msg
            .finalize(&self.signer, now())
            .map_err(|e| Error::Config(format!("cannot sign with TSIG key {:?}: {e}", self.key_name)))?
            .ok_or_else(|| Error::Config("the TSIG signer produced no verifier".into()))?;
        let bytes = msg
            .to_vec()
            .map_err(|e| Error::Config(format!("cannot encode the message: {e}")))?;
        let mut stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| self.down(&format!("cannot connect: {e}")))?;
        let len = u16::try_from(bytes.len())
            .map_err(|_| Error::Config("the update is larger than 64 KiB".into()))?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(&bytes);
        stream
            .write_all(&frame)
            .await
            .map_err(|e| self.down(&format!("cannot send: {e}")))?;
        let mut records = Vec::new();
        let mut soas = 0;
        // A transfer of a zone this publisher can hold fits in a bounded number of messages.
        for _ in 0..10_000 {
            let mut len = [0u8; 2];
            stream
                .read_exact(&mut len)
                .await
                .map_err(|e| self.down(&format!("the connection closed before the answer: {e}")))?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream
                .read_exact(&mut buf)
                .await
                .map_err(|e| self.down(&format!("the answer was cut short: {e}")))?;
            let answer = match verifier.verify(&buf) {
                Ok(r) => r,
                Err(e) => return Err(self.refused(&buf, &e.to_string())),
            };
            let code = answer.metadata.response_code;
            if code != ResponseCode::NoError {
                return Err(self.rcode(code, &msg));
            }
            for r in &answer.answers {
                if r.record_type() == RecordType::SOA {
                    soas += 1;
                }
                records.push(r.clone());
            }
            if !transfer || soas >= 2 {
                return Ok(records);
            }
        }
        Err(self.down("the zone transfer did not end"))
    }

    /// Why an answer failed verification: the server refused our key, or the answer is forged.
    fn refused(&self, buf: &[u8], why: &str) -> Error {
        if let Ok(m) = Message::from_vec(buf) {
            let tsig = m.signature.as_ref().and_then(|s| s.data.error.clone());
            if m.metadata.response_code == ResponseCode::NotAuth || tsig.is_some() {
                let detail = match tsig {
                    Some(TsigError::BadKey) => "BADKEY: the server knows no key of that name and algorithm",
                    Some(TsigError::BadSig) => "BADSIG: the secret differs from the server's",
                    Some(TsigError::BadTime) => {
                        "BADTIME: this machine's clock is off from the server's by more than 5 minutes"
                    }
                    _ => "NOTAUTH",
                };
                return Error::Refused(format!(
                    "{} refused TSIG key {:?} ({detail}); check that --tsig-key-file holds the key the server's configuration includes, and that the server allows it to update and transfer the zone",
                    self.describe(),
                    self.key_name
                ));
            }
        }
        Error::Server(format!(
            "{}: the answer's TSIG signature does not verify ({why})",
            self.describe()
        ))
    }

    fn rcode(&self, code: ResponseCode, msg: &Message) -> Error {
        let what = if msg.metadata.op_code == OpCode::Update {
            "update"
        } else {
            "zone transfer"
        };
        match code {
            // A prerequisite did not hold: someone changed the name since we read the zone.
            ResponseCode::YXDomain
            | ResponseCode::YXRRSet
            | ResponseCode::NXRRSet
            | ResponseCode::NXDomain
                if what == "update" =>
            {
                Error::Raced(format!(
                    "{}: the name changed since the zone was read ({code})",
                    self.describe()
                ))
            }
            ResponseCode::Refused | ResponseCode::NotAuth => Error::Refused(format!(
                "{} refused the {what} ({code}): allow TSIG key {:?} to {} the zone in the server's configuration (BIND: `allow-update` / `update-policy`, `allow-transfer`)",
                self.describe(),
                self.key_name,
                if what == "update" { "update" } else { "transfer" }
            )),
            ResponseCode::NotZone => Error::Config(format!(
                "{}: the server is not authoritative for that zone ({code}); check --zone",
                self.describe()
            )),
            other => Error::Server(format!("{}: the {what} failed ({other})", self.describe())),
        }
    }
}

fn rand_id() -> u16 {
    Message::query().metadata.id
}

fn zone_record(r: &Record) -> Option<ZoneRecord> {
    let data = match &r.data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .concat(),
        other => other.to_string(),
    };
    Some(ZoneRecord {
        name: subsea_extdns_core::name::normal(&r.name.to_ascii()),
        rtype: r.record_type().to_string(),
        ttl: r.ttl,
        data,
    })
}

fn address(name: &Name, ttl: u32, ip: &IpAddr) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(*v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
    };
    Record::from_rdata(name.clone(), ttl, data)
}

fn txt(name: &Name, ttl: u32, text: &str) -> Record {
    Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::new(vec![text.to_string()])))
}

fn with_class(mut r: Record, class: DNSClass) -> Record {
    r.dns_class = class;
    r
}

fn record_type(t: RType) -> RecordType {
    match t {
        RType::A => RecordType::A,
        RType::Aaaa => RecordType::AAAA,
    }
}

/// Prerequisite: the RRset exists with exactly `ips` (value-dependent), or does not exist.
fn rrset_is(out: &mut Message, owner: &Name, t: RType, ips: &BTreeSet<IpAddr>) {
    if ips.is_empty() {
        out.add_pre_requisite(with_class(
            Record::update0(owner.clone(), 0, record_type(t)),
            DNSClass::NONE,
        ));
    } else {
        for ip in ips {
            out.add_pre_requisite(address(owner, 0, ip));
        }
    }
}

/// The update message for one change (RFC 2136 sections 2.4 and 2.5).
pub fn update(zone: &Name, c: &Change) -> Result<Message> {
    let owner = name(&c.name)?;
    let txt_owner = name(&c.txt_name)?;
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Update);
    let mut z = Query::query(zone.clone(), RecordType::SOA);
    z.set_query_class(DNSClass::IN);
    m.add_zone(z);
    let delete_rrset = |n: &Name, t: RecordType| with_class(Record::update0(n.clone(), 0, t), DNSClass::ANY);
    match &c.op {
        Op::Create => {
            rrset_is(&mut m, &owner, c.rtype, &BTreeSet::new());
            m.add_pre_requisite(with_class(
                Record::update0(txt_owner.clone(), 0, RecordType::TXT),
                DNSClass::NONE,
            ));
        }
        Op::Update { old, registry } | Op::Delete { old, registry } => {
            m.add_pre_requisite(txt(&txt_owner, 0, registry));
            rrset_is(&mut m, &owner, c.rtype, old);
            m.add_update(delete_rrset(&owner, record_type(c.rtype)));
            m.add_update(delete_rrset(&txt_owner, RecordType::TXT));
        }
    }
    if !matches!(c.op, Op::Delete { .. }) {
        for ip in &c.targets {
            m.add_update(address(&owner, c.ttl, ip));
        }
        m.add_update(txt(&txt_owner, c.ttl, &c.txt));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(op: Op) -> Change {
        Change {
            name: "web.example.com".into(),
            rtype: RType::A,
            op,
            targets: ["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()].into(),
            ttl: 30,
            txt_name: "a-web.example.com".into(),
            txt: "heritage=external-dns,external-dns/owner=o,external-dns/resource=service/d/web".into(),
        }
    }

    fn sections(m: &Message) -> (Vec<String>, Vec<String>) {
        // Round-trip through the wire format: what the server sees.
        let m = Message::from_vec(&m.to_vec().expect("encodes")).expect("decodes");
        let show = |rs: &[Record]| {
            rs.iter()
                .map(|r| {
                    // An empty RDATA shows as "UPDATE".
                    format!("{} {} {} {}", r.name, r.dns_class, r.record_type(), r.data)
                        .trim_end_matches(" UPDATE")
                        .to_string()
                })
                .collect()
        };
        (show(&m.answers), show(&m.authorities))
    }

    #[test]
    fn a_create_requires_the_name_and_registry_record_to_be_free() {
        let zone = name("example.com").unwrap();
        let m = update(&zone, &change(Op::Create)).expect("message");
        assert_eq!(m.metadata.op_code, OpCode::Update);
        assert_eq!(m.queries[0].query_type(), RecordType::SOA);
        let (pre, upd) = sections(&m);
        assert_eq!(pre, ["web.example.com. NONE A", "a-web.example.com. NONE TXT"]);
        assert_eq!(upd.len(), 3);
        assert!(upd[0].starts_with("web.example.com. IN A 192.0.2.1"), "{upd:?}");
        assert!(
            upd[2].starts_with("a-web.example.com. IN TXT") && upd[2].contains("owner=o"),
            "{upd:?}"
        );
    }

    #[test]
    fn an_update_swaps_exactly_what_was_read() {
        let zone = name("example.com").unwrap();
        let old = ["192.0.2.9".parse().unwrap()].into();
        let m = update(
            &zone,
            &change(Op::Update {
                old,
                registry: "heritage=external-dns,external-dns/owner=o".into(),
            }),
        )
        .expect("message");
        let (pre, upd) = sections(&m);
        assert_eq!(pre.len(), 2);
        assert!(pre[0].starts_with("a-web.example.com. IN TXT"), "{pre:?}");
        assert_eq!(pre[1], "web.example.com. IN A 192.0.2.9");
        assert_eq!(
            &upd[..2],
            ["web.example.com. ANY A", "a-web.example.com. ANY TXT"]
        );
        assert_eq!(upd.len(), 5);
    }

    #[test]
    fn a_delete_removes_the_records_and_the_registry_record_only() {
        let zone = name("example.com").unwrap();
        let m = update(
            &zone,
            &change(Op::Delete {
                old: BTreeSet::new(),
                registry: "r".into(),
            }),
        )
        .expect("message");
        let (pre, upd) = sections(&m);
        assert_eq!(pre[1], "web.example.com. NONE A");
        assert_eq!(upd, ["web.example.com. ANY A", "a-web.example.com. ANY TXT"]);
    }
}
