//! Request-response latency over TCP, like netperf's TCP_RR (one small request, one small
//! response, next request only after the response): the time a transaction takes between two
//! pods, tunnel included.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result, peer};
use serde::{Deserialize, Serialize};

/// Bytes of each request and response (netperf's default is 1).
const SIZE: usize = 1;

/// Answers every request with a response of the same size, one thread per connection.
pub fn serve(port: u16) -> Result<()> {
    crate::serve_tcp(port, |conn| {
        let mut c = conn;
        let _ = c.set_nodelay(true);
        let mut buf = [0u8; SIZE];
        while c.read_exact(&mut buf).is_ok() {
            if c.write_all(&buf).is_err() {
                return;
            }
        }
    })
}

/// What a latency run measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Transactions completed.
    pub transactions: usize,
    /// Transactions per second.
    pub per_second: f64,
    /// Mean, median, 90th and 99th percentile, microseconds.
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
}

/// The summary of per-transaction times (µs); `None` when there are none.
pub fn summarize(mut samples: Vec<f64>, elapsed: Duration) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    crate::stats::sort(&mut samples);
    let at = |q: f64| crate::stats::percentile(&samples, q);
    Some(Summary {
        transactions: samples.len(),
        per_second: samples.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        mean_us: samples.iter().sum::<f64>() / samples.len() as f64,
        p50_us: at(0.5),
        p90_us: at(0.9),
        p99_us: at(0.99),
    })
}

/// Times `transaction` for `duration` (at most `max` times).
fn measure(
    addr: SocketAddr,
    duration: Duration,
    max: usize,
    mut transaction: impl FnMut() -> Result<()>,
) -> Result<Summary> {
    let mut samples = Vec::with_capacity(max.min(1 << 20));
    let start = Instant::now();
    while start.elapsed() < duration && samples.len() < max {
        let t = Instant::now();
        transaction()?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    match summarize(samples, start.elapsed()) {
        Some(s) => Ok(s),
        None => Err(peer!("no transaction completed with {addr}")),
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .doing(|| format!("cannot connect to the latency server at {addr}"))?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(c)
}

fn transact(c: &mut TcpStream, addr: SocketAddr) -> Result<()> {
    let mut buf = [0u8; SIZE];
    c.write_all(&[b'r'; SIZE])?;
    c.read_exact(&mut buf)
        .doing(|| format!("{addr} stopped answering"))?;
    Ok(())
}

/// Runs transactions against `addr` for `duration` (at most `max` of them) on one connection.
pub fn run(addr: SocketAddr, duration: Duration, max: usize) -> Result<Summary> {
    let mut c = connect(addr)?;
    measure(addr, duration, max, || transact(&mut c, addr))
}

/// [`run`] with a new connection per transaction (connect, request, response, close:
/// netperf's TCP_CRR), so a transaction's time includes the connection setup through every
/// NAT on the way.
pub fn run_new_connections(addr: SocketAddr, duration: Duration, max: usize) -> Result<Summary> {
    measure(addr, duration, max, || transact(&mut connect(addr)?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = summarize(samples, Duration::from_secs(2)).expect("samples");
        assert_eq!(s.transactions, 100);
        assert_eq!(s.per_second, 50.0);
        assert_eq!(s.p50_us, 51.0);
        assert_eq!(s.p90_us, 90.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.mean_us, 50.5);
        assert!(summarize(vec![], Duration::from_secs(1)).is_none());
    }

    #[test]
    fn a_run_against_the_server_measures_each_transaction() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        std::thread::spawn(move || serve(port));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let s = (0..50)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                run(addr, Duration::from_secs(5), 200).ok()
            })
            .expect("a run");
        assert_eq!(s.transactions, 200);
        assert!(s.p50_us > 0.0 && s.p50_us <= s.p99_us, "{s:?}");
        let crr = run_new_connections(addr, Duration::from_secs(5), 50).expect("a run");
        assert_eq!(crr.transactions, 50);
        assert!(crr.p50_us > 0.0, "{crr:?}");
    }
}
