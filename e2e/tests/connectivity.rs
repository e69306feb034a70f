//! End to end in the sandbox (needs root): three dual-stack clusters joined to a broker with
//! the real subctl, full mesh of userspace WireGuard tunnels, TCP over IPv4 and IPv6 from pods
//! on gateway and non-gateway nodes to remote pods and remote Service ClusterIPs with every
//! byte and the source address checked, `wg show`, the Gateway status and metrics, and a
//! gateway failover.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;
use subsea_e2e::sandbox::harness::{self, active_gateway, eventually, is_root, kill_active_gateway};
use subsea_e2e::sandbox::{Pod, Role, Sandbox, sys};

/// Sends a payload from a pod to `addr` through the echo checker.
fn echo(sb: &Sandbox, from: &Pod, addr: &str, bytes: usize) -> Result<()> {
    let bin = sb.binary("subsea-sandbox");
    sys::exec_in(
        &from.netns,
        &[
            &bin,
            "echo-check",
            addr,
            "--bytes",
            &bytes.to_string(),
            "--timeout",
            "3",
        ],
    )
    .map(|_| ())
}

#[test]
fn three_clusters_connect_pods_and_services_and_survive_a_gateway_failover() {
    assert!(
        is_root(),
        "the sandbox e2e test needs root (network namespaces, TUN devices): run the suite as root, as .ci/run does"
    );
    let mut up = harness::up("e2e", 3, true).expect("sandbox comes up");
    let sb = &mut up.0;
    let t = sb.topology().expect("topology").clone();

    // A pod with an echo server on every non-control-plane node, and a Service in front of
    // the worker's pod.
    let mut pods: Vec<Pod> = Vec::new();
    for c in &t.clusters {
        for n in c.nodes.iter().filter(|n| n.role != Role::ControlPlane) {
            let name = format!("echo-{}", n.name.rsplit('-').next().unwrap_or("x"));
            let pod = sb.add_pod(&c.id, &n.name, &name, "default").expect("pod");
            let bin = sb.binary("subsea-sandbox");
            sb.start_in_pod(
                &c.id,
                &name,
                "echo",
                vec![bin, "echo-server".into(), "--port".into(), "7000".into()],
            )
            .expect("echo server");
            pods.push(pod);
        }
        let worker_ip = &pods.last().expect("a pod").ips[0];
        let svc = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: default}}\nspec:\n  ports: [{{name: echo, port: 80, targetPort: 7000, protocol: TCP}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: echo-1, namespace: default, labels: {{kubernetes.io/service-name: echo}}}}\naddressType: IPv4\nports: [{{name: echo, port: 7000, protocol: TCP}}]\nendpoints: [{{addresses: [\"{worker_ip}\"], conditions: {{ready: true}}}}]\n"
        );
        subsea_e2e::sandbox::kubectl_stdin(&sb.kubeconfig(), &c.id, &["apply", "-f", "-"], &svc)
            .expect("service");
    }
    // Pods resolve through their cluster's DNS address, as the kubelet would configure them.
    let resolv = sys::exec_in(&pods[0].netns, &["cat", "/etc/resolv.conf"]).expect("resolv.conf");
    assert!(
        resolv.contains("nameserver 100.65.0.10") && resolv.contains("search default.svc.cluster.local"),
        "{resolv}"
    );
    let cluster_ip = |c: &str| {
        sb.kubectl(c, &["get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"])
            .expect("service IP")
    };
    let service_ips: Vec<(String, String)> = t
        .clusters
        .iter()
        .map(|c| (c.id.clone(), cluster_ip(&c.id)))
        .collect();

    // Full mesh, both directions: every pod to every remote pod and remote ClusterIP.
    let mut checked = 0;
    for from in &pods {
        for to in pods.iter().filter(|p| p.cluster != from.cluster) {
            let addr = format!("{}:7000", to.ips[0]);
            eventually(
                &format!(
                    "{}/{} → {}/{} ({addr})",
                    from.cluster, from.name, to.cluster, to.name
                ),
                Duration::from_secs(60),
                || echo(sb, from, &addr, 1 << 20),
            );
            checked += 1;
        }
        for to in pods.iter().filter(|p| p.cluster != from.cluster) {
            let addr = format!("[{}]:7000", to.ips[1]);
            eventually(
                &format!(
                    "{}/{} → {}/{} over IPv6 ({addr})",
                    from.cluster, from.name, to.cluster, to.name
                ),
                Duration::from_secs(30),
                || echo(sb, from, &addr, 64 << 10),
            );
            checked += 1;
        }
        for (c, ip) in service_ips.iter().filter(|(c, _)| *c != from.cluster) {
            let addr = format!("{ip}:80");
            eventually(
                &format!("{}/{} → service echo in {c} ({addr})", from.cluster, from.name),
                Duration::from_secs(30),
                || echo(sb, from, &addr, 1 << 20),
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 9 * 6 * 2 + 9 * 2);

    // A large transfer exercises MTU handling from a non-gateway node (and, below, from a pod on
    // a gateway node).
    let worker1 = pods
        .iter()
        .find(|p| p.cluster == "cluster1" && p.name == "echo-worker")
        .expect("worker pod");
    let worker2 = pods
        .iter()
        .find(|p| p.cluster == "cluster2" && p.name == "echo-worker")
        .expect("worker pod");
    echo(sb, worker1, &format!("{}:7000", worker2.ips[0]), 50_000_000)
        .expect("50 MB cross-cluster transfer from a worker");
    let gw_pod = pods
        .iter()
        .find(|p| p.cluster == "cluster3" && p.name == "echo-gw1")
        .expect("gateway-node pod");
    echo(sb, gw_pod, &format!("{}:7000", worker1.ips[0]), 50_000_000)
        .expect("50 MB cross-cluster transfer from a gateway node's pod");

    // The active Gateway reports both remote clusters connected.
    eventually(
        "cluster1's Gateway status lists two connected clusters with health-check RTTs",
        Duration::from_secs(20),
        || {
            let active = active_gateway(sb, "cluster1")?;
            let out = sb.kubectl(
                "cluster1",
                &[
                    "get",
                    "gateways.submariner.io",
                    "-n",
                    "submariner-operator",
                    &active,
                    "-o",
                    "json",
                ],
            )?;
            let g: Value = serde_json::from_str(&out)?;
            let connected = g["status"]["connections"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| {
                    c["status"] == "connected"
                        && c["latencyRTT"]["last"].as_str().is_some_and(|l| !l.is_empty())
                })
                .count();
            if g["status"]["haStatus"] != "active" || connected != 2 {
                bail!(
                    "haStatus {} with {connected} connected: {}",
                    g["status"]["haStatus"],
                    g["status"]
                );
            }
            Ok(())
        },
    );

    // wireguard-tools sees the userspace device through its UAPI socket.
    let active = active_gateway(sb, "cluster1").expect("active gateway");
    let argv = sb
        .exec_argv(
            "cluster1",
            &active,
            &["wg".into(), "show".into(), "submariner".into()],
        )
        .expect("argv");
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .expect("wg runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wg show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("peer: ").count(), 2, "{text}");
    assert!(
        text.contains("latest handshake") && text.contains("listening port: 4500"),
        "{text}"
    );

    // Prometheus metrics with Submariner's names, on the active gateway.
    eventually(
        "the active gateway's /metrics lists its connections",
        Duration::from_secs(15),
        || {
            let ns = &t
                .cluster("cluster1")
                .and_then(|c| c.nodes.iter().find(|n| n.name == active))
                .expect("node")
                .netns;
            let text = sys::exec_in(ns, &["curl", "-sf", "http://127.0.0.1:32780/metrics"])?;
            let connected = text
                .lines()
                .filter(|l| l.starts_with("submariner_connections{") && l.contains("status=\"connected\""))
                .count();
            if connected != 2
                || !text.contains("submariner_gateway_rx_bytes{")
                || !text.contains("submariner_connection_latency_seconds{")
            {
                bail!("metrics incomplete:\n{text}");
            }
            Ok(())
        },
    );

    // Misbehaving clusters on the broker: a garbage key, an address that is none, cluster2's pod
    // CIDR, and 300 subnets. Every gateway skips each with its reason, said once, and keeps
    // every real tunnel.
    let pod_cidr2 = t.cluster("cluster2").expect("cluster2").pod_cidrs[0].clone();
    let many: Vec<String> = (0..300)
        .map(|i| format!("10.200.{i}.0/24", i = i % 256))
        .collect();
    let bad = [
        (
            "evil1",
            vec!["10.201.0.0/16".to_string()],
            "not-a-key",
            "172.30.9.9",
            "publicKey",
        ),
        (
            "evil2",
            vec!["10.202.0.0/16".to_string()],
            "",
            "nonsense",
            "valid public nor private IP",
        ),
        ("evil3", vec![pod_cidr2.clone()], "", "172.30.9.9", "overlap"),
        ("evil4", many, "", "172.30.9.9", "300 subnets"),
    ];
    for (id, subnets, key, ip, _) in &bad {
        let key = if key.is_empty() {
            "2HBSaIgHYnmNVjjqUsD0sBr2gPLDjMO+BS3fD8TumHg="
        } else {
            key
        };
        let ep = serde_json::json!({"apiVersion": "submariner.io/v1", "kind": "Endpoint",
            "metadata": {"name": format!("{id}-submariner-cable-{id}-172-30-9-9"), "namespace": "submariner-k8s-broker",
                "labels": {"submariner-io/clusterID": id}},
            "spec": {"cluster_id": id, "cable_name": format!("submariner-cable-{id}-172-30-9-9"), "hostname": "evil",
                "subnets": subnets, "private_ip": ip, "public_ip": "", "nat_enabled": false, "backend": "wireguard",
                "backend_config": {"publicKey": key}}});
        subsea_e2e::sandbox::kubectl_stdin(
            &sb.kubeconfig(),
            "broker",
            &["apply", "-f", "-"],
            &ep.to_string(),
        )
        .expect("a misbehaving Endpoint on the broker");
    }
    let gw_log = sb.logs().join(format!("{active}-gateway.log"));
    eventually(
        "cluster1's gateway skips every misbehaving cluster",
        Duration::from_secs(30),
        || {
            let log = std::fs::read_to_string(&gw_log)?;
            for (id, _, _, _, why) in &bad {
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("not connecting") && l.contains(&format!("cluster={id} ")))
                    .collect();
                if lines.len() != 1 || !lines[0].contains(why) {
                    bail!("{id}: {lines:?}");
                }
            }
            Ok(())
        },
    );
    // Still said once a few passes later, and the real tunnels carry traffic.
    std::thread::sleep(Duration::from_secs(3));
    let log = std::fs::read_to_string(&gw_log).expect("gateway log");
    for (id, ..) in &bad {
        let n = log
            .lines()
            .filter(|l| l.contains("not connecting") && l.contains(&format!("cluster={id} ")))
            .count();
        assert_eq!(n, 1, "{id}'s reason logged {n} times");
    }
    echo(sb, worker2, &format!("{}:7000", worker1.ips[0]), 64 << 10)
        .expect("traffic with misbehaving clusters around");
    echo(sb, worker1, &format!("{}:7000", worker2.ips[0]), 64 << 10)
        .expect("traffic with misbehaving clusters around");
    for (id, ..) in &bad {
        sb.kubectl(
            "broker",
            &[
                "delete",
                "endpoints.submariner.io",
                "-n",
                "submariner-k8s-broker",
                "-l",
                &format!("submariner-io/clusterID={id}"),
            ],
        )
        .expect("remove the misbehaving Endpoint");
    }

    // Failover: kill cluster1's active gateway; traffic must come back through the other one.
    let active = kill_active_gateway(sb, "cluster1").expect("kill the active gateway");
    let killed = Instant::now();
    let addr = format!("{}:7000", worker1.ips[0]);
    eventually(
        "traffic after the gateway failover",
        Duration::from_secs(60),
        || echo(sb, worker2, &addr, 64 << 10),
    );
    let new_active = active_gateway(sb, "cluster1").expect("new active gateway");
    assert_ne!(new_active, active, "another gateway took over");
    eprintln!(
        "failover: traffic restored {:.1} s after the active gateway was killed (probed with 5 s connects; see failover-bench for the precise figure)",
        killed.elapsed().as_secs_f64()
    );
}
