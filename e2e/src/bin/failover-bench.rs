//! `failover-bench`: how long cross-cluster TCP is down when the active gateway dies, and how
//! long a fresh sandbox takes from `subctl join` to the first cross-cluster connection.
//!
//! Builds a two-cluster sandbox, then for each round: SIGKILLs cluster1's active gateway,
//! waits until the process is gone, and probes from a cluster2 pod to a cluster1 pod (100 ms
//! connect attempts every 20 ms); the time from the kill to the first successful connect is
//! the failover time. The
//! killed gateway is restarted (as passive) before the next round. Needs root.

use std::time::Duration;

use anyhow::{Result, bail};
use subsea_e2e::sandbox::{Sandbox, echo, harness, sys};
use subsea_nettest::stats;

fn active_gateway(sb: &Sandbox) -> Result<String> {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(sb.kubeconfig())
        .args([
            "--context",
            "cluster1",
            "get",
            "endpoints.submariner.io",
            "-n",
            "submariner-operator",
        ])
        .args([
            "-o",
            "jsonpath={.items[?(@.spec.cluster_id==\"cluster1\")].spec.hostname}",
        ])
        .output()?;
    let host = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if host.is_empty() || host.contains(' ') {
        bail!("cluster1 has {host:?} as local Endpoint hostnames");
    }
    Ok(host)
}

fn run(rounds: usize) -> Result<()> {
    let started = echo::epoch_micros();
    let mut guard = harness::up("fbench", 2, false)?;
    let sb = &mut guard.0;
    (|| -> Result<()> {
        let (client, addr) = harness::echo_pair(sb)?;
        let bin = sb.binary("subsea-sandbox");
        let at = sys::exec_in(
            &client.netns,
            &[&bin, "probe", &addr, "--start", "0", "--deadline", "60"],
        )?;
        let first: u64 = at.trim().parse()?;
        let join_to_tcp = first.saturating_sub(started) as f64 / 1e6;
        println!(
            "from nothing (API servers, deploy-broker, joins, gateways) to the first cross-cluster TCP connect: {join_to_tcp:.2} s"
        );
        let mut times = Vec::new();
        for round in 1..=rounds {
            let active = active_gateway(&sb)?;
            // Probing starts once the gateway is dead (a connection made while it is dying
            // would count as an instant failover); the time counts from the kill.
            let kill_at = echo::epoch_micros();
            sb.kill(&format!("{active}/gateway"))?;
            let prober = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &client.netns,
                    &bin,
                    "probe",
                    &addr,
                    "--start",
                    "0",
                    "--deadline",
                    "60",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()?;
            let out = prober.wait_with_output()?;
            if !out.status.success() {
                bail!("round {round}: traffic did not come back within 60 s");
            }
            let ok: u64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
            let secs = ok.saturating_sub(kill_at) as f64 / 1e6;
            println!("round {round:>2}: killed {active:<13} → TCP again after {secs:.2} s");
            times.push(secs);
            sb.restart(&format!("{active}/gateway"))?;
            // Let the restarted gateway settle as passive before the next kill.
            std::thread::sleep(Duration::from_secs(3));
        }
        let max = times.iter().copied().fold(0.0, f64::max);
        println!(
            "\nfailover over {rounds} kills: median {:.2} s, max {max:.2} s (goal ≤ 1 s median, ≤ 1.5 s max)",
            stats::median(&mut times)
        );
        Ok(())
    })()
}

fn main() -> std::process::ExitCode {
    let rounds = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    match run(rounds) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("✗ {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
