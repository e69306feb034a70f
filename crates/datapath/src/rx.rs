//! UDP → TUN: receive a batch of datagrams (GRO-coalesced runs included), decrypt each
//! straight into a TUN buffer, and write the batch to the TUN device, where tun-rs coalesces
//! segments of one TCP flow back into super-packets.

use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::sync::Mutex;

use quinn_udp::{RecvMeta, UdpSocketState};
use subsea_wg::{Action, Device};
use tokio::io::Interest;
use tun_rs::{GROTable, SyncDevice, VIRTIO_NET_HDR_LEN};

use crate::tx::{EBADFD, Registered};
use crate::{BATCH, SLOT, Sockets, lock};

/// Receive buffers: quinn-udp takes up to 32 per call. Each must hold a whole GRO run, up to
/// `gro_segments` (64) datagrams of a full MTU: a shorter buffer truncates the run and loses
/// datagrams silently.
const RECV_BUFS: usize = 32;

/// An IPv4 peer seen through an IPv6 socket is the IPv4 peer.
fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => addr,
        },
        v4 => v4,
    }
}

pub(crate) fn run(tun: &SyncDevice, sock: &std::net::UdpSocket, device: &Mutex<Device>, sockets: &Sockets) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "data path: cannot start a receive thread");
            return;
        }
    };
    rt.block_on(async {
        let (sock, state) = match register(sock) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "data path: cannot register a UDP socket");
                return;
            }
        };
        let replies = match Registered::new(sockets) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "data path: cannot register UDP sockets");
                return;
            }
        };
        let recv_buf = state.gro_segments().max(1) * SLOT;
        let mut storage = vec![vec![0u8; recv_buf]; RECV_BUFS];
        let mut meta = vec![RecvMeta::default(); RECV_BUFS];
        // TUN write buffers: a virtio header's room in front of each packet; tun-rs grows the
        // first buffer of a flow when it coalesces, so capacity settles after warm-up.
        let mut out: Vec<Vec<u8>> = (0..BATCH)
            .map(|_| Vec::with_capacity(65535 + VIRTIO_NET_HDR_LEN))
            .collect();
        let mut gro = GROTable::default();
        loop {
            let n = {
                let mut slices: Vec<IoSliceMut<'_>> =
                    storage.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                match sock
                    .async_io(Interest::READABLE, || {
                        state.recv((&sock).into(), &mut slices, &mut meta)
                    })
                    .await
                {
                    Ok(n) => n,
                    Err(_) => continue,
                }
            };
            let mut used = 0;
            let mut dev = lock(device);
            for (buf, m) in storage.iter().zip(&meta).take(n) {
                let from = unmap(m.addr);
                for datagram in buf[..m.len].chunks(m.stride.max(1)) {
                    if used == out.len() {
                        if write(tun, &mut gro, &mut out[..used]) {
                            return;
                        }
                        used = 0;
                    }
                    let slot = &mut out[used];
                    slot.resize(VIRTIO_NET_HDR_LEN + SLOT, 0);
                    let mut delivered = None;
                    dev.decapsulate(
                        from,
                        datagram,
                        &mut slot[VIRTIO_NET_HDR_LEN..],
                        &mut |a| match a {
                            Action::Tunnel(p) => delivered = Some(p.len()),
                            // Handshake replies and packets queued behind a handshake: rare.
                            Action::Network(to, d) => replies.send_now(to, d),
                        },
                    );
                    if let Some(len) = delivered {
                        slot.truncate(VIRTIO_NET_HDR_LEN + len);
                        used += 1;
                    }
                }
            }
            drop(dev);
            if used > 0 && write(tun, &mut gro, &mut out[..used]) {
                return;
            }
        }
    });
}

/// Writes a batch; true when the TUN device is gone.
fn write(tun: &SyncDevice, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> bool {
    matches!(tun.send_multiple(gro, bufs, VIRTIO_NET_HDR_LEN), Err(e) if e.raw_os_error() == Some(EBADFD))
}

fn register(sock: &std::net::UdpSocket) -> std::io::Result<(tokio::net::UdpSocket, UdpSocketState)> {
    let s = sock.try_clone()?;
    let state = UdpSocketState::new((&s).into())?;
    Ok((tokio::net::UdpSocket::from_std(s)?, state))
}
