//! A handshake flood at a gateway (needs root): two `subsea wireguard` endpoints in their own
//! network namespaces with a tunnel up, and a third namespace on the responder's underlay
//! sending 10 000 handshake initiations per second with a valid MAC1 (the public key is on the
//! broker for anyone to read). The existing tunnel must keep passing traffic, the responder must
//! answer the flood with cookie replies (not handshakes), and the figures are printed.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use subsea_e2e::sandbox::harness::{bin_dir, is_root};
use subsea_e2e::sandbox::sys::{ip, ip_in};

struct Bed {
    prefix: String,
    dir: std::path::PathBuf,
    children: Vec<Child>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in ["a", "b", "f"] {
            let _ = ip(&["netns", "del", &format!("{}-{n}", self.prefix)]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bed {
    fn ns(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }
}

fn key_pair(dir: &std::path::Path, name: &str) -> String {
    let private = Command::new("wg")
        .arg("genkey")
        .output()
        .expect("wg genkey (install wireguard-tools)");
    let private = String::from_utf8_lossy(&private.stdout).trim().to_string();
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, format!("{private}\n")).expect("key");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("mode");
    let mut child = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wg pubkey");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(private.as_bytes())
        .expect("write");
    String::from_utf8_lossy(&child.wait_with_output().expect("pubkey").stdout)
        .trim()
        .to_string()
}

/// (received of sent, average RTT in ms) of `count` pings at `interval` seconds.
fn ping(ns: &str, count: u32, interval: &str) -> (u32, u32, f64) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ping",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            interval,
            "-W",
            "1",
            "-I",
            "10.1.0.1",
            "10.2.0.1",
        ])
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    let received = text
        .split(',')
        .find_map(|f| {
            f.trim()
                .strip_suffix(" received")
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0);
    let avg = text
        .lines()
        .find(|l| l.starts_with("rtt"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    (received, count, avg)
}

#[test]
fn a_handshake_flood_gets_cookies_and_the_existing_tunnel_keeps_passing_traffic() {
    assert!(
        is_root(),
        "needs root (network namespaces, TUN): run the suite as root, as .ci/run does"
    );
    let prefix = format!("hf{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("subsea-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut bed = Bed {
        prefix,
        dir: dir.clone(),
        children: Vec::new(),
    };
    let (a, b, f) = (bed.ns("a"), bed.ns("b"), bed.ns("f"));
    for n in [&a, &b, &f] {
        ip(&["netns", "add", n]).expect("netns");
        ip_in(n, &["link", "set", "lo", "up"]).expect("lo");
    }
    ip(&[
        "link", "add", "u", "netns", &a, "type", "veth", "peer", "name", "u", "netns", &b,
    ])
    .expect("veth");
    ip(&[
        "link", "add", "v", "netns", &f, "type", "veth", "peer", "name", "v", "netns", &b,
    ])
    .expect("veth");
    for (n, addr, dev) in [
        (&a, "192.168.77.1/24", "u"),
        (&b, "192.168.77.2/24", "u"),
        (&b, "192.168.78.1/24", "v"),
        (&f, "192.168.78.2/24", "v"),
        (&a, "10.1.0.1/32", "lo"),
        (&b, "10.2.0.1/32", "lo"),
    ] {
        ip_in(n, &["addr", "add", addr, "dev", dev]).expect("addr");
        ip_in(n, &["link", "set", dev, "up"]).expect("up");
    }
    let pub_a = key_pair(&dir, "a");
    let pub_b = key_pair(&dir, "b");
    let subsea = bin_dir().join("subsea");
    for (n, me, peer, far) in [
        (
            &a,
            "a",
            format!("{pub_b},192.168.77.2:51820,10.2.0.0/24"),
            "10.2.0.0/24",
        ),
        (
            &b,
            "b",
            format!("{pub_a},192.168.77.1:51820,10.1.0.0/24"),
            "10.1.0.0/24",
        ),
    ] {
        let uapi = dir.join(format!("run-{me}"));
        std::fs::create_dir_all(&uapi).expect("uapi dir");
        let log = std::fs::File::create(dir.join(format!("{me}.log"))).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", n])
            .arg(&subsea)
            .args(["wireguard", "wg0", "--listen-port", "51820", "--private-key"])
            .arg(dir.join(format!("{me}.key")))
            .args(["--peer", &peer, "--uapi-dir"])
            .arg(&uapi)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("subsea wireguard");
        bed.children.push(child);
        let mut up = false;
        for _ in 0..100 {
            if ip_in(n, &["link", "show", "wg0"]).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(up, "wg0 did not appear in {n}");
        ip_in(n, &["route", "add", far, "dev", "wg0"]).expect("route");
    }
    let (got, _, _) = ping(&a, 3, "0.2");
    assert!(got >= 1, "the tunnel does not pass traffic before the flood");
    let (idle_got, idle_sent, idle_rtt) = ping(&a, 50, "0.02");

    let flooder = Command::new("ip")
        .args(["netns", "exec", &f])
        .arg(bin_dir().join("subsea-sandbox"))
        .args([
            "handshake-flood",
            "--target",
            "192.168.78.1:51820",
            "--public-key",
            &pub_b,
            "--rate",
            "10000",
            "--seconds",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flooder");
    std::thread::sleep(Duration::from_millis(500));
    let (flood_got, flood_sent, flood_rtt) = ping(&a, 100, "0.02");
    let out = flooder.wait_with_output().expect("flooder ends");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| {
            panic!(
                "no RESULT from the flooder: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    println!(
        "idle: {idle_got}/{idle_sent} pings, {idle_rtt:.3} ms; under a flood of {:.0} initiations/s: {flood_got}/{flood_sent} pings, {flood_rtt:.3} ms; replies: {} cookies, {} handshakes",
        report["sent"].as_f64().unwrap_or(0.0) / report["seconds"].as_f64().unwrap_or(1.0),
        report["cookies"],
        report["responses"]
    );
    assert!(
        report["sent"].as_u64().unwrap_or(0) >= 30_000,
        "the flood ran: {report}"
    );
    assert!(
        report["cookies"].as_u64().unwrap_or(0) > 1_000,
        "the responder answers a flood with cookies: {report}"
    );
    assert_eq!(
        report["responses"].as_u64(),
        Some(0),
        "no handshake with a stranger: {report}"
    );
    assert!(
        flood_got * 100 >= flood_sent * 95,
        "the tunnel lost {} of {flood_sent} pings under the flood",
        flood_sent - flood_got
    );
}
