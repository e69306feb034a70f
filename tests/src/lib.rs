//! Test support: run the real `subsea` binary as an API server and drive it with real clients.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod balance;
pub mod bind;
pub mod etcd;

/// Set to `etcd` to run every test's API server on its own real etcd instead of the embedded log:
/// the same suites, the other storage backend. Set to `etcd-replicas` for two replicas on that
/// etcd behind a round-robin balancer (the kubeconfig names the balancer), so each connection
/// may reach either replica.
pub const STORE_ENV: &str = "SUBSEA_TEST_STORE";

/// Path of a binary built from this workspace (`cargo build --bins` first), or `$SUBSEA_BIN_DIR/name`.
pub fn binary(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("SUBSEA_BIN_DIR") {
        return Path::new(&dir).join(name);
    }
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join(name)
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `/tmp/subsea-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "subsea-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `subsea apiserver` process on a free loopback port.
pub struct ApiServer {
    child: Option<Child>,
    /// Its data directory.
    pub data: TempDir,
    /// Extra command-line flags.
    pub flags: Vec<String>,
    /// Where kubectl keeps its discovery cache for this server.
    pub kube_cache: TempDir,
    /// Listen address; the port chosen at first start is kept across restarts.
    listen: String,
    /// The second replica and the balancer in front of both, with `SUBSEA_TEST_STORE=etcd-replicas`.
    twin: Option<(Box<ApiServer>, balance::Balancer)>,
    /// The etcd this server keeps its objects in, when the test owns one.
    pub etcd: Option<etcd::EtcdCluster>,
}

impl ApiServer {
    /// Starts a server with the given extra flags and waits until it answers.
    /// With `SUBSEA_TEST_STORE=etcd`, the server keeps its objects in a one-member etcd of
    /// its own, unless the flags already name an etcd.
    pub fn start(flags: &[&str]) -> Result<Self> {
        Self::start_on(flags, &std::env::var(STORE_ENV).unwrap_or_default())
    }

    /// Two replicas on a one-member etcd of their own behind a round-robin balancer, the
    /// kubeconfig naming the balancer (what `SUBSEA_TEST_STORE=etcd-replicas` gives every test).
    pub fn replicated(flags: &[&str]) -> Result<Self> {
        Self::start_on(flags, "etcd-replicas")
    }

    /// The other replica behind the balancer, if any.
    pub fn twin(&mut self) -> Option<&mut ApiServer> {
        self.twin.as_mut().map(|(t, _)| &mut **t)
    }

    fn start_on(flags: &[&str], mode: &str) -> Result<Self> {
        let mut flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        // A test that brings its own etcd keeps it.
        let own = flags.iter().any(|f| f == "--etcd-servers");
        let etcd = match mode {
            _ if own => None,
            "etcd" | "etcd-replicas" => {
                let e = etcd::EtcdCluster::start(1)?;
                flags.extend(["--etcd-servers".to_string(), e.servers()]);
                Some(e)
            }
            "" | "embedded" => None,
            other => bail!("{STORE_ENV}={other}: expected etcd, etcd-replicas or embedded"),
        };
        let mut s = Self {
            child: None,
            data: TempDir::new("apiserver"),
            flags,
            kube_cache: TempDir::new("kubecache"),
            listen: "127.0.0.1:0".into(),
            twin: None,
            etcd,
        };
        s.launch()?;
        if mode == "etcd-replicas" && !own {
            let twin = Self::replica_of(&s)?;
            let addrs = [&s.listen, &twin.listen]
                .iter()
                .map(|a| a.parse().with_context(|| format!("replica address {a}")))
                .collect::<Result<Vec<_>>>()?;
            s.twin = Some((Box::new(twin), balance::Balancer::start(addrs)?));
            s.point_at_balancer()?;
        }
        Ok(s)
    }

    /// Makes the admin kubeconfig name the balancer instead of this replica.
    fn point_at_balancer(&self) -> Result<()> {
        let Some((_, balancer)) = &self.twin else {
            return Ok(());
        };
        let path = self.kubeconfig();
        let kc = std::fs::read_to_string(&path)?;
        let own = format!("server: https://{}", self.listen);
        let front = format!("server: https://{}", balancer.addr());
        std::fs::write(&path, kc.replace(&own, &front))?;
        Ok(())
    }

    /// A replica on the same etcd objects as `first` (etcd servers and prefix), sharing its
    /// certificates, tokens and signing key, as the README's highly available broker does.
    pub fn replica_of(first: &ApiServer) -> Result<Self> {
        let data = TempDir::new("apiserver");
        for f in [
            "ca.crt",
            "ca.key",
            "apiserver.crt",
            "apiserver.key",
            "admin.token",
            "sa-signing.key",
        ] {
            std::fs::copy(first.data.0.join(f), data.0.join(f))
                .with_context(|| format!("copying {f} from the first replica"))?;
        }
        let mut s = Self {
            child: None,
            data,
            flags: first.flags.clone(),
            kube_cache: TempDir::new("kubecache"),
            listen: "127.0.0.1:0".into(),
            twin: None,
            etcd: None,
        };
        s.launch()?;
        Ok(s)
    }

    fn launch(&mut self) -> Result<()> {
        let bin = binary("subsea");
        if !bin.exists() {
            bail!(
                "{} is missing: run `cargo build --bins` before the tests",
                bin.display()
            );
        }
        let _ = std::fs::remove_file(self.kubeconfig());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.0.join("apiserver.log"))?;
        let child = Command::new(&bin)
            .args(["apiserver", "--data-dir"])
            .arg(&self.data.0)
            .args(["--listen", &self.listen])
            .args(&self.flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.kubeconfig().exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"])?;
                if out.status.success() {
                    self.listen = self.url().trim_start_matches("https://").to_string();
                    return self.point_at_balancer();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("subsea apiserver did not become ready within 20 s")
    }

    /// The server URL from the kubeconfig.
    pub fn url(&self) -> String {
        self.kubeconfig_field("server")
    }

    /// A `key: value` field of the admin kubeconfig.
    fn kubeconfig_field(&self, key: &str) -> String {
        let kc = std::fs::read_to_string(self.kubeconfig()).unwrap_or_default();
        let prefix = format!("{key}: ");
        kc.lines()
            .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
            .unwrap_or_default()
            .to_string()
    }

    /// A simulated cluster `n`: service range `100.(65+n).0.0/16`, pods `10.(129+n).0.0/16` on a
    /// worker node and a control-plane node, a controller-manager pod carrying the pod CIDR
    /// flag, and a CoreDNS ConfigMap, as on a kubeadm cluster.
    pub fn simulated_cluster(n: u8) -> Result<Self> {
        let range = format!("100.{}.0.0/16", 65 + n);
        let s = Self::start(&[
            "--service-cluster-ip-range",
            &range,
            "--context",
            &format!("cluster{n}"),
        ])?;
        let pods = 129 + u32::from(n);
        let setup = format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: gw\n  labels: {{node-role.kubernetes.io/worker: \"\"}}\nspec:\n  podCIDR: 10.{pods}.1.0/24\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: cp\n  labels: {{node-role.kubernetes.io/control-plane: \"\"}}\nspec:\n  podCIDR: 10.{pods}.0.0/24\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-controller-manager-cp\n  namespace: kube-system\n  labels: {{component: kube-controller-manager}}\nspec:\n  containers:\n  - name: kcm\n    image: kcm\n    command: [kube-controller-manager, --cluster-cidr=10.{pods}.0.0/16]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns\n  namespace: kube-system\ndata:\n  Corefile: |\n    .:53 {{\n        kubernetes cluster.local\n    }}\n"
        );
        let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(&setup))?;
        if !out.status.success() {
            bail!(
                "setting up cluster{n} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(s)
    }

    /// The admin bearer token from the kubeconfig.
    pub fn admin_token(&self) -> String {
        self.kubeconfig_field("token")
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid().unwrap_or(0))).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// The server's log so far (both replicas' behind a balancer).
    pub fn log(&self) -> String {
        let own = std::fs::read_to_string(self.data.0.join("apiserver.log")).unwrap_or_default();
        match &self.twin {
            Some((twin, _)) => format!("{own}\n--- the other replica ---\n{}", twin.log()),
            None => own,
        }
    }

    /// Path of the admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data.0.join("admin.kubeconfig")
    }

    /// Runs `subctl` with this server's kubeconfig in `dir`; returns (success, stdout, stderr).
    pub fn subctl(&self, dir: &Path, args: &[&str]) -> (bool, String, String) {
        let kc = self.kubeconfig().display().to_string();
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", kc.as_str()]);
        run_subctl(Some(dir), &all, &[])
    }

    /// Kills the process with SIGKILL (no chance to flush anything).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and starts the server again on the same data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.launch()
    }

    /// Runs kubectl against this server.
    pub fn kubectl(&self, args: &[&str]) -> Result<Output> {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with `stdin` as its standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        use std::io::Write;
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", self.kubeconfig())
            .arg("--cache-dir")
            .arg(&self.kube_cache.0)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("failed to run kubectl (is it installed?)")?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    /// Runs kubectl and returns stdout, failing with stderr when it exits non-zero.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).expect("kubectl runs");
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `subsea` component process (agent, DNS server, …), killed on drop; its stderr goes to a
/// log file so a failing test can show it.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `subsea ARGS`, logging to `log`.
    pub fn start(args: &[&str], log: &Path) -> Result<Self> {
        let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(binary("subsea"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting subsea {}", args.join(" ")))?;
        Ok(Self {
            child,
            log: log.to_path_buf(),
        })
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A real `subsea lighthouse-agent` per `(cluster, id)`, logging to `<dir>/<id>-agent.log`.
pub fn lighthouse_agents(clusters: &[(&ApiServer, &str)], dir: &Path) -> Vec<Daemon> {
    clusters
        .iter()
        .map(|(c, id)| {
            let kc = c.kubeconfig().display().to_string();
            Daemon::start(
                &["lighthouse-agent", "--kubeconfig", &kc],
                &dir.join(format!("{id}-agent.log")),
            )
            .expect("the agent starts")
        })
        .collect()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the built `subctl` (in `dir`, with extra environment); returns (success, stdout, stderr).
pub fn run_subctl(dir: Option<&Path>, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut cmd = Command::new(binary("subctl"));
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("subctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Path of the repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
