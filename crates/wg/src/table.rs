//! The peer table: routing, handshake matching, source checks, timers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use subsea_cidr::Cidr;

use crate::keys::Key;

/// Handshakes per second accepted before cookies are demanded (boringtun's default).
const HANDSHAKE_RATE_LIMIT: u64 = 100;

/// One remote peer (a remote cluster's active gateway).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's public key.
    pub public_key: Key,
    /// Where to send to, until the peer is heard from elsewhere.
    pub endpoint: Option<SocketAddr>,
    /// Inner addresses routed to (and accepted from) this peer.
    pub allowed_ips: Vec<Cidr>,
    /// Persistent keepalive, seconds.
    pub keepalive: Option<u16>,
}

/// What the caller must do with a result.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send this datagram to this address.
    Network(SocketAddr, &'a [u8]),
    /// Write this packet to the TUN device.
    Tunnel(&'a [u8]),
}

/// Counters of one peer, for `wg show` and the Gateway status.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerStats {
    /// The peer's public key.
    pub public_key: Key,
    /// Current endpoint.
    pub endpoint: Option<SocketAddr>,
    /// Time since the last completed handshake.
    pub last_handshake: Option<Duration>,
    /// Bytes sent.
    pub tx_bytes: usize,
    /// Bytes received.
    pub rx_bytes: usize,
    /// Packets dropped because their inner source was not an allowed IP.
    pub spoofed: u64,
    /// Configured AllowedIPs.
    pub allowed_ips: Vec<Cidr>,
    /// Configured persistent keepalive, seconds.
    pub keepalive: Option<u16>,
}

struct Peer {
    config: PeerConfig,
    tunn: Tunn,
    endpoint: Option<SocketAddr>,
    spoofed: u64,
}

/// The local WireGuard device: our key, the PSK and the peers.
pub struct Device {
    private: StaticSecret,
    public: PublicKey,
    psk: Option<Key>,
    /// Slot index = Tunn index, so a receiver index maps back to its peer.
    peers: Vec<Option<Peer>>,
    by_key: HashMap<Key, usize>,
    rate_limiter: Arc<RateLimiter>,
    cookies_sent: u64,
}

impl Device {
    /// A device with our private key and the shared PSK.
    pub fn new(private: Key, psk: Option<Key>) -> Self {
        let private = StaticSecret::from(private);
        let public = PublicKey::from(&private);
        let rate_limiter = Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT));
        Self {
            private,
            public,
            psk,
            peers: Vec::new(),
            by_key: HashMap::new(),
            rate_limiter,
            cookies_sent: 0,
        }
    }

    /// Cookie replies sent to initiations that arrived under load (a handshake flood).
    pub fn cookies_sent(&self) -> u64 {
        self.cookies_sent
    }

    /// Our private key, for the UAPI `get` answer (which, like the kernel's, includes it).
    pub fn private_key(&self) -> Key {
        self.private.to_bytes()
    }

    /// The pre-shared key, if any.
    pub fn psk(&self) -> Option<Key> {
        self.psk
    }

    /// Our public key.
    pub fn public_key(&self) -> Key {
        self.public.to_bytes()
    }

    /// Makes the peer set equal to `configs`: peers whose key stays keep their sessions.
    pub fn set_peers(&mut self, configs: &[PeerConfig]) {
        let wanted: HashMap<Key, &PeerConfig> = configs.iter().map(|c| (c.public_key, c)).collect();
        for slot in self.peers.iter_mut() {
            if slot
                .as_ref()
                .is_some_and(|p| !wanted.contains_key(&p.config.public_key))
            {
                if let Some(p) = slot.take() {
                    self.by_key.remove(&p.config.public_key);
                }
            }
        }
        for cfg in configs {
            match self
                .by_key
                .get(&cfg.public_key)
                .and_then(|i| self.peers[*i].as_mut())
            {
                Some(p) => {
                    if p.config.endpoint != cfg.endpoint {
                        p.endpoint = cfg.endpoint;
                    }
                    p.config = cfg.clone();
                }
                None => {
                    let idx = self
                        .peers
                        .iter()
                        .position(Option::is_none)
                        .unwrap_or(self.peers.len());
                    let tunn = Tunn::new(
                        self.private.clone(),
                        PublicKey::from(cfg.public_key),
                        self.psk,
                        cfg.keepalive,
                        idx as u32,
                        Some(self.rate_limiter.clone()),
                    );
                    let peer = Peer {
                        config: cfg.clone(),
                        tunn,
                        endpoint: cfg.endpoint,
                        spoofed: 0,
                    };
                    if idx == self.peers.len() {
                        self.peers.push(Some(peer));
                    } else {
                        self.peers[idx] = Some(peer);
                    }
                    self.by_key.insert(cfg.public_key, idx);
                }
            }
        }
    }

    /// The peer an inner destination routes to: the longest AllowedIPs prefix holding it.
    pub fn route(&self, dst: IpAddr) -> Option<usize> {
        self.peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
            .flat_map(|(i, p)| {
                p.config
                    .allowed_ips
                    .iter()
                    .filter(move |c| c.contains(dst))
                    .map(move |c| (c.prefix, i))
            })
            .max_by_key(|(prefix, _)| *prefix)
            .map(|(_, i)| i)
    }

    /// Encrypts a packet read from the TUN device (or starts a handshake and queues it).
    pub fn encapsulate<'a>(&mut self, packet: &[u8], out: &'a mut [u8]) -> Option<Action<'a>> {
        let idx = self.route(Tunn::dst_address(packet)?)?;
        let peer = self.peers[idx].as_mut()?;
        let endpoint = peer.endpoint?;
        match peer.tunn.encapsulate(packet, out) {
            TunnResult::WriteToNetwork(d) => Some(Action::Network(endpoint, d)),
            _ => None,
        }
    }

    fn peer_for(&self, datagram: &[u8]) -> Option<usize> {
        match Tunn::parse_incoming_packet(datagram).ok()? {
            Packet::HandshakeInit(init) => {
                let half = parse_handshake_anon(&self.private, &self.public, &init).ok()?;
                self.by_key.get(&half.peer_static_public).copied()
            }
            Packet::HandshakeResponse(r) => Some((r.receiver_idx >> 8) as usize),
            Packet::PacketCookieReply(c) => Some((c.receiver_idx >> 8) as usize),
            Packet::PacketData(d) => Some((d.receiver_idx >> 8) as usize),
        }
    }

    /// Handles a datagram from `from`, emitting everything it produces (handshake replies,
    /// queued packets, decrypted packets). Invalid or unknown datagrams produce nothing.
    pub fn decapsulate(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
        emit: &mut dyn FnMut(Action<'_>),
    ) {
        // An initiation costs an X25519 operation before its peer is even known: check its MAC1
        // and, under a flood, demand a cookie first, as WireGuard's DoS defence prescribes.
        // Everything else is found by index, at no cost.
        if matches!(
            Tunn::parse_incoming_packet(datagram),
            Ok(Packet::HandshakeInit(_))
        ) {
            match self.rate_limiter.verify_packet(Some(from.ip()), datagram, out) {
                Ok(_) => {}
                Err(TunnResult::WriteToNetwork(cookie)) => {
                    self.cookies_sent += 1;
                    emit(Action::Network(from, cookie));
                    return;
                }
                Err(_) => return,
            }
        }
        let Some(idx) = self.peer_for(datagram) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let mut input = datagram;
        loop {
            match peer.tunn.decapsulate(Some(from.ip()), input, out) {
                TunnResult::WriteToNetwork(d) => {
                    peer.endpoint = Some(from);
                    emit(Action::Network(from, d));
                    // Repeat with an empty datagram to flush packets queued behind the handshake.
                    input = &[];
                }
                TunnResult::WriteToTunnelV4(p, src) => {
                    peer.endpoint = Some(from);
                    Self::deliver(peer, IpAddr::V4(src), p, emit);
                    return;
                }
                TunnResult::WriteToTunnelV6(p, src) => {
                    peer.endpoint = Some(from);
                    Self::deliver(peer, IpAddr::V6(src), p, emit);
                    return;
                }
                TunnResult::Done | TunnResult::Err(_) => return,
            }
        }
    }

    fn deliver(peer: &mut Peer, src: IpAddr, packet: &[u8], emit: &mut dyn FnMut(Action<'_>)) {
        // Keepalives decrypt to an empty packet: nothing to deliver.
        if packet.is_empty() {
            return;
        }
        if peer.config.allowed_ips.iter().any(|c| c.contains(src)) {
            emit(Action::Tunnel(packet));
        } else {
            peer.spoofed += 1;
        }
    }

    /// Runs every peer's timers (handshake retries, keepalives, expiry); call about every 250 ms.
    pub fn tick(&mut self, out: &mut [u8], emit: &mut dyn FnMut(Action<'_>)) {
        // The handshake budget refills once per second (the limiter checks the time itself).
        self.rate_limiter.reset_count();
        for peer in self.peers.iter_mut().flatten() {
            if let (TunnResult::WriteToNetwork(d), Some(ep)) = (peer.tunn.update_timers(out), peer.endpoint) {
                emit(Action::Network(ep, d));
            }
        }
    }

    /// Counters of every peer.
    pub fn stats(&self) -> Vec<PeerStats> {
        self.peers
            .iter()
            .flatten()
            .map(|p| {
                let (last_handshake, tx_bytes, rx_bytes, _, _) = p.tunn.stats();
                PeerStats {
                    public_key: p.config.public_key,
                    endpoint: p.endpoint,
                    last_handshake,
                    tx_bytes,
                    rx_bytes,
                    spoofed: p.spoofed,
                    allowed_ips: p.config.allowed_ips.clone(),
                    keepalive: p.config.keepalive,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
