//! The fault suite (`fault-suite`, and `e2e/tests/faults.rs` with 2 rounds): a 3-cluster
//! sandbox with an echo server in cluster1, watched from a pod in cluster2 (a new connection
//! every 50 ms and one long-lived connection) while each fault is injected and healed, round
//! after round. One table row per fault: outage median and max, whether the long-lived
//! connection survived every round, rounds recovered, and stale objects left on the broker.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::sandbox::echo::Watch;
use crate::sandbox::harness::{
    self, active_gateway, broker_imports, export, heal, partition, partition_between,
};
use crate::sandbox::{Pod, Sandbox, sys};

/// One fault: how to cause it and how to undo it, and how long it lasts.
struct Fault {
    name: &'static str,
    hold: Duration,
    inject: fn(&mut Sandbox) -> Result<String>,
    heal: fn(&mut Sandbox, &str) -> Result<()>,
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
        },
        Fault {
            name: "route agent killed (client's node)",
            hold: Duration::from_secs(3),
            inject: |sb| kill(sb, "cluster2-worker/route-agent"),
            heal: restart,
        },
        Fault {
            name: "Lighthouse agent killed (cluster1)",
            hold: Duration::from_secs(3),
            inject: |sb| kill(sb, "cluster1/lighthouse-agent"),
            heal: restart,
        },
        Fault {
            name: "Lighthouse DNS killed (cluster2, the client's)",
            hold: Duration::from_secs(3),
            inject: |sb| kill(sb, "cluster2/lighthouse-dns"),
            heal: restart,
        },
        Fault {
            name: "cluster1 API server SIGKILL, back after 3 s",
            hold: Duration::from_secs(3),
            inject: |sb| kill(sb, "cluster1/apiserver"),
            heal: restart,
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
        },
        Fault {
            name: "WAN cut between cluster1 and cluster3 only",
            hold: Duration::from_secs(8),
            inject: |sb| {
                partition_between(sb, "cluster1", "cluster3")?;
                Ok("cluster1".into())
            },
            heal: |sb, c| heal(sb, c),
        },
        Fault {
            name: "cluster1 cut off the WAN for 8 s",
            hold: Duration::from_secs(8),
            inject: |sb| {
                partition(sb, "cluster1")?;
                Ok("cluster1".into())
            },
            heal: |sb, c| heal(sb, c),
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
    /// Wrong DNS answers (an address that is not the service's) over all rounds.
    pub dns_wrong: u64,
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
            "| {} | {rounds} | {:.2} s | {max:.2} s | {} | {}/{rounds} | {} | {:.2} s | {} |",
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
            self.dns_wrong
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
        dns_wrong: 0,
    }
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

/// Runs every fault `rounds` times (the broker outage lasting `broker_seconds`), then
/// uninstalls cluster3 while traffic flows; returns the table rows, printing them as it goes.
pub fn run(rounds: usize, broker_seconds: u64) -> Result<Vec<Row>> {
    let mut up = harness::up("faults", 3, false)?;
    let sb = &mut up.0;
    let (client, addr) = harness::echo_pair(sb)?;
    let bin = sb.binary("subsea-sandbox");
    // The DNS probe's service, exported by cluster1; and one cluster2 exports during a fault.
    sb.deploy("cluster1", "web", "default", 1, false, 80, 8080)?;
    sb.deploy("cluster2", "late", "default", 1, false, 80, 8080)?;
    export(sb, "export", "web", "cluster1")?;
    let web_ip = sb.kubectl(
        "cluster1",
        &[
            "get",
            "service",
            "web",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    )?;
    harness::eventually("web resolves from cluster2", Duration::from_secs(60), || {
        let got = sys::exec_in(&client.netns, &["dig", "+short", "+time=1", "+tries=1", NAME])?;
        if got.trim() != web_ip.trim() {
            bail!("{got:?}");
        }
        Ok(())
    });
    sys::exec_in(
        &client.netns,
        &[&bin, "probe", &addr, "--start", "0", "--deadline", "90"],
    )
    .context("no cross-cluster connection before the faults")?;
    println!(
        "| fault | rounds | outage median | outage max | long-lived connection survived | recovered | stale objects | DNS bad (max) | wrong DNS answers |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for f in faults(broker_seconds) {
        let mut r = row(f.name);
        for _ in 0..rounds {
            // The watch spans the fault and the recovery: 1 s before, the hold, and 8 s after.
            let secs = 1.0 + f.hold.as_secs_f64() + 8.0;
            let watcher = watch(sb, &client, &addr, &web_ip, secs)?;
            std::thread::sleep(Duration::from_secs(1));
            let what = (f.inject)(sb)?;
            std::thread::sleep(f.hold);
            (f.heal)(sb, &what)?;
            record(&mut r, &result(watcher)?);
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
        println!("{}", r.line(rounds));
        rows.push(r);
    }
    // One cluster leaves while the others keep running.
    let mut r = row("cluster3 uninstalled");
    let watcher = watch(sb, &client, &addr, &web_ip, 12.0)?;
    std::thread::sleep(Duration::from_secs(1));
    let t = sb.topology()?.clone();
    let cp = t
        .cluster("cluster3")
        .context("cluster3")?
        .control_plane()
        .netns
        .clone();
    let kc = sb.inner_kubeconfig("cluster3").display().to_string();
    sys::exec_in(
        &cp,
        &[&sb.binary("subctl"), "uninstall", "--kubeconfig", &kc, "-y"],
    )?;
    record(&mut r, &result(watcher)?);
    r.stale = settled(sb, 2)?;
    println!("{}", r.line(1));
    rows.push(r);
    Ok(rows)
}
