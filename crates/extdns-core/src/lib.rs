//! The external DNS publisher's decisions as pure functions over plain data (`subsea
//! dns-publisher` in `subsea-extdns` is the I/O around them):
//!
//! - [`health`]: which clusters count as reachable, from the gateways' heartbeats on the broker;
//! - [`source`]: the records every exported service should have (one name with the addresses
//!   of every reachable exporting cluster, and `<cluster>.<name>` per cluster);
//! - [`registry`]: ExternalDNS's TXT registry, so a zone it manages is shared safely;
//! - [`plan`]: the changes that bring the zone in line, never touching what another owner holds;
//! - [`key`]: the BIND key file that carries the TSIG secret.
#![deny(missing_docs)]

pub mod health;
pub mod key;
pub mod name;
pub mod plan;
pub mod registry;
pub mod source;

use std::net::IpAddr;

/// The address record types published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RType {
    /// IPv4.
    A,
    /// IPv6.
    Aaaa,
}

impl RType {
    /// The type of an address's record.
    pub fn of(ip: &IpAddr) -> Self {
        if ip.is_ipv4() { Self::A } else { Self::Aaaa }
    }

    /// As DNS writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
        }
    }

    /// From DNS's word for it.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "A" => Some(Self::A),
            "AAAA" => Some(Self::Aaaa),
            _ => None,
        }
    }
}
