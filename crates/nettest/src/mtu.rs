//! A path-MTU probe with the Don't-Fragment bit: UDP datagrams of growing size to an echo
//! server, never fragmented, so the largest one echoed is the path MTU. A size that the kernel
//! refuses after an ICMP "fragmentation needed" is a healthy limit (TCP adapts to it); a size
//! that just vanishes is an MTU black hole, the classic cause of connections that open and then
//! hang on the first full-size packet.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::error::{IoContext, Result};
use serde::{Deserialize, Serialize};

/// IPv4 + UDP headers; IPv6 + UDP is 48.
pub fn overhead(addr: &SocketAddr) -> usize {
    if addr.is_ipv6() { 48 } else { 28 }
}

/// What one size did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Came back.
    Echoed,
    /// Refused by the kernel: larger than the path MTU it knows (from the route or an ICMP).
    TooBig,
    /// Sent and never answered.
    Lost,
}

/// How the path's limit showed itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit {
    /// Everything up to the largest size tried was echoed.
    None,
    /// Larger packets were refused with ICMP fragmentation-needed (or a smaller route MTU).
    Icmp,
    /// Larger packets disappeared without any ICMP: a black hole.
    Silent,
}

/// The probe's finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Largest IP packet echoed, bytes (0: nothing came back at all).
    pub largest: usize,
    pub limit: Limit,
}

/// Binary search for the largest echoed size in `lo..=hi`, asking `probe` about sizes.
pub fn search(lo: usize, hi: usize, mut probe: impl FnMut(usize) -> Probe) -> Finding {
    if probe(lo) != Probe::Echoed {
        return Finding {
            largest: 0,
            limit: Limit::Silent,
        };
    }
    match probe(hi) {
        Probe::Echoed => {
            return Finding {
                largest: hi,
                limit: Limit::None,
            };
        }
        first => {
            let (mut good, mut bad, mut silent) = (lo, hi, first == Probe::Lost);
            while bad - good > 1 {
                let mid = good + (bad - good) / 2;
                match probe(mid) {
                    Probe::Echoed => good = mid,
                    Probe::TooBig => {
                        bad = mid;
                        silent = false;
                    }
                    Probe::Lost => bad = mid,
                }
            }
            Finding {
                largest: good,
                limit: if silent { Limit::Silent } else { Limit::Icmp },
            }
        }
    }
}

/// Echoes every datagram back to its sender.
pub fn serve(port: u16) -> Result<()> {
    let s = UdpSocket::bind(("::", port))
        .or_else(|_| UdpSocket::bind(("0.0.0.0", port)))
        .doing(|| format!("cannot listen on UDP port {port}"))?;
    let mut buf = vec![0u8; 65536];
    loop {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    }
}

/// Probes the path to the echo server at `addr` for IP packet sizes `lo..=hi`.
pub fn probe(addr: SocketAddr, lo: usize, hi: usize) -> Result<Finding> {
    let local: SocketAddr = if addr.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(local)?;
    s.connect(addr)?;
    if addr.is_ipv6() {
        rustix::net::sockopt::set_ipv6_mtu_discover(&s, rustix::net::sockopt::Ipv6PathMtuDiscovery::DO)
            .map_err(std::io::Error::from)
            .doing(|| "cannot set IPV6_MTU_DISCOVER (path MTU probing needs it)".into())?;
    } else {
        rustix::net::sockopt::set_ip_mtu_discover(&s, rustix::net::sockopt::Ipv4PathMtuDiscovery::DO)
            .map_err(std::io::Error::from)
            .doing(|| "cannot set IP_MTU_DISCOVER (path MTU probing needs it)".into())?;
    }
    s.set_read_timeout(Some(Duration::from_millis(300)))?;
    let head = overhead(&addr);
    let mut seq = 0u32;
    let mut buf = vec![0u8; 65536];
    let try_size = |size: usize, seq: &mut u32, buf: &mut [u8]| -> Probe {
        // Three tries: a loss may be chance, and the first try may be what brings the ICMP
        // that makes the kernel refuse the next.
        for _ in 0..3 {
            *seq += 1;
            let mut payload = vec![0u8; size.saturating_sub(head).max(4)];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            match s.send(&payload) {
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) => {
                    return Probe::TooBig;
                }
                Err(_) => continue,
                Ok(_) => {}
            }
            loop {
                match s.recv(buf) {
                    Ok(n) if n >= 4 && buf[..4] == seq.to_be_bytes() => return Probe::Echoed,
                    Ok(_) => continue,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                    // ICMP errors surface on a connected socket; the next send tells which.
                    Err(_) => break,
                }
            }
        }
        Probe::Lost
    };
    Ok(search(lo, hi, |size| try_size(size, &mut seq, &mut buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path that echoes up to `mtu`, and above it refuses (ICMP) or drops (black hole).
    fn path(mtu: usize, icmp: bool) -> impl FnMut(usize) -> Probe {
        move |size| match size {
            s if s <= mtu => Probe::Echoed,
            _ if icmp => Probe::TooBig,
            _ => Probe::Lost,
        }
    }

    #[test]
    fn finds_the_exact_mtu_and_how_it_is_enforced() {
        assert_eq!(
            search(576, 1500, path(1420, true)),
            Finding {
                largest: 1420,
                limit: Limit::Icmp
            }
        );
        assert_eq!(
            search(576, 1500, path(1372, false)),
            Finding {
                largest: 1372,
                limit: Limit::Silent
            }
        );
        assert_eq!(
            search(576, 1500, path(9000, false)),
            Finding {
                largest: 1500,
                limit: Limit::None
            }
        );
        assert_eq!(search(576, 1500, path(100, true)).largest, 0);
    }

    #[test]
    fn a_local_probe_reaches_the_largest_size() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = server.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = server.recv_from(&mut buf) {
                let _ = server.send_to(&buf[..n], from);
            }
        });
        let f = probe(addr, 576, 1500).expect("probe");
        assert_eq!(
            f,
            Finding {
                largest: 1500,
                limit: Limit::None
            }
        );
    }
}
