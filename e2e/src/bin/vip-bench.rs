//! `vip-bench`: what the routed ClusterSetIP costs. In a two-cluster sandbox with ClusterSetIPs
//! on, a latency server pod in cluster1 behind a Service exported with a VIP, and a client pod
//! in cluster2. Each round runs `subsea nettest latency --new-connections` (connect, 1-byte
//! request and response, close: netperf's TCP_CRR) for SECONDS against cluster1's service IP,
//! then against the VIP (the same path plus one destination NAT on the client's node); rounds
//! interleave the two. Prints the medians over ROUNDS of connections per second and of the
//! per-connection p50/p99, and the VIP/service-IP ratios. Root.
//!
//! Usage: vip-bench [ROUNDS (5)] [SECONDS (3)]

use std::time::Duration;

use anyhow::{Context, Result, bail};
use subsea_e2e::sandbox::{harness, kubectl_stdin, sys};
use subsea_nettest::latency::Summary;
use subsea_nettest::stats;

const PORT: u16 = 7001;

fn run(rounds: usize, seconds: u64) -> Result<()> {
    let mut guard = harness::up_clusterset_ip("vipbench", 2, false)?;
    let sb = &mut guard.0;
    let server = sb.add_pod("cluster1", "cluster1-worker", "server", "default")?;
    let client = sb.add_pod("cluster2", "cluster2-worker", "client", "default")?;
    let subsea = sb.binary("subsea");
    sb.start_in_pod(
        "cluster1",
        "server",
        "latency",
        vec![
            subsea.clone(),
            "nettest".into(),
            "latency-server".into(),
            "--port".into(),
            PORT.to_string(),
        ],
    )?;
    let kc = sb.kubeconfig();
    let objects = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: rr, namespace: default}}\nspec:\n  ports: [{{name: rr, port: {PORT}, protocol: TCP}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: rr-1, namespace: default, labels: {{kubernetes.io/service-name: rr}}}}\naddressType: IPv4\nports: [{{name: rr, port: {PORT}, protocol: TCP}}]\nendpoints: [{{addresses: [\"{}\"], conditions: {{ready: true}}}}]\n---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: {{name: rr, namespace: default}}\n",
        server.ips[0]
    );
    kubectl_stdin(&kc, "cluster1", &["apply", "-f", "-"], &objects)?;
    let service_ip = kubectl_stdin(
        &kc,
        "cluster1",
        &["get", "svc", "rr", "-o", "jsonpath={.spec.clusterIP}"],
        "",
    )?;
    let vip = harness::eventually("cluster2 imports the VIP", Duration::from_secs(60), || {
        let ips = kubectl_stdin(
            &kc,
            "cluster2",
            &["get", "serviceimport", "rr", "-o", "jsonpath={.spec.ips[0]}"],
            "",
        )?;
        if ips.trim().is_empty() {
            bail!("no VIP yet");
        }
        Ok(ips.trim().to_string())
    });
    let measure = |addr: &str, secs: u64| -> Result<Summary> {
        let out = sys::exec_in(
            &client.netns,
            &[
                &subsea,
                "nettest",
                "latency",
                &format!("{addr}:{PORT}"),
                "--seconds",
                &secs.to_string(),
                "--new-connections",
            ],
        )?;
        subsea_nettest::report::find(&out).with_context(|| format!("no RESULT line from the client: {out}"))
    };
    // Both paths answer before anything is timed (routes, tunnel, VIP rules in place).
    for addr in [service_ip.trim(), vip.as_str()] {
        harness::eventually("the path answers", Duration::from_secs(60), || measure(addr, 1));
    }
    let (mut direct, mut via_vip) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        direct.push(measure(service_ip.trim(), seconds)?);
        via_vip.push(measure(&vip, seconds)?);
        eprintln!(
            "round {}: service IP {:.0}/s p50 {:.0} µs, VIP {:.0}/s p50 {:.0} µs",
            r + 1,
            direct[r].per_second,
            direct[r].p50_us,
            via_vip[r].per_second,
            via_vip[r].p50_us
        );
    }
    let median = |runs: &[Summary], f: fn(&Summary) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        stats::sort(&mut v);
        stats::percentile(&v, 0.5)
    };
    let rows = [
        (
            "connections/s",
            (|s: &Summary| s.per_second) as fn(&Summary) -> f64,
        ),
        ("p50 µs", |s: &Summary| s.p50_us),
        ("p99 µs", |s: &Summary| s.p99_us),
    ];
    println!(
        "| measure (median of {rounds} rounds × {seconds} s, TCP_CRR) | service IP | VIP | VIP / service IP |"
    );
    println!("|---|---|---|---|");
    for (name, f) in rows {
        let (d, v) = (median(&direct, f), median(&via_vip, f));
        println!("| {name} | {d:.0} | {v:.0} | {:.2} |", v / d.max(1e-9));
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    match run(arg(1, 5) as usize, arg(2, 3)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("✗ {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
