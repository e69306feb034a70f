//! `sd-bench`: how long from `ServiceExport` create in cluster1 to a correct DNS answer in
//! cluster2, over N exports (default 100), in a two-cluster sandbox. Each service is a
//! ClusterIP Service with a ready EndpointSlice (no pods needed); the time runs from the
//! `kubectl apply` of the export (so it includes one kubectl start, ≈ 50 ms) to the first `dig`
//! from a cluster2 pod that returns its ClusterIP. One warm-up export is not counted. Root.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use subsea_e2e::sandbox::{harness, kubectl_stdin, sys};
use subsea_nettest::stats;

fn run(n: usize) -> Result<()> {
    let mut guard = harness::up("sdbench", 2, false)?;
    let sb = &mut guard.0;
    (|| -> Result<()> {
        let client = sb.add_pod("cluster2", "cluster2-worker", "client", "default")?;
        let kc = sb.kubeconfig();
        let mut times = Vec::with_capacity(n);
        // Round 0 warms up (agents finishing their start, first watches); it is not counted.
        for i in 0..=n {
            let name = format!("bench-{i}");
            let svc = format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  ports: [{{name: http, port: 80, protocol: TCP}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\nports: [{{name: http, port: 80, protocol: TCP}}]\nendpoints: [{{addresses: [\"10.129.4.200\"], conditions: {{ready: true}}}}]\n"
            );
            kubectl_stdin(&kc, "cluster1", &["apply", "-f", "-"], &svc)?;
            let ip = kubectl_stdin(
                &kc,
                "cluster1",
                &["get", "svc", &name, "-o", "jsonpath={.spec.clusterIP}"],
                "",
            )?;
            let export = format!(
                "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: {{name: {name}, namespace: default}}\n"
            );
            let fqdn = format!("{name}.default.svc.clusterset.local");
            let start = Instant::now();
            kubectl_stdin(&kc, "cluster1", &["apply", "-f", "-"], &export)?;
            loop {
                let out = sys::exec_in(&client.netns, &["dig", "+short", "+time=1", "+tries=1", &fqdn])
                    .unwrap_or_default();
                if out.trim() == ip {
                    break;
                }
                if start.elapsed() > Duration::from_secs(30) {
                    bail!("{fqdn} did not resolve to {ip} within 30 s");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if i == 0 {
                continue;
            }
            times.push(start.elapsed().as_secs_f64() * 1e3);
            if std::env::var_os("SD_BENCH_VERBOSE").is_some() {
                eprintln!("{name}: {:.0} ms", start.elapsed().as_secs_f64() * 1e3);
            }
        }
        stats::sort(&mut times);
        let (p50, p99) = (stats::percentile(&times, 0.5), stats::percentile(&times, 0.99));
        println!(
            "ServiceExport in cluster1 → correct answer in cluster2, {n} exports: p50 {p50:.0} ms, p99 {p99:.0} ms (goal p50 ≤ 200 ms, p99 ≤ 1 s)"
        );
        Ok(())
    })()
}

fn main() -> std::process::ExitCode {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    match run(n) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("✗ {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
