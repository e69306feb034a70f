//! A node's ClusterSetIP forwards as one nftables table, built with the `nftables` crate's typed
//! schema and replaced in one transaction: a connection never sees half a rule set, and a
//! failed replace leaves the old one.
//!
//! The destination translation runs at priority -110, before a service proxy's (-100): a node
//! translates a connection's destination once, so the VIP rules name pods or remote service
//! IPs, never the local service IP. One `inet` table holds both families' VIPs.

use std::borrow::Cow;
use std::net::IpAddr;

use nftables::batch::Batch;
use nftables::expr::{
    Expression, JHash, Map, NamedExpression, NgMode, Numgen, Payload, PayloadField, SetItem,
};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{Match, NAT, NATFamily, Operator, Reject, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use subsea_lighthouse_core::vip_route::Forward;

use crate::error::{Error, Result};

/// The table the daemon owns; nothing else is touched.
pub const TABLE: &str = "subsea-clusterset-ip";
const VIPS: &str = "vips";
const PRIORITY: i32 = -110;

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

/// The IPv4-only table of earlier releases, removed where found.
fn legacy_table() -> Table<'static> {
    Table {
        family: NfFamily::IP,
        ..table()
    }
}

/// The payload protocol of a VIP's family: `ip` or `ip6`.
fn l3(ip: IpAddr) -> &'static str {
    if ip.is_ipv6() { "ip6" } else { "ip" }
}

fn chain(name: &'static str, hook: Option<NfHook>) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        _type: hook.map(|_| NfChainType::NAT),
        hook,
        prio: hook.map(|_| PRIORITY),
        policy: hook.map(|_| NfChainPolicy::Accept),
        ..Chain::default()
    }
}

fn payload(protocol: &str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: protocol.to_string().into(),
        field: field.into(),
    })))
}

fn is(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn target(ip: IpAddr, port: u16) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(vec![
        Expression::String(ip.to_string().into()),
        Expression::Number(u32::from(port)),
    ]))
}

/// `dnat ip[6] addr . port to <numgen random | jhash ip[6] saddr> mod N map { i : addr . port }`.
fn spread(f: &Forward) -> Statement<'static> {
    let n = u32::try_from(f.backends.len()).unwrap_or(u32::MAX);
    let key = if f.sticky {
        Expression::Named(NamedExpression::JHash(JHash {
            hash_mod: n,
            offset: None,
            expr: Box::new(payload(l3(f.vip), "saddr")),
            seed: None,
        }))
    } else {
        Expression::Named(NamedExpression::Numgen(Numgen {
            mode: NgMode::Random,
            ng_mod: n,
            offset: None,
        }))
    };
    let items = f
        .backends
        .iter()
        .zip(0u32..)
        .map(|((ip, port), i)| SetItem::Mapping(Expression::Number(i), target(*ip, *port)))
        .collect();
    Statement::DNAT(Some(NAT {
        addr: Some(Expression::Named(NamedExpression::Map(Box::new(Map {
            key,
            data: Expression::Named(NamedExpression::Set(items)),
        })))),
        family: Some(if f.vip.is_ipv6() {
            NATFamily::IP6
        } else {
            NATFamily::IP
        }),
        port: None,
        flags: None,
    }))
}

/// The whole table for `forwards`, replacing whatever it held. A VIP port without backends
/// refuses connections at once rather than letting them time out.
pub fn ruleset(forwards: &[Forward]) -> Nftables<'static> {
    let mut b = Batch::new();
    // add + delete + add: replaces the table whether or not it existed, in one transaction.
    b.add(NfListObject::Table(legacy_table()));
    b.delete(NfListObject::Table(legacy_table()));
    b.add(NfListObject::Table(table()));
    b.delete(NfListObject::Table(table()));
    b.add(NfListObject::Table(table()));
    b.add(NfListObject::Chain(chain(VIPS, None)));
    for hook in [NfHook::Prerouting, NfHook::Output] {
        let name = if hook == NfHook::Prerouting {
            "prerouting"
        } else {
            "output"
        };
        b.add(NfListObject::Chain(chain(name, Some(hook))));
        b.add(NfListObject::Rule(Rule {
            family: NfFamily::INet,
            table: TABLE.into(),
            chain: name.into(),
            expr: Cow::Owned(vec![Statement::Jump(nftables::stmt::JumpTarget {
                target: VIPS.into(),
            })]),
            ..Rule::default()
        }));
    }
    for f in forwards {
        let verdict = if f.backends.is_empty() {
            Statement::Reject(Some(Reject::new(None, None)))
        } else {
            spread(f)
        };
        b.add(NfListObject::Rule(Rule {
            family: NfFamily::INet,
            table: TABLE.into(),
            chain: VIPS.into(),
            expr: Cow::Owned(vec![
                is(
                    payload(l3(f.vip), "daddr"),
                    Expression::String(f.vip.to_string().into()),
                ),
                is(
                    payload(&f.protocol, "dport"),
                    Expression::Number(u32::from(f.port)),
                ),
                verdict,
            ]),
            ..Rule::default()
        }));
    }
    b.to_nftables()
}

/// Replaces the table with `forwards`.
pub fn apply(forwards: &[Forward]) -> Result<()> {
    nftables::helper::apply_ruleset(&ruleset(forwards)).map_err(|source| Error::Nft { table: TABLE, source })
}

/// Removes the table (shutdown, uninstall); absent is fine.
pub fn remove() -> Result<()> {
    let mut b = Batch::new();
    for t in [table(), legacy_table()] {
        b.add(NfListObject::Table(t.clone()));
        b.delete(NfListObject::Table(t));
    }
    nftables::helper::apply_ruleset(&b.to_nftables()).map_err(|source| Error::Nft { table: TABLE, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(sticky: bool, backends: &[(&str, u16)]) -> Forward {
        forward_to("243.0.0.9", sticky, backends)
    }

    fn forward_to(vip: &str, sticky: bool, backends: &[(&str, u16)]) -> Forward {
        Forward {
            vip: vip.parse().expect("ip"),
            protocol: "tcp".into(),
            port: 80,
            sticky,
            backends: backends
                .iter()
                .map(|(ip, p)| (ip.parse().expect("ip"), *p))
                .collect(),
        }
    }

    #[test]
    fn each_vip_port_spreads_over_its_backends_and_an_empty_one_rejects() {
        let json = serde_json::to_value(ruleset(&[
            forward(false, &[("100.66.0.5", 80), ("10.129.4.11", 8080)]),
            forward(true, &[("100.66.0.5", 80)]),
            forward(false, &[]),
        ]))
        .expect("json")
        .to_string();
        assert!(json.contains(r#""numgen":{"mod":2,"mode":"random"}"#), "{json}");
        assert!(json.contains(r#"[0,{"concat":["100.66.0.5",80]}]"#), "{json}");
        assert!(json.contains(r#"[1,{"concat":["10.129.4.11",8080]}]"#), "{json}");
        assert!(
            json.contains(r#""jhash":{"expr":{"payload":{"field":"saddr","protocol":"ip"}},"mod":1}"#),
            "{json}"
        );
        assert!(json.contains(r#""reject""#), "{json}");
        assert!(json.contains(r#""prio":-110"#), "{json}");
    }

    #[test]
    fn an_ipv6_vip_matches_and_translates_as_ipv6_in_the_inet_table() {
        let json = serde_json::to_value(ruleset(&[forward_to("fd00:243::9", true, &[("fd00:66::5", 80)])]))
            .expect("json")
            .to_string();
        assert!(json.contains(r#""family":"inet""#), "{json}");
        assert!(
            json.contains(r#"{"payload":{"field":"daddr","protocol":"ip6"}}"#),
            "{json}"
        );
        assert!(
            json.contains(r#""jhash":{"expr":{"payload":{"field":"saddr","protocol":"ip6"}}"#),
            "{json}"
        );
        assert!(json.contains(r#"[0,{"concat":["fd00:66::5",80]}]"#), "{json}");
        assert!(
            json.contains(r#""family":"ip6""#),
            "the dnat names its family: {json}"
        );
    }
}
