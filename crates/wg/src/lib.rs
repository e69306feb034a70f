//! The WireGuard peer table of a gateway, without any I/O.
//!
//! One `boringtun::noise::Tunn` per remote cluster. Packets from the TUN device are routed to a
//! peer by AllowedIPs (longest prefix); datagrams from the network are matched to a peer by the
//! handshake's static key or the receiver index; decrypted packets whose inner source is not in
//! the sending peer's AllowedIPs are dropped (WireGuard's cryptokey routing). The caller owns
//! sockets, the TUN device and time; this crate only turns inputs into [`Action`]s.
#![deny(missing_docs)]

pub mod keys;
mod table;

pub use table::{Action, Device, PeerConfig, PeerStats};
