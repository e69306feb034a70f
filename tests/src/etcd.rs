//! A real etcd cluster on loopback for the tests: Debian's `etcd-server`, one process per
//! member, ports picked free, data in a temporary directory, every member killed on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::TempDir;

/// A free port below the kernel's ephemeral range (32768 and up): a port the kernel hands out
/// for `:0` (an API server under test, a client socket) cannot take it between this check and
/// etcd binding it.
fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Spread processes apart, then walk: tests of one process never pick the same port twice.
    let base = 20000 + (std::process::id() % 100) as u16 * 120;
    for _ in 0..2000 {
        let p = 20000 + (base - 20000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 12000;
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return Ok(p);
        }
    }
    bail!("no free port between 20000 and 32000 on 127.0.0.1")
}

/// One member: its name, client and peer URLs, and process while it runs.
struct Member {
    name: String,
    client: String,
    peer: String,
    child: Option<Child>,
}

/// An etcd cluster of one or more members.
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: TempDir,
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster has a leader and takes writes; tries
    /// again on other ports when a port was taken meanwhile.
    pub fn start(n: usize) -> Result<Self> {
        if Command::new("etcd").arg("--version").output().is_err() {
            bail!("etcd is missing: `apt-get install -y etcd-server` (the tests start their own cluster)");
        }
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(n) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("etcd did not start")))
    }

    fn try_start(n: usize) -> Result<Self> {
        let dir = TempDir::new("etcd");
        let mut members = Vec::new();
        for i in 0..n {
            members.push(Member {
                name: format!("m{i}"),
                client: format!("http://127.0.0.1:{}", free_port()?),
                peer: format!("http://127.0.0.1:{}", free_port()?),
                child: None,
            });
        }
        let mut c = Self { members, dir };
        for i in 0..n {
            c.launch(i)?;
        }
        c.wait_healthy(Duration::from_secs(20))?;
        Ok(c)
    }

    fn launch(&mut self, i: usize) -> Result<()> {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer))
            .collect();
        let m = &self.members[i];
        let data = self.dir.0.join(&m.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join(format!("{}.log", m.name)))?;
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--listen-client-urls",
                &m.client,
                "--advertise-client-urls",
                &m.client,
            ])
            .args([
                "--listen-peer-urls",
                &m.peer,
                "--initial-advertise-peer-urls",
                &m.peer,
            ])
            .args(["--initial-cluster", &initial.join(",")])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "subsea-test",
            ])
            // Tests start and stop members often: short elections keep recovery quick.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            // The suites write objects of a few MiB (watch back-pressure); etcd's default
            // request limit is 1.5 MiB, as on a kube-apiserver's etcd.
            .args(["--max-request-bytes", "10485760"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("failed to start etcd")?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Client URLs, comma-separated, as `--etcd-servers` takes them.
    pub fn servers(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `etcdctl` against the live members.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String> {
        let live: Vec<&str> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.client.as_str())
            .collect();
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &live.join(","), "--command-timeout", "5s"])
            .args(args)
            .output()
            .context("failed to run etcdctl (package etcd-client)")?;
        if !out.status.success() {
            bail!("etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_healthy(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.etcdctl(&["put", "/subsea-test/ready", "1"]) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "etcd did not take writes within {within:?}: {last}; logs in {}",
            self.dir.0.display()
        )
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data and waits for the cluster to take writes.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i);
        self.launch(i)?;
        self.wait_healthy(Duration::from_secs(30))
    }

    /// Stops every member.
    pub fn stop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
