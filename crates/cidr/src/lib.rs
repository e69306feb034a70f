//! CIDR blocks (IPv4 and IPv6): parsing, containment, overlap and address allocation. No I/O.
#![deny(missing_docs)]

use std::net::IpAddr;

/// Why a text is not a CIDR block; the message quotes the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// No `/`.
    #[error("{0:?} is not a CIDR (expected ADDRESS/PREFIX)")]
    NoPrefix(String),
    /// The address part is not an IP address.
    #[error("{0:?} is not a CIDR: {1:?} is not an IP address")]
    BadAddress(String, String),
    /// The prefix is not a number.
    #[error("{0:?} is not a CIDR: bad prefix length")]
    BadPrefix(String),
    /// The prefix is longer than the address.
    #[error("{0:?} is not a CIDR: prefix length over {1}")]
    PrefixTooLong(String, u32),
}

/// A parsed CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// Network address (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

fn to_bits(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn full(width: u32) -> u128 {
    if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    }
}

fn mask(width: u32, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - u32::from(prefix))) >> (128 - width)
    }
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x::/n`.
    pub fn parse(s: &str) -> Result<Self, CidrError> {
        let (ip, prefix) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| CidrError::NoPrefix(s.into()))?;
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| CidrError::BadAddress(s.into(), ip.into()))?;
        let prefix: u8 = prefix.parse().map_err(|_| CidrError::BadPrefix(s.into()))?;
        let (bits, width) = to_bits(addr);
        if u32::from(prefix) > width {
            return Err(CidrError::PrefixTooLong(s.into(), width));
        }
        let net = bits & mask(width, prefix);
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(net as u32)),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(net)),
        };
        Ok(Self { addr, prefix })
    }

    /// First and last address as numbers, and the family width.
    fn range(&self) -> (u128, u128, u32) {
        let (bits, width) = to_bits(self.addr);
        let m = mask(width, self.prefix);
        let lo = bits & m;
        (lo, lo | (!m & full(width)), width)
    }

    /// Whether two blocks share any address.
    pub fn overlaps(&self, other: &Self) -> bool {
        let (a0, a1, aw) = self.range();
        let (b0, b1, bw) = other.range();
        aw == bw && a0 <= b1 && b0 <= a1
    }

    /// The `n`-th address of the block, if the block has that many.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let (lo, hi, w) = self.range();
        let v = lo.checked_add(n).filter(|v| *v <= hi)?;
        Some(if w == 32 {
            IpAddr::V4(std::net::Ipv4Addr::from(v as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(v))
        })
    }

    /// Number of addresses in the block (saturating).
    pub fn size(&self) -> u128 {
        let (lo, hi, _) = self.range();
        (hi - lo).saturating_add(1)
    }

    /// Whether the block holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (lo, hi, w) = self.range();
        let (b, bw) = to_bits(ip);
        w == bw && lo <= b && b <= hi
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Every pair `(mine, theirs)` of overlapping blocks.
pub fn overlaps<'a>(mine: &'a [Cidr], theirs: &'a [Cidr]) -> Vec<(&'a Cidr, &'a Cidr)> {
    mine.iter()
        .flat_map(|a| theirs.iter().filter(move |b| a.overlaps(b)).map(move |b| (a, b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            Cidr::parse("10.130.1.7/16").expect("v4").to_string(),
            "10.130.0.0/16"
        );
        assert_eq!(
            Cidr::parse("fd00:10:1::5/64").expect("v6").to_string(),
            "fd00:10:1::/64"
        );
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("x/8").is_err());
    }

    #[test]
    fn overlap_rules() {
        let c = |s| Cidr::parse(s).expect("cidr");
        assert!(c("10.0.0.0/8").overlaps(&c("10.130.0.0/16")));
        assert!(!c("10.130.0.0/16").overlaps(&c("10.131.0.0/16")));
        assert!(
            !c("10.0.0.0/8").overlaps(&c("fd00::/8")),
            "families never overlap"
        );
        assert!(c("0.0.0.0/0").overlaps(&c("1.2.3.4/32")));
        assert!(c("::/0").overlaps(&c("fd00::1/128")));
        assert!(c("100.66.0.0/16").contains("100.66.3.4".parse().expect("ip")));
        assert!(!c("100.66.0.0/16").contains("100.67.0.1".parse().expect("ip")));
        assert_eq!(
            c("100.66.0.0/16").nth(10),
            Some("100.66.0.10".parse().expect("ip"))
        );
        assert_eq!(c("10.0.0.0/30").nth(4), None);
        assert_eq!(c("10.0.0.0/30").size(), 4);
        let mine = [c("100.66.0.0/16"), c("10.130.0.0/16")];
        let theirs = [c("10.130.128.0/17")];
        assert_eq!(overlaps(&mine, &theirs).len(), 1);
    }
}
