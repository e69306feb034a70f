//! A real BIND 9 server on loopback for the publisher's tests: one primary zone that a TSIG key
//! may update and transfer, in a temporary directory, stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::TempDir;

/// The key name the zone trusts.
pub const KEY_NAME: &str = "subsea-test";

/// A running `named`.
pub struct Bind {
    child: Child,
    /// Its directory (configuration, zone, journal, log).
    pub dir: TempDir,
    /// The TCP and UDP port on 127.0.0.1.
    pub port: u16,
    /// The zone.
    pub zone: String,
}

fn free_port() -> Result<u16> {
    // A port free for both TCP and UDP.
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port for BIND")
}

fn keygen(name: &str) -> Result<String> {
    let out = Command::new("tsig-keygen")
        .args(["-a", "hmac-sha256", name])
        .output()
        .context("tsig-keygen runs (install bind9)")?;
    if !out.status.success() {
        bail!("tsig-keygen failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

impl Bind {
    /// Starts `named` serving `zone` and waits until it answers.
    pub fn start(zone: &str) -> Result<Self> {
        let dir = TempDir::new("bind");
        let d = dir.0.display().to_string();
        let port = free_port()?;
        let key = dir.0.join("tsig.key");
        std::fs::write(&key, keygen(KEY_NAME)?)?;
        std::fs::write(dir.0.join("wrong.key"), keygen(KEY_NAME)?)?;
        std::fs::write(dir.0.join("unknown.key"), keygen("nobody-knows-me")?)?;
        for f in ["tsig.key", "wrong.key", "unknown.key"] {
            std::fs::set_permissions(dir.0.join(f), std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
        std::fs::write(
            dir.0.join("named.conf"),
            format!(
                "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n\
                 pid-file \"{d}/named.pid\"; recursion no; dnssec-validation no; allow-query {{ any; }}; }};\n\
                 include \"{d}/tsig.key\";\ncontrols {{ }};\n\
                 zone \"{zone}\" {{ type primary; file \"{d}/zone.db\"; allow-update {{ key \"{KEY_NAME}\"; }}; allow-transfer {{ key \"{KEY_NAME}\"; }}; }};\n"
            ),
        )?;
        std::fs::write(
            dir.0.join("zone.db"),
            format!(
                "$TTL 300\n@ IN SOA ns.{zone}. admin.{zone}. ( 1 3600 600 86400 300 )\n@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n"
            ),
        )?;
        let log = std::fs::File::create(dir.0.join("named.log"))?;
        let child = Command::new("named")
            .args(["-g", "-c"])
            .arg(dir.0.join("named.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("named runs (install bind9)")?;
        let b = Self {
            child,
            dir,
            port,
            zone: zone.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if b.dig(&format!("ns.{zone}"), "A") == ["127.0.0.1"] {
                return Ok(b);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("named did not answer within 20 s: {}", b.log())
    }

    /// The key file the zone trusts.
    pub fn key_file(&self) -> PathBuf {
        self.dir.0.join("tsig.key")
    }

    /// A key with the trusted name but another secret.
    pub fn wrong_key_file(&self) -> PathBuf {
        self.dir.0.join("wrong.key")
    }

    /// A key the server does not know.
    pub fn unknown_key_file(&self) -> PathBuf {
        self.dir.0.join("unknown.key")
    }

    /// `IP:PORT` for the publisher.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The answers to `name`/`qtype`, sorted (TXT without quotes).
    pub fn dig(&self, name: &str, qtype: &str) -> Vec<String> {
        let mut v: Vec<String> = dig_short(self.port, name, qtype)
            .lines()
            .filter(|l| !l.starts_with(';') && !l.is_empty())
            .map(|l| l.trim_matches('"').to_string())
            .collect();
        v.sort();
        v
    }

    /// Runs an nsupdate script (with the trusted key) against the zone.
    pub fn nsupdate(&self, lines: &[&str]) -> Result<()> {
        let mut script = format!("server 127.0.0.1 {}\nzone {}\n", self.port, self.zone);
        for l in lines {
            script.push_str(l);
            script.push('\n');
        }
        script.push_str("send\n");
        let mut child = Command::new("nsupdate")
            .arg("-k")
            .arg(self.key_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("nsupdate runs (install dnsutils)")?;
        use std::io::Write;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("nsupdate failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("named.log")).unwrap_or_default()
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dig` against 127.0.0.1:`port` with one try of one second and `flags`: its stdout.
fn dig_local(port: u16, flags: &[&str], name: &str, qtype: &str) -> String {
    let port = port.to_string();
    let mut args = vec!["+time=1", "+tries=1", "-p", &port, "@127.0.0.1"];
    args.extend_from_slice(flags);
    args.extend([name, qtype]);
    let out = Command::new("dig")
        .args(&args)
        .output()
        .expect("dig runs (install dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dig +short` against 127.0.0.1:`port` (one try, one second): its output, trimmed.
pub fn dig_short(port: u16, name: &str, qtype: &str) -> String {
    dig_local(port, &["+short"], name, qtype).trim().to_string()
}

/// The response code (`NOERROR`, `NXDOMAIN`, `REFUSED`, …) `dig` gets from 127.0.0.1:`port`
/// (one try, one second); empty when no answer came.
pub fn dig_status(port: u16, name: &str, qtype: &str) -> String {
    let text = dig_local(port, &["+noall", "+comments"], name, qtype);
    text.split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default()
        .to_string()
}
