//! A TCP echo server and a checker that sends a known payload and verifies the echo: the
//! sandbox's way to prove a path carries data intact (large payloads exercise the MTU). The
//! server first sends one line, `from <address>`, naming the client address it sees, so tests
//! can check that source addresses survive the path.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::{Error, IoContext, Result, peer};

/// Serves forever, one thread per connection.
pub fn serve(port: u16) -> Result<()> {
    crate::serve_tcp(port, |conn| {
        let mut c = conn;
        let peer = c
            .peer_addr()
            .map(|a| a.ip().to_canonical().to_string())
            .unwrap_or_default();
        if c.write_all(format!("from {peer}\n").as_bytes()).is_err() {
            return;
        }
        let mut buf = [0u8; 16384];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// Byte `i` of the test payload: not all zeroes, so a corrupted or shifted stream shows.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

/// Sends `bytes` bytes to `addr` and checks every byte of the echo; returns the source address
/// the server saw.
pub fn check(addr: SocketAddr, bytes: usize, timeout: Duration) -> Result<String> {
    let c = TcpStream::connect_timeout(&addr, timeout).doing(|| format!("cannot connect to {addr}"))?;
    c.set_read_timeout(Some(timeout))?;
    c.set_write_timeout(Some(timeout))?;
    let payload: Vec<u8> = (0..bytes).map(pattern).collect();
    let mut writer = c.try_clone()?;
    let sender = std::thread::spawn(move || {
        let r = writer.write_all(&payload);
        let _ = writer.shutdown(std::net::Shutdown::Write);
        r
    });
    let mut got = Vec::with_capacity(bytes + 64);
    (&c).read_to_end(&mut got)
        .doing(|| format!("reading the echo from {addr}"))?;
    let Some(nl) = got.iter().position(|b| *b == b'\n') else {
        return Err(peer!(
            "{addr} sent no `from <address>` line: is it subsea-sandbox echo-server?"
        ));
    };
    let header = String::from_utf8_lossy(&got[..nl]).into_owned();
    let Some(source) = header.strip_prefix("from ") else {
        return Err(peer!("{addr} sent {header:?} instead of `from <address>`"));
    };
    let source = source.to_string();
    let got = &got[nl + 1..];
    sender
        .join()
        .map_err(|_| Error::Peer("the sender thread panicked".into()))??;
    if got.len() != bytes {
        return Err(peer!("{addr} echoed {} of {bytes} bytes", got.len()));
    }
    if let Some(i) = (0..bytes).find(|&i| got[i] != pattern(i)) {
        return Err(peer!(
            "{addr} echoed a corrupted payload (first difference at byte {i})"
        ));
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn the_checker_accepts_a_true_echo_and_names_a_short_one() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            for (n, conn) in l.incoming().flatten().enumerate() {
                let mut c = conn;
                let mut all = Vec::new();
                let _ = c.read_to_end(&mut all);
                // The second connection gets a truncated echo.
                let keep = if n == 0 { all.len() } else { all.len() / 2 };
                let _ = c.write_all(b"from 192.0.2.7\n");
                let _ = c.write_all(&all[..keep]);
            }
        });
        assert_eq!(
            check(addr, 100_000, Duration::from_secs(5)).expect("true echo"),
            "192.0.2.7"
        );
        let e = check(addr, 100_000, Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("echoed 50000 of 100000 bytes"), "{e}");
    }
}

/// Microseconds since the epoch.
pub fn epoch_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Waits until `start` (epoch µs), then tries to connect to `addr` every `every` with
/// `attempt` timeout until one succeeds; returns the epoch µs of that success. Short attempts,
/// so the measured time is not rounded up to TCP's SYN retransmission timer.
pub fn probe(
    addr: SocketAddr,
    start: u64,
    attempt: Duration,
    every: Duration,
    deadline: Duration,
) -> Result<u64> {
    while epoch_micros() < start {
        std::thread::sleep(Duration::from_millis(1));
    }
    let begun = std::time::Instant::now();
    while begun.elapsed() < deadline {
        if TcpStream::connect_timeout(&addr, attempt).is_ok() {
            return Ok(epoch_micros());
        }
        std::thread::sleep(every);
    }
    Err(peer!("no connection to {addr} within {deadline:?}"))
}

/// What [`watch`] saw.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Watch {
    /// New connections tried.
    pub attempts: u64,
    /// Of which failed.
    pub failures: u64,
    /// Longest time without a successful new connection, in seconds (0 when none failed).
    pub longest_outage: f64,
    /// Whether the last attempt succeeded (the path recovered before the watch ended).
    pub recovered: bool,
    /// Whether the one long-lived connection kept echoing throughout.
    pub long_lived_survived: bool,
    /// DNS lookups made (every 100 ms, through the pod's resolver), when a name was given.
    pub dns_lookups: u64,
    /// Lookups that failed.
    pub dns_failures: u64,
    /// Lookups answered with an address not among the expected ones.
    pub dns_wrong: u64,
    /// Longest run of failed or wrong lookups, in seconds.
    pub dns_longest_bad: f64,
}

/// A name to resolve every 100 ms while watching, and the addresses it may answer.
#[derive(Clone, Debug)]
pub struct DnsWatch {
    /// The name (fully qualified).
    pub name: String,
    /// Acceptable answers.
    pub expect: Vec<std::net::IpAddr>,
}

fn dns_loop(d: DnsWatch, end: std::time::Instant) -> (u64, u64, u64, f64) {
    use std::net::ToSocketAddrs;
    let (mut n, mut failed, mut wrong, mut longest) = (0, 0, 0, 0.0f64);
    let mut bad_since: Option<std::time::Instant> = None;
    while std::time::Instant::now() < end {
        let t = std::time::Instant::now();
        n += 1;
        let ok = match (d.name.as_str(), 0).to_socket_addrs() {
            Ok(addrs) => {
                let got: Vec<std::net::IpAddr> = addrs.map(|a| a.ip()).collect();
                let fine = !got.is_empty() && got.iter().all(|ip| d.expect.contains(ip));
                if !fine {
                    wrong += 1;
                }
                fine
            }
            Err(_) => {
                failed += 1;
                false
            }
        };
        if ok {
            if let Some(s) = bad_since.take() {
                longest = longest.max(t.duration_since(s).as_secs_f64());
            }
        } else {
            bad_since.get_or_insert(t);
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(t.elapsed()));
    }
    if let Some(s) = bad_since {
        longest = longest.max(s.elapsed().as_secs_f64());
    }
    (n, failed, wrong, longest)
}

/// Watches the path to an echo server at `addr` for `duration`: a new connection every
/// `every` (each with `attempt` timeout), and one long-lived connection exchanging 8 bytes every
/// 100 ms, which counts as surviving as long as TCP's retransmissions carry it (each exchange
/// may take up to 15 s).
pub fn watch(
    addr: SocketAddr,
    every: Duration,
    attempt: Duration,
    duration: Duration,
    dns: Option<DnsWatch>,
) -> Result<Watch> {
    let end = std::time::Instant::now() + duration;
    let dns = dns.map(|d| std::thread::spawn(move || dns_loop(d, end)));
    let long = std::thread::spawn(move || -> bool {
        let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(15)));
        let mut line = [0u8; 1];
        // The `from <address>` header.
        loop {
            match c.read(&mut line) {
                Ok(1) if line[0] == b'\n' => break,
                Ok(1) => {}
                _ => return false,
            }
        }
        let mut i = 0u64;
        while std::time::Instant::now() < end {
            let msg = i.to_be_bytes();
            let mut back = [0u8; 8];
            if c.write_all(&msg).is_err() || c.read_exact(&mut back).is_err() || back != msg {
                return false;
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    });
    let mut w = Watch::default();
    let mut last_ok: Option<std::time::Instant> = None;
    let mut failing_since: Option<std::time::Instant> = None;
    while std::time::Instant::now() < end {
        let t = std::time::Instant::now();
        w.attempts += 1;
        let ok = TcpStream::connect_timeout(&addr, attempt).is_ok();
        if ok {
            if let (Some(_), Some(prev)) = (failing_since.take(), last_ok) {
                w.longest_outage = w.longest_outage.max(t.duration_since(prev).as_secs_f64());
            }
            last_ok = Some(t);
        } else {
            w.failures += 1;
            failing_since.get_or_insert(t);
        }
        w.recovered = ok;
        std::thread::sleep(every.saturating_sub(t.elapsed()));
    }
    if let (Some(_), Some(prev)) = (failing_since, last_ok) {
        w.longest_outage = w.longest_outage.max(prev.elapsed().as_secs_f64());
    }
    w.long_lived_survived = long.join().unwrap_or(false);
    if let Some(Ok((n, failed, wrong, longest))) = dns.map(|h| h.join()) {
        (w.dns_lookups, w.dns_failures, w.dns_wrong, w.dns_longest_bad) = (n, failed, wrong, longest);
    }
    Ok(w)
}
