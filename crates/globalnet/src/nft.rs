//! The active gateway's Globalnet NAT as one nftables table, built with the `nftables` crate's
//! typed schema and replaced in a single transaction (`nft -j -f -`): a reader never sees half
//! a rule set, and a failed replace leaves the old one in place.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use nftables::batch::Batch;
use nftables::expr::{Expression, NamedExpression, Payload, PayloadField, Prefix, Range, SetItem};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{JumpTarget, Match, NAT, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use subsea_cidr::Cidr;
use subsea_globalnet_core::plan::Rules;

use crate::error::{Error, Result};

/// The table Globalnet owns; nothing else is touched.
pub const TABLE: &str = "subsea-globalnet";
const INGRESS: &str = "ingress";
const EGRESS: &str = "egress";
const TO_REMOTE: &str = "to-remote";
// Before the usual DNAT (-100) and SNAT (100) priorities, so kube-proxy-like tables that share
// the hooks see packets after Globalnet's translation.
const INGRESS_PRIORITY: i32 = -110;
const EGRESS_PRIORITY: i32 = 90;

fn table() -> Table<'static> {
    Table {
        family: NfFamily::IP,
        name: TABLE.into(),
        handle: None,
    }
}

fn chain(name: &'static str, hook: Option<(NfHook, i32)>) -> Chain<'static> {
    Chain {
        family: NfFamily::IP,
        table: TABLE.into(),
        name: name.into(),
        _type: hook.map(|_| NfChainType::NAT),
        hook: hook.map(|(h, _)| h),
        prio: hook.map(|(_, p)| p),
        policy: hook.map(|_| NfChainPolicy::Accept),
        ..Chain::default()
    }
}

fn rule(chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::IP,
        table: TABLE.into(),
        chain: chain.into(),
        expr: Cow::Owned(expr),
        ..Rule::default()
    })
}

fn field(name: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: "ip".into(),
        field: name.into(),
    })))
}

fn addr(ip: Ipv4Addr) -> Expression<'static> {
    Expression::String(ip.to_string().into())
}

fn cidr(c: &Cidr) -> Expression<'static> {
    if c.prefix == 32 {
        return Expression::String(c.addr.to_string().into());
    }
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String(c.addr.to_string().into())),
        len: u32::from(c.prefix),
    }))
}

fn is(name: &'static str, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left: field(name),
        right,
        op: Operator::EQ,
    })
}

fn one_or_set(cs: &[Cidr]) -> Expression<'static> {
    match cs {
        [one] => cidr(one),
        many => Expression::Named(NamedExpression::Set(
            many.iter().map(|c| SetItem::Element(cidr(c))).collect(),
        )),
    }
}

fn to(ips: &[Ipv4Addr]) -> Option<Expression<'static>> {
    match ips {
        [] => None,
        [one] => Some(addr(*one)),
        [first, .., last] => Some(Expression::Range(Box::new(Range {
            range: [addr(*first), addr(*last)],
        }))),
    }
}

fn nat(addr: Expression<'static>) -> NAT<'static> {
    NAT {
        addr: Some(addr),
        family: None,
        port: None,
        flags: None,
    }
}

/// The whole table for `rules`, replacing whatever the table held.
pub fn ruleset(rules: &Rules) -> Nftables<'static> {
    let mut b = Batch::new();
    // add + delete + add: replaces the table whether or not it existed, in one transaction.
    b.add(NfListObject::Table(table()));
    b.delete(NfListObject::Table(table()));
    b.add(NfListObject::Table(table()));
    b.add(NfListObject::Chain(chain(
        INGRESS,
        Some((NfHook::Prerouting, INGRESS_PRIORITY)),
    )));
    b.add(NfListObject::Chain(chain(
        EGRESS,
        Some((NfHook::Postrouting, EGRESS_PRIORITY)),
    )));
    b.add(NfListObject::Chain(chain(TO_REMOTE, None)));
    for (global, local) in &rules.dnat {
        b.add(rule(
            INGRESS,
            vec![
                is("daddr", addr(*global)),
                Statement::DNAT(Some(nat(addr(*local)))),
            ],
        ));
    }
    if !rules.remote.is_empty() {
        b.add(rule(
            EGRESS,
            vec![
                is("daddr", one_or_set(&rules.remote)),
                Statement::Jump(JumpTarget {
                    target: TO_REMOTE.into(),
                }),
            ],
        ));
    }
    for s in &rules.snat {
        let (Some(dest), false) = (to(&s.to), s.sources.is_empty()) else {
            continue;
        };
        b.add(rule(
            TO_REMOTE,
            vec![
                is("saddr", one_or_set(&s.sources)),
                Statement::SNAT(Some(nat(dest))),
            ],
        ));
    }
    b.to_nftables()
}

/// Replaces the table with `rules`.
pub fn apply(rules: &Rules) -> Result<()> {
    nftables::helper::apply_ruleset(&ruleset(rules)).map_err(|source| Error::Nft { table: TABLE, source })
}

/// Removes the table (a passive gateway, shutdown, uninstall); absent is fine.
pub fn remove() -> Result<()> {
    let mut b = Batch::new();
    b.add(NfListObject::Table(table()));
    b.delete(NfListObject::Table(table()));
    nftables::helper::apply_ruleset(&b.to_nftables()).map_err(|source| Error::Nft { table: TABLE, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use subsea_globalnet_core::plan::Snat;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).expect("cidr")
    }

    #[test]
    fn the_table_is_replaced_whole_with_dnat_then_snat_to_remote_clusters_only() {
        let rules = Rules {
            remote: vec![c("242.1.0.0/16"), c("242.2.0.0/16")],
            dnat: vec![(
                "242.0.0.1".parse().expect("ip"),
                "10.244.1.1".parse().expect("ip"),
            )],
            snat: vec![
                Snat {
                    sources: vec![c("10.244.1.1/32")],
                    to: vec!["242.0.0.1".parse().expect("ip")],
                },
                Snat {
                    sources: vec![c("10.244.0.0/16")],
                    to: vec!["242.0.0.2".parse().expect("ip"), "242.0.0.9".parse().expect("ip")],
                },
            ],
        };
        let json = serde_json::to_value(ruleset(&rules)).expect("json");
        let cmds = json["nftables"].as_array().expect("commands");
        assert!(cmds[0]["add"]["table"]["name"] == TABLE && cmds[1]["delete"]["table"]["name"] == TABLE);
        let text = json.to_string();
        assert!(text.contains(r#""dnat":{"addr":"10.244.1.1"}"#), "{text}");
        assert!(
            text.contains(r#""snat":{"addr":{"range":["242.0.0.2","242.0.0.9"]}}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""prefix":{"addr":"242.1.0.0","len":16}"#),
            "{text}"
        );
        assert!(text.contains(r#""jump":{"target":"to-remote"}"#), "{text}");
        let hooks: Vec<&str> = cmds
            .iter()
            .filter_map(|c| c["add"]["chain"]["hook"].as_str())
            .collect();
        assert_eq!(hooks, ["prerouting", "postrouting"]);
    }

    #[test]
    fn no_remote_clusters_means_no_snat_jump() {
        let json = serde_json::to_value(ruleset(&Rules::default()))
            .expect("json")
            .to_string();
        assert!(!json.contains("jump"), "{json}");
    }
}
