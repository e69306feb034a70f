//! The cross-platform WireGuard UAPI (`get` only), so `wg show submariner` works against our
//! userspace device as it does against wireguard-go: a Unix socket at
//! `/var/run/wireguard/<name>.sock` answering `get=1`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use subsea_wg::PeerStats;
use subsea_wg::keys::Key;

/// Where wireguard-tools looks for userspace devices.
pub const SOCKET_DIR: &str = "/var/run/wireguard";

fn hex(k: &Key) -> String {
    k.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The answer to `get=1`, as wireguard-go writes it. `now` anchors handshake ages to wall time.
pub fn format_get(
    private: &Key,
    port: u16,
    psk: Option<Key>,
    peers: &[PeerStats],
    now: SystemTime,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "private_key={}", hex(private));
    let _ = writeln!(s, "listen_port={port}");
    for p in peers {
        let _ = writeln!(s, "public_key={}", hex(&p.public_key));
        if let Some(k) = psk {
            let _ = writeln!(s, "preshared_key={}", hex(&k));
        }
        if let Some(ep) = p.endpoint {
            let _ = writeln!(s, "endpoint={ep}");
        }
        let at = p
            .last_handshake
            .and_then(|age| now.checked_sub(age))
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or(Duration::ZERO);
        let _ = writeln!(s, "last_handshake_time_sec={}", at.as_secs());
        let _ = writeln!(s, "last_handshake_time_nsec={}", at.subsec_nanos());
        let _ = writeln!(s, "tx_bytes={}", p.tx_bytes);
        let _ = writeln!(s, "rx_bytes={}", p.rx_bytes);
        let _ = writeln!(s, "persistent_keepalive_interval={}", p.keepalive.unwrap_or(0));
        for c in &p.allowed_ips {
            let _ = writeln!(s, "allowed_ip={c}");
        }
        let _ = writeln!(s, "protocol_version=1");
    }
    s.push_str("errno=0\n\n");
    s
}

/// Serves the UAPI socket for device `name` in `dir` until the process ends. The socket is
/// 0600 in a 0700 directory: the answer holds the private key, as the kernel's does for root.
pub fn serve(dir: &Path, name: &str, get: Arc<dyn Fn() -> String + Send + Sync>) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(format!("{name}.sock"));
    // A stale socket from a previous run would make bind fail.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("wg-uapi".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let answer = if line.trim_end() == "get=1" {
                    get()
                } else {
                    // set= is not offered: the gateway owns the peer set, from the Endpoints.
                    "errno=1\n\n".to_string()
                };
                let _ = (&conn).write_all(answer.as_bytes());
            }
        })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use subsea_cidr::Cidr;

    #[test]
    fn get_lists_the_device_then_each_peer_with_wall_clock_handshake_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let peer = PeerStats {
            public_key: [0xab; 32],
            endpoint: Some("172.30.0.2:4500".parse().expect("addr")),
            last_handshake: Some(Duration::from_millis(2_500)),
            tx_bytes: 10,
            rx_bytes: 20,
            spoofed: 0,
            allowed_ips: vec![Cidr::parse("10.130.0.0/16").expect("cidr")],
            keepalive: Some(10),
        };
        let text = format_get(&[1; 32], 4500, Some([2; 32]), &[peer], now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("private_key={}", "01".repeat(32)));
        assert_eq!(lines[1], "listen_port=4500");
        assert_eq!(lines[2], format!("public_key={}", "ab".repeat(32)));
        assert_eq!(lines[3], format!("preshared_key={}", "02".repeat(32)));
        assert_eq!(lines[4], "endpoint=172.30.0.2:4500");
        assert_eq!(lines[5], "last_handshake_time_sec=997");
        assert_eq!(lines[6], "last_handshake_time_nsec=500000000");
        assert!(text.contains("allowed_ip=10.130.0.0/16\n"));
        assert!(text.ends_with("errno=0\n\n"));
    }

    #[test]
    fn a_peer_without_handshake_reports_zero() {
        let peer = PeerStats {
            public_key: [1; 32],
            endpoint: None,
            last_handshake: None,
            tx_bytes: 0,
            rx_bytes: 0,
            spoofed: 0,
            allowed_ips: vec![],
            keepalive: None,
        };
        let text = format_get(&[1; 32], 1, None, &[peer], SystemTime::now());
        assert!(text.contains("last_handshake_time_sec=0\n"));
        assert!(!text.contains("preshared_key"));
        assert!(!text.contains("endpoint="));
    }
}
