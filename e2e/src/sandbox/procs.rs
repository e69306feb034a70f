//! Processes the sandbox starts, kills and restarts; each is recorded in the state so `down` can stop it.

use super::*;

pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

pub(crate) fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("timed out after {timeout:?} waiting for {what}")
}

impl Sandbox {
    pub(crate) fn start(
        &mut self,
        label: &str,
        netns: Option<&str>,
        cmd: Vec<String>,
        env: &[(&str, &str)],
    ) -> Result<u32> {
        let log = self.logs().join(format!("{}.log", label.replace('/', "-")));
        let pid = sys::spawn(netns, &cmd, &log, env, false)?;
        self.state.procs.push(Proc {
            label: label.into(),
            pid,
            netns: netns.map(String::from),
            log,
            cmd,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        });
        self.save()?;
        Ok(pid)
    }

    /// Kills a process the sandbox started (`SIGKILL`, as a crash) and waits until it is gone.
    pub fn kill(&self, label: &str) -> Result<()> {
        let p = self.proc(label)?;
        sys::signal_group(p.pid, "KILL");
        wait_for(&format!("{label} to exit"), Duration::from_secs(5), || {
            !sys::alive(p.pid)
        })
    }

    /// The subsea components of `cluster` still running (gateways, route agents, Globalnet,
    /// ClusterSetIP routers, the Lighthouse agent and DNS server), by label; the sandbox's
    /// stand-ins and API server are not among them.
    pub fn running_components(&self, cluster: &str) -> Result<Vec<String>> {
        const COMPONENTS: &[&str] = &[
            "gateway",
            "route-agent",
            "globalnet",
            "clusterset-ip",
            "lighthouse-agent",
            "lighthouse-dns",
        ];
        let t = self.topology()?;
        let c = t
            .cluster(cluster)
            .ok_or_else(|| anyhow!("no cluster {cluster:?} in the sandbox"))?;
        let owners: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).chain([cluster]).collect();
        Ok(self
            .state
            .procs
            .iter()
            .filter(|p| {
                p.label
                    .split_once('/')
                    .is_some_and(|(owner, what)| owners.contains(&owner) && COMPONENTS.contains(&what))
            })
            .filter(|p| sys::alive(p.pid))
            .map(|p| p.label.clone())
            .collect())
    }

    /// Starts a killed process again with the same command (its log is appended to).
    pub fn restart(&mut self, label: &str) -> Result<()> {
        let p = self.proc(label)?.clone();
        let env: Vec<(&str, &str)> = p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let pid = sys::spawn(p.netns.as_deref(), &p.cmd, &p.log, &env, true)?;
        if let Some(slot) = self.state.procs.iter_mut().find(|q| q.label == label) {
            slot.pid = pid;
        }
        self.save()
    }

    pub(crate) fn proc(&self, label: &str) -> Result<&Proc> {
        self.state
            .procs
            .iter()
            .find(|p| p.label == label)
            .ok_or_else(|| anyhow!("the sandbox started no process {label:?}"))
    }

    /// Starts a long-running process inside a pod.
    pub fn start_in_pod(&mut self, cluster: &str, pod: &str, label: &str, cmd: Vec<String>) -> Result<u32> {
        let netns = self.pod(cluster, pod)?.netns.clone();
        self.start(&format!("{cluster}-{pod}/{label}"), Some(&netns), cmd, &[])
    }

    /// Path of one of the sandbox's binaries.
    pub fn binary(&self, name: &str) -> String {
        self.bin(name)
    }
}
