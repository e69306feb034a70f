//! The fault suite (`fault-suite`, and `e2e/tests/faults.rs` with 2 rounds): a 3-cluster
//! sandbox with an echo server in cluster1, watched from a pod in cluster2 (a new connection
//! every 50 ms and one long-lived connection) while each fault is injected and healed, round
//! after round. One table row per fault: outage median and max, whether the long-lived
//! connection survived every round, rounds recovered, and stale objects left on the broker.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::sandbox::echo::Watch;
use crate::sandbox::harness::{self, active_gateway, heal, partition};
use crate::sandbox::{Pod, Sandbox, sys};

/// One fault: how to cause it and how to undo it, and how long it lasts.
struct Fault {
    name: &'static str,
    hold: Duration,
    inject: fn(&mut Sandbox) -> Result<String>,
    heal: fn(&mut Sandbox, &str) -> Result<()>,
}

fn kill_restart(sb: &mut Sandbox, label: &str) -> Result<String> {
    sb.kill(label)?;
    Ok(label.to_string())
}

fn restart(sb: &mut Sandbox, label: &str) -> Result<()> {
    sb.restart(label)
}

const FAULTS: &[Fault] = &[
    Fault {
        // Restarted only after the other gateway took over (a restart at once would resume
        // the lease it still holds, which is a restart, not a failover).
        name: "active gateway SIGKILL (cluster1)",
        hold: Duration::from_secs(4),
        inject: |sb| {
            let g = active_gateway(sb, "cluster1")?;
            kill_restart(sb, &format!("{g}/gateway"))
        },
        heal: restart,
    },
    Fault {
        name: "route agent killed (client's node)",
        hold: Duration::from_secs(3),
        inject: |sb| kill_restart(sb, "cluster2-worker/route-agent"),
        heal: restart,
    },
    Fault {
        name: "Lighthouse agent killed (cluster1)",
        hold: Duration::from_secs(3),
        inject: |sb| kill_restart(sb, "cluster1/lighthouse-agent"),
        heal: restart,
    },
    Fault {
        name: "Lighthouse DNS killed (cluster2)",
        hold: Duration::from_secs(3),
        inject: |sb| kill_restart(sb, "cluster2/lighthouse-dns"),
        heal: restart,
    },
    Fault {
        name: "cluster1 API server SIGKILL",
        hold: Duration::from_secs(3),
        inject: |sb| kill_restart(sb, "cluster1/apiserver"),
        heal: restart,
    },
    Fault {
        name: "broker API server down",
        hold: Duration::from_secs(10),
        inject: |sb| kill_restart(sb, "broker/apiserver"),
        heal: restart,
    },
    Fault {
        name: "cluster1 cut off the WAN",
        hold: Duration::from_secs(8),
        inject: |sb| {
            partition(sb, "cluster1")?;
            Ok("cluster1".into())
        },
        heal: |sb, c| heal(sb, c),
    },
];

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
            "| {} | {rounds} | {:.2} s | {max:.2} s | {} | {}/{rounds} | {} |",
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
            }
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

fn watch(sb: &Sandbox, client: &Pod, addr: &str, secs: f64) -> Result<std::process::Child> {
    Ok(std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &client.netns,
            &sb.binary("subsea-sandbox"),
            "watch",
            addr,
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

/// Runs every fault `rounds` times; returns the table rows (printing them as it goes).
pub fn run(rounds: usize) -> Result<Vec<Row>> {
    let mut up = harness::up("faults", 3, false)?;
    let sb = &mut up.0;
    let server = sb.add_pod("cluster1", "cluster1-worker", "server", "default")?;
    let client = sb.add_pod("cluster2", "cluster2-worker", "client", "default")?;
    let bin = sb.binary("subsea-sandbox");
    sb.start_in_pod(
        "cluster1",
        "server",
        "echo",
        vec![bin.clone(), "echo-server".into()],
    )?;
    let addr = format!("{}:7000", server.ips[0]);
    sys::exec_in(
        &client.netns,
        &[&bin, "probe", &addr, "--start", "0", "--deadline", "90"],
    )
    .context("no cross-cluster connection before the faults")?;
    println!(
        "| fault | rounds | outage median | outage max | long-lived connection survived | recovered | stale objects |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for f in FAULTS {
        let mut row = Row {
            fault: f.name,
            outages: Vec::new(),
            survived: 0,
            recovered: 0,
            stale: Vec::new(),
        };
        for _ in 0..rounds {
            // The watch spans the fault and the recovery: 1 s before, the hold, and 8 s after.
            let secs = 1.0 + f.hold.as_secs_f64() + 8.0;
            let watcher = watch(sb, &client, &addr, secs)?;
            std::thread::sleep(Duration::from_secs(1));
            let what = (f.inject)(sb)?;
            std::thread::sleep(f.hold);
            (f.heal)(sb, &what)?;
            let w = result(watcher)?;
            row.outages.push(w.longest_outage);
            row.survived += usize::from(w.long_lived_survived);
            row.recovered += usize::from(w.recovered);
            // Settle before the next round: the path must work again.
            sys::exec_in(
                &client.netns,
                &[&bin, "probe", &addr, "--start", "0", "--deadline", "60"],
            )
            .with_context(|| format!("no connection after {}", f.name))?;
        }
        // Objects a failover or restart may leave behind take the gateways' stale-Endpoint
        // cleanup to go: allow it a moment.
        let mut left = stale(sb, 3)?;
        for _ in 0..20 {
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            left = stale(sb, 3)?;
        }
        row.stale = left;
        println!("{}", row.line(rounds));
        rows.push(row);
    }
    if rows.is_empty() {
        bail!("no faults ran");
    }
    Ok(rows)
}
