//! A TCP echo server and a checker that sends a known payload and verifies the echo: the
//! sandbox's way to prove a path carries data intact (large payloads exercise the MTU).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Serves forever, one thread per connection.
pub fn serve(port: u16) -> Result<()> {
    let l = TcpListener::bind(("::", port))
        .or_else(|_| TcpListener::bind(("0.0.0.0", port)))
        .with_context(|| format!("cannot listen on port {port}"))?;
    for conn in l.incoming().flatten() {
        std::thread::spawn(move || {
            let mut c = conn;
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
        });
    }
    Ok(())
}

/// Byte `i` of the test payload: not all zeroes, so a corrupted or shifted stream shows.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

/// Sends `bytes` bytes to `addr` and checks every byte of the echo.
pub fn check(addr: SocketAddr, bytes: usize, timeout: Duration) -> Result<()> {
    let c =
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    c.set_read_timeout(Some(timeout))?;
    c.set_write_timeout(Some(timeout))?;
    let payload: Vec<u8> = (0..bytes).map(pattern).collect();
    let mut writer = c.try_clone()?;
    let sender = std::thread::spawn(move || {
        let r = writer.write_all(&payload);
        let _ = writer.shutdown(std::net::Shutdown::Write);
        r
    });
    let mut got = Vec::with_capacity(bytes);
    (&c).read_to_end(&mut got)
        .with_context(|| format!("reading the echo from {addr}"))?;
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender thread panicked"))??;
    if got.len() != bytes {
        bail!("{addr} echoed {} of {bytes} bytes", got.len());
    }
    if let Some(i) = (0..bytes).find(|&i| got[i] != pattern(i)) {
        bail!("{addr} echoed a corrupted payload (first difference at byte {i})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
                let _ = c.write_all(&all[..keep]);
            }
        });
        check(addr, 100_000, Duration::from_secs(5)).expect("true echo");
        let e = check(addr, 100_000, Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("echoed 50000 of 100000 bytes"), "{e}");
    }
}
