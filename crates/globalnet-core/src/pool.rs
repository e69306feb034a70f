//! The pool of global IPs of one cluster: its GlobalCIDR without the network and broadcast
//! addresses. Allocation is first-fit over what every object already holds, so the state is the
//! objects' statuses in the API, and a restart rebuilds the same pool.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use subsea_cidr::Cidr;

/// Free and used addresses of a GlobalCIDR.
#[derive(Clone, Debug)]
pub struct Pool {
    first: u32,
    last: u32,
    used: BTreeSet<u32>,
}

/// Why a request could not be met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exhausted {
    /// Addresses asked for.
    pub wanted: u32,
    /// Addresses free (possibly not contiguous).
    pub free: u32,
}

impl Pool {
    /// The pool of `cidr` (IPv4); `None` for IPv6 or a block too small to hold any address.
    pub fn new(cidr: &Cidr) -> Option<Self> {
        let IpAddr::V4(base) = cidr.addr else {
            return None;
        };
        let size = u32::try_from(cidr.size()).ok().filter(|s| *s >= 4)?;
        let base = u32::from(base);
        Some(Self {
            first: base + 1,
            last: base + size - 2,
            used: BTreeSet::new(),
        })
    }

    /// Whether `ip` is one of the pool's addresses.
    pub fn holds(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip))
    }

    /// Whether `ip` is already taken.
    pub fn is_used(&self, ip: Ipv4Addr) -> bool {
        self.used.contains(&u32::from(ip))
    }

    /// Marks `ip` as used; false when it is outside the pool or already used.
    pub fn claim(&mut self, ip: Ipv4Addr) -> bool {
        self.holds(ip) && self.used.insert(u32::from(ip))
    }

    /// How many addresses are free.
    pub fn free(&self) -> u32 {
        (self.last - self.first + 1) - self.used.len() as u32
    }

    /// Takes the first run of `n` contiguous free addresses.
    pub fn take(&mut self, n: u32) -> Result<Vec<Ipv4Addr>, Exhausted> {
        if n == 0 {
            return Ok(vec![]);
        }
        let mut start = self.first;
        // The used set is sorted: skip past each used address that falls inside the candidate run.
        while u64::from(start) + u64::from(n) - 1 <= u64::from(self.last) {
            let end = start + (n - 1);
            match self.used.range(start..=end).next_back() {
                Some(&u) => start = u + 1,
                None => {
                    self.used.extend(start..=end);
                    return Ok((start..=end).map(Ipv4Addr::from).collect());
                }
            }
        }
        Err(Exhausted {
            wanted: n,
            free: self.free(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn skips_network_and_broadcast_and_never_hands_out_twice() {
        let mut p = Pool::new(&Cidr::parse("242.0.0.0/29").expect("cidr")).expect("pool");
        assert_eq!(p.free(), 6);
        assert!(!p.holds(ip("242.0.0.0")) && !p.holds(ip("242.0.0.7")));
        assert!(p.claim(ip("242.0.0.2")));
        assert!(
            !p.claim(ip("242.0.0.2")),
            "a claimed address cannot be claimed again"
        );
        assert_eq!(p.take(1).expect("one"), vec![ip("242.0.0.1")]);
        // 242.0.0.2 is used, so a run of 3 starts after it.
        assert_eq!(
            p.take(3).expect("three"),
            vec![ip("242.0.0.3"), ip("242.0.0.4"), ip("242.0.0.5")]
        );
        assert_eq!(p.take(2), Err(Exhausted { wanted: 2, free: 1 }));
        assert_eq!(p.take(1).expect("last"), vec![ip("242.0.0.6")]);
        assert_eq!(p.take(1), Err(Exhausted { wanted: 1, free: 0 }));
        assert_eq!(p.take(0), Ok(vec![]));
    }

    #[test]
    fn a_fragmented_pool_refuses_a_run_it_cannot_fit() {
        let mut p = Pool::new(&Cidr::parse("242.0.0.0/29").expect("cidr")).expect("pool");
        for a in ["242.0.0.2", "242.0.0.4", "242.0.0.6"] {
            assert!(p.claim(ip(a)));
        }
        assert_eq!(p.take(2), Err(Exhausted { wanted: 2, free: 3 }));
        assert!(Pool::new(&Cidr::parse("fd00::/64").expect("v6")).is_none());
        assert!(Pool::new(&Cidr::parse("242.0.0.0/31").expect("tiny")).is_none());
    }
}
