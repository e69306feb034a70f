//! The kernel routing state subsea owns, over rtnetlink: routes tagged with protocol 4 (as
//! Submariner's), the table-150 rule, and address lookup. Every route subsea adds carries
//! `proto 4`, so it can list and remove exactly its own routes and nothing else.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteProtocol,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};
use subsea_cidr::Cidr;

/// A routing change or lookup the kernel refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The netlink socket could not be opened.
    #[error("cannot open an rtnetlink socket: {0}")]
    Socket(std::io::Error),
    /// A request failed; `what` says which.
    #[error("{what}: {cause}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's (or netlink library's) answer.
        cause: rtnetlink::Error,
    },
}

/// Result with an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, rtnetlink::Error> {
    fn context(self, what: &str) -> Result<T> {
        self.with_context(|| what.to_string())
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|cause| Error::Netlink { what: what(), cause })
    }
}

/// The routing table remote CIDRs go into on a gateway node.
pub const TABLE: u32 = 150;
/// Priority of the rule that sends every lookup through [`TABLE`] first.
pub const RULE_PRIORITY: u32 = 150;
/// Route protocol marking subsea's (Submariner's) routes.
pub const PROTO: u8 = 4;

/// A route subsea wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination.
    pub dst: Cidr,
    /// Table.
    pub table: u32,
    /// Output interface index.
    pub dev: Option<u32>,
    /// Next hop.
    pub via: Option<IpAddr>,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// Path MTU for the route (room for the tunnel's overhead).
    pub mtu: Option<u32>,
}

/// A connection to the kernel's routing netlink, in the current network namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Connects; needs a Tokio runtime.
    pub fn connect() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(Error::Socket)?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Index of the named link, if it exists.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        match links.try_next().await {
            Ok(Some(l)) => Ok(Some(l.header.index)),
            Ok(None) => Ok(None),
            // The kernel answers "no such device" as an error.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None),
            Err(cause) => Err(Error::Netlink {
                what: format!("cannot look up link {name:?}"),
                cause,
            }),
        }
    }

    /// Every address on every link: `(link index, address, prefix length)`.
    pub async fn addresses(&self) -> Result<Vec<(u32, IpAddr, u8)>> {
        let mut out = Vec::new();
        let mut s = self.handle.address().get().execute();
        while let Some(msg) = s.try_next().await.context("cannot list addresses")? {
            for a in &msg.attributes {
                if let AddressAttribute::Address(ip) = a {
                    out.push((msg.header.index, *ip, msg.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    fn message(r: &Route) -> RouteMessage {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(r.dst.addr, r.dst.prefix)
            .unwrap_or_default()
            .table_id(r.table)
            .protocol(RouteProtocol::Other(PROTO));
        if let Some(dev) = r.dev {
            b = b.output_interface(dev);
        }
        if let Some(src) = r.src {
            b = b.pref_source(src).unwrap_or_default();
        }
        if let Some(via) = r.via {
            b = b.gateway(via).unwrap_or_default();
        }
        let mut msg = b.build();
        if let Some(mtu) = r.mtu {
            msg.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        msg
    }

    /// Adds or replaces a route.
    pub async fn replace_route(&self, r: &Route) -> Result<()> {
        self.handle
            .route()
            .add(Self::message(r))
            .replace()
            .execute()
            .await
            .with_context(|| format!("cannot program route {} in table {}", r.dst, r.table))
    }

    /// Deletes a route; a route already gone is fine.
    pub async fn delete_route(&self, dst: Cidr, table: u32) -> Result<()> {
        let msg = Self::message(&Route {
            dst,
            table,
            dev: None,
            via: None,
            src: None,
            mtu: None,
        });
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -3 => Ok(()),
            Err(cause) => Err(Error::Netlink {
                what: format!("cannot delete route {dst} from table {table}"),
                cause,
            }),
        }
    }

    /// Destinations of our (proto 4) routes in `table`.
    pub async fn routes(&self, table: u32) -> Result<Vec<Cidr>> {
        let mut out = Vec::new();
        for v6 in [false, true] {
            let filter = if v6 {
                RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                    .table_id(table)
                    .build()
            } else {
                RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                    .table_id(table)
                    .build()
            };
            let mut s = self.handle.route().get(filter).execute();
            while let Some(msg) = s.try_next().await.context("cannot list routes")? {
                if msg.header.protocol != RouteProtocol::Other(PROTO) || route_table(&msg) != table {
                    continue;
                }
                let prefix = msg.header.destination_prefix_length;
                for a in &msg.attributes {
                    let addr = match a {
                        RouteAttribute::Destination(RouteAddress::Inet(ip)) => IpAddr::V4(*ip),
                        RouteAttribute::Destination(RouteAddress::Inet6(ip)) => IpAddr::V6(*ip),
                        _ => continue,
                    };
                    if let Ok(c) = Cidr::parse(&format!("{addr}/{prefix}")) {
                        out.push(c);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn rule_exists(&self, v6: bool, table: u32, priority: u32) -> Result<bool> {
        let mut s = self
            .handle
            .rule()
            .get(if v6 { IpVersion::V6 } else { IpVersion::V4 })
            .execute();
        while let Some(msg) = s.try_next().await.context("cannot list rules")? {
            let has = |want: &RuleAttribute| msg.attributes.iter().any(|a| a == want);
            if has(&RuleAttribute::Table(table)) && has(&RuleAttribute::Priority(priority)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Makes sure `from all lookup <table>` exists at `priority`, for IPv4 and IPv6.
    pub async fn ensure_rule(&self, table: u32, priority: u32) -> Result<()> {
        for v6 in [false, true] {
            if self.rule_exists(v6, table, priority).await? {
                continue;
            }
            let add = self
                .handle
                .rule()
                .add()
                .table_id(table)
                .priority(priority)
                .action(RuleAction::ToTable);
            let r = if v6 {
                add.v6().execute().await
            } else {
                add.v4().execute().await
            };
            r.with_context(|| format!("cannot add the rule to table {table} at priority {priority}"))?;
        }
        Ok(())
    }

    /// Removes that rule.
    pub async fn delete_rule(&self, table: u32, priority: u32) -> Result<()> {
        for v6 in [false, true] {
            let mut s = self
                .handle
                .rule()
                .get(if v6 { IpVersion::V6 } else { IpVersion::V4 })
                .execute();
            let mut doomed = Vec::new();
            while let Some(msg) = s.try_next().await.context("cannot list rules")? {
                let has = |want: &RuleAttribute| msg.attributes.iter().any(|a| a == want);
                if has(&RuleAttribute::Table(table)) && has(&RuleAttribute::Priority(priority)) {
                    doomed.push(msg);
                }
            }
            for msg in doomed {
                self.handle
                    .rule()
                    .del(msg)
                    .execute()
                    .await
                    .context("cannot delete rule")?;
            }
        }
        Ok(())
    }
}

fn route_table(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table))
}
