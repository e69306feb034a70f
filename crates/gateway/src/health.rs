//! The health checker's I/O: one task per remote endpoint pings its `healthCheckIP` through
//! the tunnel from our CNI address and feeds the pure [`subsea_health::pinger::Pinger`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use subsea_api::submariner::LatencyRtt;
use subsea_health::icmp;
use subsea_health::pinger::{Pinger, Status};

use crate::status::Health;

/// Pinger state by cable name.
pub type Table = Arc<Mutex<BTreeMap<String, (Ipv4Addr, Pinger)>>>;

/// The status loop's view of one pinger.
pub fn view(target: Ipv4Addr, p: &Pinger) -> Health {
    Health {
        failing: p.status() == Status::Error,
        message: format!(
            "Failed to successfully ping the remote endpoint IP {:?}",
            target.to_string()
        ),
        rtt: p.rtt().map(|r| LatencyRtt {
            last: r.last,
            min: r.min,
            average: r.average,
            max: r.max,
            std_dev: r.std_dev,
        }),
    }
}

fn raw_socket(src: Option<Ipv4Addr>) -> std::io::Result<tokio::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    if let Some(src) = src {
        s.bind(&SocketAddr::from((src, 0)).into())?;
    }
    s.set_nonblocking(true)?;
    // A raw socket reads and writes whole datagrams, which is all UdpSocket's API assumes.
    tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(s))
}

/// Pings `target` every `interval` until the task is dropped; calls `changed` when the
/// connection's state (connecting, connected, error) changes, so the Gateway status — which
/// Lighthouse DNS reads to stop answering with an unreachable cluster — follows at once rather
/// than at the next status period.
pub async fn ping(
    table: Table,
    cable: String,
    target: Ipv4Addr,
    src: Option<Ipv4Addr>,
    interval: Duration,
    max_loss: u32,
    changed: impl Fn() + Send + 'static,
) {
    table
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(cable.clone(), (target, Pinger::new(max_loss)));
    let sock = loop {
        match raw_socket(src) {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, %target, "cannot open an ICMP socket for health checks; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    let mut id =
        (std::process::id() as u16) ^ (u16::from(target.octets()[3]) << 8) ^ u16::from(target.octets()[2]);
    let mut answered = true;
    let start = Instant::now();
    let mut seq: u16 = 0;
    let mut buf = [0u8; 1500];
    let mut tick = tokio::time::interval(interval);
    let status = |table: &Table| {
        table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cable)
            .map(|(_, p)| p.status())
    };
    let mut last = status(&table);
    loop {
        tick.tick().await;
        let now = status(&table);
        if now != last {
            last = now;
            changed();
        }
        seq = seq.wrapping_add(1);
        // An unanswered ping moves to a new ICMP id: conntrack keys ICMP flows by id, and a flow
        // first seen before NAT rules existed (a gateway that just became active under
        // Globalnet) would otherwise stay untranslated for as long as the pings keep it alive.
        if !answered {
            id = id.wrapping_add(1);
        }
        answered = false;
        let sent_at = start.elapsed().as_micros() as u64;
        let req = icmp::echo_request(id, seq, sent_at);
        if sock.send_to(&req, SocketAddr::from((target, 0))).await.is_ok() {
            if let Some((_, p)) = table.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&cable) {
                p.sent();
            }
        }
        // Collect replies until the next ping is due.
        let deadline = tokio::time::Instant::now() + interval;
        while let Ok(Ok((n, from))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            let Some(r) = icmp::parse_reply(&buf[..n]) else {
                continue;
            };
            if r.id != id || from.ip() != IpAddr::V4(target) || r.payload > start.elapsed().as_micros() as u64
            {
                continue;
            }
            answered = true;
            let rtt = Duration::from_micros(start.elapsed().as_micros() as u64 - r.payload);
            if let Some((_, p)) = table.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&cable) {
                p.replied(rtt);
            }
        }
    }
}
