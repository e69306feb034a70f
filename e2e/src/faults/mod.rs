//! The fault suite (`fault-suite`, and `e2e/tests/faults.rs` with 2 rounds): a 3-cluster
//! sandbox with an echo server in cluster1, watched from a pod in cluster2 (a new connection
//! every 50 ms and one long-lived connection) while each fault is injected and healed, round
//! after round. One table row per fault: outage median and max, whether the long-lived
//! connection survived every round, rounds recovered, stale objects left on the broker, and how
//! long two of cluster1's gateways were active at once (from their logs: see [`spans`]).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

mod spans;

use crate::sandbox::echo::Watch;
use crate::sandbox::harness::{
    self, active_gateway, broker_imports, cut_node, cut_node_from_api, export, heal, partition,
    partition_between, restore_node,
};
use crate::sandbox::{Pod, Sandbox, sys};

/// One fault: how to cause it and how to undo it, and how long it lasts.
struct Fault {
    name: &'static str,
    hold: Duration,
    inject: fn(&mut Sandbox) -> Result<String>,
    heal: fn(&mut Sandbox, &str) -> Result<()>,
    /// Whether `inject` SIGKILLs the process it names.
    kills: bool,
}

fn kill(sb: &mut Sandbox, label: &str) -> Result<String> {
    sb.kill(label)?;
    Ok(label.to_string())
}

fn restart(sb: &mut Sandbox, label: &str) -> Result<()> {
    sb.restart(label)
}

const NAME: &str = "web.default.svc.clusterset.local.";

/// An export made while the broker is down must appear once it is back.
fn broker_down(sb: &mut Sandbox) -> Result<String> {
    sb.kill("broker/apiserver")?;
    export(sb, "export", "late", "cluster2")?;
    Ok("broker/apiserver".into())
}

fn broker_back(sb: &mut Sandbox, label: &str) -> Result<()> {
    sb.restart(label)?;
    harness::eventually(
        "the export made while the broker was down is imported",
        Duration::from_secs(60),
        || {
            let out = sb.kubectl(
                "cluster1",
                &["get", "serviceimports", "-n", "default", "-o", "name"],
            )?;
            if !out.contains("/late") {
                bail!("not yet: {out}");
            }
            let on_broker = broker_imports(sb)?;
            let n = on_broker.lines().filter(|l| l.contains("late-default-")).count();
            if n != 1 {
                bail!("{n} broker ServiceImports for it");
            }
            Ok(())
        },
    );
    export(sb, "unexport", "late", "cluster2")?;
    Ok(())
}

/// Applies `cut` to cluster1's active gateway node; returns the node.
fn cut_active(sb: &mut Sandbox, cut: fn(&Sandbox, &str) -> Result<()>) -> Result<String> {
    let g = active_gateway(sb, "cluster1")?;
    cut(sb, &g)?;
    Ok(g)
}

/// A 5 s fault on one node, undone by [`restore_node`].
fn node_fault(name: &'static str, inject: fn(&mut Sandbox) -> Result<String>) -> Fault {
    Fault {
        name,
        hold: Duration::from_secs(5),
        inject,
        heal: |sb, g| restore_node(sb, g),
        kills: false,
    }
}

/// After a cluster was cut off for longer than the health-check budget (5 pings at 1 s), the
/// other clusters answer `web` with the other exporter's address only.
fn withdrawn(sb: &mut Sandbox, cut: &str) -> Result<()> {
    let unreachable = cluster_ip(sb, cut, "web")?;
    for (cluster, pod) in [("cluster2", "client"), ("cluster3", "dns-probe")] {
        let p = sb.pod(cluster, pod)?;
        // Answers rotate over the exporters: ask a few times so a stale address shows.
        for _ in 0..4 {
            let got = sys::exec_in(&p.netns, &["dig", "+short", "+time=1", "+tries=1", NAME])?;
            let answers: Vec<&str> = got.split_whitespace().collect();
            if answers.is_empty() || answers.contains(&unreachable.as_str()) {
                bail!(
                    "{cluster} answers {NAME} with {answers:?} while {cut} ({unreachable}) is cut off: the unreachable cluster's address must go and the other exporter's stay"
                );
            }
        }
    }
    Ok(())
}

fn faults(broker_seconds: u64) -> Vec<Fault> {
    vec![
        Fault {
            // Restarted only after the other gateway took over (a restart at once would resume
            // the lease it still holds, which is a restart, not a failover).
            name: "active gateway SIGKILL (cluster1), restarted after 4 s",
            hold: Duration::from_secs(4),
            inject: |sb| {
                let g = active_gateway(sb, "cluster1")?;
                kill(sb, &format!("{g}/gateway"))
            },
            heal: restart,
            kills: true,
        },
        // The split brain the fencing exists for: the old leader still has its tunnels and
        // routes but can renew nothing; it must be gone before the other takes over.
        node_fault("active gateway's API server unreachable (cluster1), 5 s", |sb| {
            cut_active(sb, cut_node_from_api)
        }),
        node_fault("active gateway node's links cut (cluster1), 5 s", |sb| {
            cut_active(sb, cut_node)
        }),
        Fault {
            name: "route agent killed (client's node)",
            hold: Duration::from_secs(3),
            inject: |sb| kill(sb, "cluster2-worker/route-agent"),
            heal: restart,
            kills: true,
        },
        Fault {
            name: "Lighthouse agent killed (cluster1)",
            hold: Duration::from_secs(3),
            inject: |sb| kill(sb, "cluster1/lighthouse-agent"),
            heal: restart,
            kills: true,
        },
        Fault {
            name: "Lighthouse DNS killed (cluster2, the client's)",
            hold: Duration::from_secs(3),
            inject: |sb| kill(sb, "cluster2/lighthouse-dns"),
            heal: restart,
            kills: true,
        },
        Fault {
            name: "cluster1 API server SIGKILL, back after 3 s",
            hold: Duration::from_secs(3),
            inject: |sb| kill(sb, "cluster1/apiserver"),
            heal: restart,
            kills: true,
        },
        Fault {
            name: if broker_seconds >= 60 {
                "broker down 60 s, an export made meanwhile"
            } else {
                "broker down (shortened), an export made meanwhile"
            },
            hold: Duration::from_secs(broker_seconds),
            inject: broker_down,
            heal: broker_back,
            kills: true,
        },
        Fault {
            name: "WAN cut between cluster1 and cluster3 only",
            hold: Duration::from_secs(8),
            inject: |sb| {
                partition_between(sb, "cluster1", "cluster3")?;
                Ok("cluster1".into())
            },
            heal: |sb, c| heal(sb, c),
            kills: false,
        },
        Fault {
            name: "cluster1 cut off the WAN for 8 s",
            hold: Duration::from_secs(8),
            inject: |sb| {
                partition(sb, "cluster1")?;
                Ok("cluster1".into())
            },
            heal: |sb, c| {
                let left = withdrawn(sb, c);
                heal(sb, c)?;
                left
            },
            kills: false,
        },
    ]
}

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    /// The fault.
    pub fault: &'static str,
    /// Outage per round, seconds.
    pub outages: Vec<f64>,
    /// Rounds the long-lived connection survived.
    pub survived: usize,
    /// Rounds after which the path worked again.
    pub recovered: usize,
    /// Stale broker objects found after the rounds.
    pub stale: Vec<String>,
    /// Longest run of failed or wrong DNS answers per round, seconds.
    pub dns_bad: Vec<f64>,
    /// The cluster whose probe saw the longest bad run.
    pub dns_worst: String,
    /// Wrong DNS answers (an address that is not the service's) over all rounds.
    pub dns_wrong: u64,
    /// Seconds during which two of cluster1's gateways were active at once.
    pub both_active: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

impl Row {
    /// The row as the table prints it.
    pub fn line(&self, rounds: usize) -> String {
        let max = self.outages.iter().copied().fold(0.0, f64::max);
        format!(
            "| {} | {rounds} | {:.2} s | {max:.2} s | {} | {}/{rounds} | {} | {:.2} s{} | {} | {:.3} s |",
            self.fault,
            median(&self.outages),
            if self.survived == rounds {
                "y".to_string()
            } else {
                format!("n ({}/{rounds})", self.survived)
            },
            self.recovered,
            if self.stale.is_empty() {
                "0".to_string()
            } else {
                self.stale.join(", ")
            },
            self.dns_bad.iter().copied().fold(0.0, f64::max),
            if self.dns_worst.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.dns_worst)
            },
            self.dns_wrong,
            self.both_active
        )
    }
}

/// What should be on the broker after every round: one Endpoint and one Cluster per cluster.
fn stale(sb: &Sandbox, clusters: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for kind in ["endpoints.submariner.io", "clusters.submariner.io"] {
        let text = sb.kubectl(
            "broker",
            &["get", kind, "-n", "submariner-k8s-broker", "-o", "json"],
        )?;
        let v: Value = serde_json::from_str(&text)?;
        let n = v["items"].as_array().map_or(0, Vec::len);
        if n != clusters {
            out.push(format!("{n} {kind} (want {clusters})"));
        }
    }
    Ok(out)
}

fn watch(sb: &Sandbox, client: &Pod, addr: &str, expect: &str, secs: f64) -> Result<std::process::Child> {
    Ok(std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &client.netns,
            &sb.binary("subsea-sandbox"),
            "watch",
            addr,
            "--dns",
            NAME,
            "--expect",
            expect,
            "--seconds",
        ])
        .arg(format!("{secs}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?)
}

fn result(child: std::process::Child) -> Result<Watch> {
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("the watcher printed no RESULT")?;
    Ok(serde_json::from_str(line)?)
}

fn row(fault: &'static str) -> Row {
    Row {
        fault,
        outages: Vec::new(),
        survived: 0,
        recovered: 0,
        stale: Vec::new(),
        dns_bad: Vec::new(),
        dns_worst: String::new(),
        dns_wrong: 0,
        both_active: 0.0,
    }
}

fn now() -> f64 {
    crate::sandbox::echo::epoch_micros() as f64 / 1e6
}

/// Seconds in `[from, to]` during which two of `cluster`'s gateways were active, given the
/// gateway kills the suite made (label, time).
fn both_active(sb: &Sandbox, cluster: &str, kills: &[(String, f64)], from: f64, to: f64) -> Result<f64> {
    let t = sb.topology()?;
    let c = t.cluster(cluster).context("no such cluster")?;
    let mut all = Vec::new();
    for n in c
        .nodes
        .iter()
        .filter(|n| n.role == crate::sandbox::topology::Role::Gateway)
    {
        let label = format!("{}/gateway", n.name);
        let log = std::fs::read_to_string(sb.logs().join(format!("{}-gateway.log", n.name)))
            .with_context(|| format!("the log of {label}"))?;
        let at: Vec<f64> = kills
            .iter()
            .filter(|(l, _)| *l == label)
            .map(|(_, t)| *t)
            .collect();
        all.push(spans::spans(&log, &at));
    }
    Ok(spans::overlap(&all, from, to))
}

fn record(row: &mut Row, w: &Watch) {
    row.outages.push(w.longest_outage);
    row.survived += usize::from(w.long_lived_survived);
    row.recovered += usize::from(w.recovered);
    row.dns_bad.push(w.dns_longest_bad);
    row.dns_wrong += w.dns_wrong;
}

/// Waits until the broker holds what `clusters` clusters should leave there.
fn settled(sb: &Sandbox, clusters: usize) -> Result<Vec<String>> {
    let mut left = stale(sb, clusters)?;
    for _ in 0..40 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        left = stale(sb, clusters)?;
    }
    Ok(left)
}

/// The probes of one round: the TCP and DNS watcher in cluster2's client pod (whose outage the
/// table reports), and a DNS watcher in every other cluster.
struct Probes {
    client: Pod,
    others: Vec<Pod>,
    addr: String,
    expect: String,
}

impl Probes {
    fn start(
        &self,
        sb: &Sandbox,
        secs: f64,
        with_others: usize,
    ) -> Result<Vec<(String, std::process::Child)>> {
        let mut out = Vec::new();
        for p in std::iter::once(&self.client).chain(self.others.iter().take(with_others)) {
            out.push((p.cluster.clone(), watch(sb, p, &self.addr, &self.expect, secs)?));
        }
        Ok(out)
    }
}

/// Records a round: the connection figures from the client's watcher, the DNS figures from
/// every cluster's.
fn record_all(row: &mut Row, watchers: Vec<(String, std::process::Child)>) -> Result<()> {
    let mut results = Vec::new();
    for (cluster, w) in watchers {
        results.push((cluster, result(w)?));
    }
    let Some(((client, first), others)) = results.split_first_mut() else {
        bail!("no watcher")
    };
    let seen = row.dns_bad.iter().copied().fold(0.0, f64::max);
    let mut worst = (first.dns_longest_bad, client.clone());
    for (cluster, o) in others.iter() {
        if o.dns_longest_bad > worst.0 {
            worst = (o.dns_longest_bad, cluster.clone());
        }
        first.dns_wrong += o.dns_wrong;
    }
    first.dns_longest_bad = worst.0;
    if worst.0 > seen && worst.0 > 0.0 {
        row.dns_worst = worst.1;
    }
    record(row, first);
    Ok(())
}

fn cluster_ip(sb: &Sandbox, cluster: &str, service: &str) -> Result<String> {
    Ok(sb
        .kubectl(
            cluster,
            &[
                "get",
                "service",
                service,
                "-n",
                "default",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ],
        )?
        .trim()
        .to_string())
}

/// Whether fault `name` is picked by `only` (none: every fault).
fn selected(only: Option<&str>, name: &str) -> bool {
    only.is_none_or(|o| {
        o.split(',')
            .any(|t| !t.trim().is_empty() && name.contains(t.trim()))
    })
}

/// Runs every fault `rounds` times (the broker outage lasting `broker_seconds`), then
/// uninstalls cluster3 while traffic flows; returns the table rows, printing them as it goes.
/// With `only`, just the faults whose name contains one of its comma-separated texts (the
/// uninstall too when it matches "cluster3 uninstalled").
pub fn run(rounds: usize, broker_seconds: u64, only: Option<&str>) -> Result<Vec<Row>> {
    let mut up = harness::up("faults", 3, false)?;
    let sb = &mut up.0;
    let (client, addr) = harness::echo_pair(sb)?;
    let others = vec![
        sb.add_pod("cluster1", "cluster1-worker", "dns-probe", "default")?,
        sb.add_pod("cluster3", "cluster3-worker", "dns-probe", "default")?,
    ];
    let bin = sb.binary("subsea-sandbox");
    // The DNS probes' service, exported by cluster1 and cluster3 (so a name stays answerable
    // while either is cut off); and one cluster2 exports during a fault.
    sb.deploy("cluster1", "web", "default", 1, false, 80, 8080)?;
    sb.deploy("cluster3", "web", "default", 1, false, 80, 8080)?;
    sb.deploy("cluster2", "late", "default", 1, false, 80, 8080)?;
    export(sb, "export", "web", "cluster1")?;
    export(sb, "export", "web", "cluster3")?;
    let web_ips = [
        cluster_ip(sb, "cluster1", "web")?,
        cluster_ip(sb, "cluster3", "web")?,
    ];
    for p in std::iter::once(&client).chain(&others) {
        harness::eventually(
            &format!("web resolves from {}", p.cluster),
            Duration::from_secs(60),
            || {
                let got = sys::exec_in(&p.netns, &["dig", "+short", "+time=1", "+tries=1", NAME])?;
                if !web_ips.iter().any(|ip| got.trim() == ip) {
                    bail!("{got:?}, want one of {web_ips:?}");
                }
                Ok(())
            },
        );
    }
    sys::exec_in(
        &client.netns,
        &[&bin, "probe", &addr, "--start", "0", "--deadline", "90"],
    )
    .context("no cross-cluster connection before the faults")?;
    let probes = Probes {
        client: client.clone(),
        others,
        addr: addr.clone(),
        expect: web_ips.join(","),
    };
    println!(
        "| fault | rounds | outage median | outage max | long-lived connection survived | recovered | stale objects | DNS bad (max) | wrong DNS answers | two active gateways |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut kills: Vec<(String, f64)> = Vec::new();
    let mut rows = Vec::new();
    for f in faults(broker_seconds)
        .into_iter()
        .filter(|f| selected(only, f.name))
    {
        let mut r = row(f.name);
        let from = now();
        for _ in 0..rounds {
            // The watch spans the fault and the recovery: 1 s before, the hold, and 8 s after.
            let secs = 1.0 + f.hold.as_secs_f64() + 8.0;
            let watchers = probes.start(sb, secs, 2)?;
            std::thread::sleep(Duration::from_secs(1));
            let what = (f.inject)(sb)?;
            if f.kills {
                // Taken after the kill returned: a span is never cut short of the real end.
                kills.push((what.clone(), now()));
            }
            std::thread::sleep(f.hold);
            (f.heal)(sb, &what)?;
            record_all(&mut r, watchers)?;
            // Settle before the next round: the path must work again.
            sys::exec_in(
                &client.netns,
                &[&bin, "probe", &addr, "--start", "0", "--deadline", "60"],
            )
            .with_context(|| format!("no connection after {}", f.name))?;
        }
        // Objects a failover or restart may leave behind take the gateways' stale-Endpoint
        // cleanup to go: allow it a moment.
        r.stale = settled(sb, 3)?;
        r.both_active = both_active(sb, "cluster1", &kills, from, now())?;
        println!("{}", r.line(rounds));
        rows.push(r);
    }
    const UNINSTALL: &str = "cluster3 uninstalled";
    if !selected(only, UNINSTALL) {
        return Ok(rows);
    }
    // One cluster leaves while the others keep running (cluster1's DNS probe stays: the name
    // must keep resolving to cluster1's export).
    let mut r = row(UNINSTALL);
    let watchers = probes.start(sb, 12.0, 1)?;
    std::thread::sleep(Duration::from_secs(1));
    let t = sb.topology()?.clone();
    let cp = t
        .cluster("cluster3")
        .context("cluster3")?
        .control_plane()
        .netns
        .clone();
    let kc = sb.inner_kubeconfig("cluster3").display().to_string();
    // subctl uninstall stops the components first (the sandbox's kubelet stand-in stops a
    // component's process when its pod is deleted), then cleans the broker.
    sys::exec_in(
        &cp,
        &[&sb.binary("subctl"), "uninstall", "--kubeconfig", &kc, "-y"],
    )?;
    record_all(&mut r, watchers)?;
    r.stale = settled(sb, 2)?;
    // Nothing of cluster3's keeps running or routing: its components were stopped (SIGTERM, so
    // the ClusterSetIP routers removed their tables).
    for label in sb.running_components("cluster3")? {
        r.stale.push(format!("{label} still running"));
    }
    for n in &t.cluster("cluster3").context("cluster3")?.nodes {
        if sys::exec_in(
            &n.netns,
            &["nft", "list", "table", "inet", "subsea-clusterset-ip"],
        )
        .is_ok()
        {
            r.stale
                .push(format!("{}: nftables table subsea-clusterset-ip", n.name));
        }
    }
    println!("{}", r.line(1));
    rows.push(r);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::selected;

    #[test]
    fn faults_are_picked_by_any_of_several_texts() {
        assert!(selected(None, "cluster3 uninstalled"));
        assert!(selected(
            Some("broker,WAN"),
            "WAN cut between cluster1 and cluster3 only"
        ));
        assert!(selected(
            Some("broker, WAN"),
            "broker down 60 s, an export made meanwhile"
        ));
        assert!(!selected(Some("broker,WAN"), "cluster3 uninstalled"));
        assert!(!selected(Some(","), "route agent killed (client's node)"));
    }
}
