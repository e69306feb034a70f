//! The gateway's data path: a TUN device, UDP sockets and the WireGuard peer table, wired
//! together by two packet threads and a timer thread.
//!
//! Designed after `../shared/reference/wireguard.md` §6: the TUN device runs with offloads
//! (`IFF_VNET_HDR`), so one read returns a TCP super-packet that tun-rs splits into segments and
//! one write takes a coalesced super-packet; every buffer is allocated once at start; the peer
//! table lock is taken once per batch per direction; nothing is logged per packet. The decisions
//! (which peer, which key, which source is allowed) live in `subsea-wg`; this crate only moves
//! bytes.

mod rx;
mod tx;
pub mod uapi;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use subsea_wg::{Action, Device, PeerConfig, PeerStats};
use tun_rs::DeviceBuilder;

/// WireGuard's overhead on an IPv4 underlay (IPv4 20 + UDP 8 + WG 32).
pub const OVERHEAD: u16 = 60;
/// The TUN MTU Submariner's WireGuard driver leaves room for on a 1500-byte underlay... and
/// what wireguard-go uses by default.
pub const DEFAULT_MTU: u16 = 1420;

/// Largest datagram or packet handled: a WireGuard message around a full MTU packet.
const SLOT: usize = 2048;
/// Segments per batch (tun-rs's ideal batch size).
const BATCH: usize = tun_rs::IDEAL_BATCH_SIZE;
/// Socket buffer sizes asked for; the kernel caps them at `net.core.[rw]mem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// What to build.
#[derive(Clone, Debug)]
pub struct Config {
    /// TUN device name (`submariner`).
    pub name: String,
    /// TUN MTU.
    pub mtu: u16,
    /// UDP listen port.
    pub port: u16,
    /// Our private key.
    pub private_key: subsea_wg::keys::Key,
    /// Pre-shared key.
    pub psk: Option<subsea_wg::keys::Key>,
}

/// A running data path. Threads run for the life of the process: a gateway that loses the
/// lease keeps its tunnels (as Submariner does) and only withdraws routes.
pub struct Datapath {
    device: Arc<Mutex<Device>>,
    port: u16,
}

fn lock(device: &Mutex<Device>) -> MutexGuard<'_, Device> {
    // A panicking packet thread cannot leave the table half-updated in a way that matters more
    // than stopping the data plane would.
    device.lock().unwrap_or_else(|e| e.into_inner())
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// The two UDP sockets; a datagram goes out on the one of its address family.
#[derive(Clone)]
pub(crate) struct Sockets {
    v4: Arc<UdpSocket>,
    v6: Option<Arc<UdpSocket>>,
}

impl Sockets {
    pub(crate) fn send(&self, to: SocketAddr, datagram: &[u8]) {
        let sock = match to {
            SocketAddr::V4(_) => Some(&self.v4),
            SocketAddr::V6(_) => self.v6.as_ref(),
        };
        // Loss is WireGuard's to handle (retries, TCP above); no per-packet logging.
        if let Some(s) = sock {
            let _ = s.send_to(datagram, to);
        }
    }
}

impl Datapath {
    /// Creates the TUN device and sockets and starts the threads.
    pub fn start(cfg: &Config) -> io::Result<Self> {
        let tun = DeviceBuilder::new()
            .name(&cfg.name)
            .mtu(cfg.mtu)
            .with(|b| {
                b.offload(true).tx_queue_len(1000);
            })
            .build_sync()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create TUN device {:?}: {e} (needs root or CAP_NET_ADMIN and /dev/net/tun)",
                        cfg.name
                    ),
                )
            })?;
        let tun = Arc::new(tun);
        let v4 = udp_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, cfg.port)))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on UDP port {}: {e}", cfg.port)))?;
        let port = v4.local_addr()?.port();
        // IPv6 underlay is optional: a node without IPv6 still runs IPv4 tunnels.
        let v6 = udp_socket(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).ok();
        let sockets = Sockets {
            v4: Arc::new(v4),
            v6: v6.map(Arc::new),
        };
        let device = Arc::new(Mutex::new(Device::new(cfg.private_key, cfg.psk)));

        spawn("wg-tx", {
            let (tun, device, sockets) = (tun.clone(), device.clone(), sockets.clone());
            move || tx::run(&tun, &device, &sockets)
        })?;
        for sock in std::iter::once(&sockets.v4).chain(sockets.v6.as_ref()) {
            let (tun, device, sockets, sock) = (tun.clone(), device.clone(), sockets.clone(), sock.clone());
            spawn("wg-rx", move || rx::run(&tun, &sock, &device, &sockets))?;
        }
        spawn("wg-timers", {
            let (device, sockets) = (device.clone(), sockets.clone());
            move || timers(&device, &sockets)
        })?;
        Ok(Self { device, port })
    }

    /// The UDP port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Our public key.
    pub fn public_key(&self) -> subsea_wg::keys::Key {
        lock(&self.device).public_key()
    }

    /// Replaces the peer set (sessions of unchanged keys are kept).
    pub fn set_peers(&self, peers: &[PeerConfig]) {
        lock(&self.device).set_peers(peers);
    }

    /// Counters of every peer.
    pub fn stats(&self) -> Vec<PeerStats> {
        lock(&self.device).stats()
    }

    /// The device state as the UAPI `get` operation reports it.
    pub fn uapi_get(&self) -> String {
        let d = lock(&self.device);
        uapi::format_get(
            &d.private_key(),
            self.port,
            d.psk(),
            &d.stats(),
            std::time::SystemTime::now(),
        )
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new().name(name.into()).spawn(f).map(|_| ())
}

/// WireGuard's timers (handshake retries, keepalives, session expiry) at boringtun's pace.
fn timers(device: &Mutex<Device>, sockets: &Sockets) {
    let mut out = vec![0u8; SLOT];
    loop {
        thread::sleep(Duration::from_millis(250));
        lock(device).tick(&mut out, &mut |a| {
            if let Action::Network(to, d) = a {
                sockets.send(to, d);
            }
        });
    }
}
