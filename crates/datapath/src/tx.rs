//! TUN → UDP: read a super-packet, split it into segments (tun-rs), encrypt each into one
//! contiguous batch buffer, and send runs of equal-size datagrams to one peer as one GSO send.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use quinn_udp::{Transmit, UdpSocketState};
use subsea_wg::{Action, Device};
use tokio::io::Interest;
use tun_rs::SyncDevice;

use crate::{BATCH, SLOT, Sockets, lock};

/// One encrypted datagram in the batch buffer.
#[derive(Clone, Copy)]
struct Sealed {
    to: SocketAddr,
    start: usize,
    len: usize,
}

/// Most payload bytes in one GSO send: a UDP datagram's length field is 16 bits, and the
/// kernel refuses (EMSGSIZE) a super-datagram longer than that, losing the whole batch.
const MAX_GSO_BYTES: usize = 65_000;

/// Runs of datagrams that can leave in one GSO send: same destination, same size, except that
/// the last of a run may be shorter, at most `max_segments` datagrams and [`MAX_GSO_BYTES`].
/// Pure, so the grouping is tested without sockets.
fn runs(sealed: &[Sealed], max_segments: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sealed.len() {
        let first = sealed[i];
        let mut j = i + 1;
        while j < sealed.len()
            && j - i < max_segments
            && sealed[j].start + sealed[j].len - first.start <= MAX_GSO_BYTES
            && sealed[j].to == first.to
            && sealed[j].start == sealed[j - 1].start + sealed[j - 1].len
            && sealed[j - 1].len == first.len
            && sealed[j].len <= first.len
        {
            j += 1;
        }
        out.push((i, j));
        i = j;
    }
    out
}

pub(crate) fn run(tun: &SyncDevice, device: &Mutex<Device>, sockets: &Sockets) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "data path: cannot start the send thread");
            return;
        }
    };
    rt.block_on(async {
        let socks = match Registered::new(sockets) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "data path: cannot register UDP sockets");
                return;
            }
        };
        let mut original = vec![0u8; tun_rs::VIRTIO_NET_HDR_LEN + 65535];
        let mut bufs = vec![vec![0u8; SLOT]; BATCH];
        let mut sizes = vec![0usize; BATCH];
        let mut batch = vec![0u8; BATCH * SLOT];
        let mut sealed: Vec<Sealed> = Vec::with_capacity(BATCH);
        loop {
            let n = match tun.recv_multiple(&mut original, &mut bufs, &mut sizes, 0) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(EBADFD) => return,
                // A malformed super-packet from the kernel is dropped, like any bad packet.
                Err(_) => continue,
            };
            sealed.clear();
            {
                let mut dev = lock(device);
                let mut at = 0;
                for (buf, size) in bufs.iter().zip(&sizes).take(n) {
                    if let Some(Action::Network(to, d)) =
                        dev.encapsulate(&buf[..*size], &mut batch[at..at + SLOT])
                    {
                        let len = d.len();
                        sealed.push(Sealed { to, start: at, len });
                        at += len;
                    }
                }
            }
            for (i, j) in runs(&sealed, socks.max_segments()) {
                let first = sealed[i];
                let last = sealed[j - 1];
                let contents = &batch[first.start..last.start + last.len];
                let segment_size = (j - i > 1).then_some(first.len);
                socks.send(first.to, contents, segment_size).await;
            }
        }
    });
}

/// Linux's "file descriptor in bad state": the TUN device is gone.
pub(crate) const EBADFD: i32 = 77;

/// The sockets registered with this thread's reactor.
pub(crate) struct Registered {
    v4: (tokio::net::UdpSocket, UdpSocketState),
    v6: Option<(tokio::net::UdpSocket, UdpSocketState)>,
}

impl Registered {
    pub(crate) fn new(sockets: &Sockets) -> io::Result<Self> {
        let reg = |s: &std::net::UdpSocket| -> io::Result<_> {
            let s = s.try_clone()?;
            let state = UdpSocketState::new((&s).into())?;
            Ok((tokio::net::UdpSocket::from_std(s)?, state))
        };
        Ok(Self {
            v4: reg(&sockets.v4)?,
            v6: sockets.v6.as_deref().map(reg).transpose()?,
        })
    }

    fn max_segments(&self) -> usize {
        self.v4.1.max_gso_segments()
    }

    fn socket(&self, to: SocketAddr) -> Option<&(tokio::net::UdpSocket, UdpSocketState)> {
        match to {
            SocketAddr::V4(_) => Some(&self.v4),
            SocketAddr::V6(_) => self.v6.as_ref(),
        }
    }

    /// Sends without waiting; a full socket buffer drops the datagram (WireGuard retries).
    pub(crate) fn send_now(&self, to: SocketAddr, contents: &[u8]) {
        if let Some((sock, state)) = self.socket(to) {
            if let Err(e) = state.try_send(sock.into(), &transmit(to, contents, None)) {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    send_failed(&e);
                }
            }
        }
    }

    pub(crate) async fn send(&self, to: SocketAddr, contents: &[u8], segment_size: Option<usize>) {
        let Some((sock, state)) = self.socket(to) else {
            return;
        };
        let t = transmit(to, contents, segment_size);
        // Waits for room in the socket buffer rather than dropping: backpressure reaches the
        // TUN queue and from there TCP, instead of turning into loss.
        if let Err(e) = sock
            .async_io(Interest::WRITABLE, || state.try_send((&*sock).into(), &t))
            .await
        {
            send_failed(&e);
        }
    }
}

/// A send error loses datagrams; say so once, not per packet (an unreachable peer would
/// otherwise flood the log).
fn send_failed(e: &std::io::Error) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(error = %e, "data path: a UDP send failed and its datagrams were dropped (reported once)");
    }
}

fn transmit(to: SocketAddr, contents: &[u8], segment_size: Option<usize>) -> Transmit<'_> {
    Transmit {
        destination: to,
        ecn: None,
        contents,
        segment_size,
        src_ip: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(to: u16, start: usize, len: usize) -> Sealed {
        Sealed {
            to: SocketAddr::from(([10, 0, 0, 1], to)),
            start,
            len,
        }
    }

    #[test]
    fn equal_sizes_to_one_peer_form_one_run_and_a_short_tail_joins_it() {
        let v = [s(1, 0, 100), s(1, 100, 100), s(1, 200, 40)];
        assert_eq!(runs(&v, 64), vec![(0, 3)]);
    }

    #[test]
    fn a_new_peer_a_larger_packet_or_the_segment_limit_starts_a_new_run() {
        let v = [
            s(1, 0, 100),
            s(2, 100, 100),
            s(2, 200, 120),
            s(2, 320, 120),
            s(2, 440, 120),
        ];
        assert_eq!(runs(&v, 2), vec![(0, 1), (1, 2), (2, 4), (4, 5)]);
    }

    #[test]
    fn a_run_never_exceeds_what_one_udp_datagram_can_carry() {
        let v: Vec<Sealed> = (0..64).map(|k| s(1, k * 1452, 1452)).collect();
        let r = runs(&v, 64);
        assert_eq!(r, vec![(0, 44), (44, 64)]);
        for (i, j) in r {
            assert!((j - i) * 1452 <= MAX_GSO_BYTES);
        }
    }

    #[test]
    fn nothing_after_a_short_datagram_joins_its_run() {
        let v = [s(1, 0, 100), s(1, 100, 40), s(1, 140, 40)];
        assert_eq!(runs(&v, 64), vec![(0, 2), (2, 3)]);
    }
}
