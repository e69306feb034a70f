//! Day-2 operations end to end in the sandbox (needs root): `subctl verify` (with its JUnit
//! report, passing on a healthy pair, gateway failover on request, and failing with the reason
//! when the tunnels are down),
//! `subctl benchmark throughput|latency`, `subctl gather` (redaction included) and `subctl
//! diagnose firewall` (the path MTU, and a black hole). Their pods are run by the sandbox's
//! kubelet stand-in.

use std::process::Output;

use subsea_e2e::sandbox::harness::{self, is_root};
use subsea_e2e::sandbox::{Sandbox, kubectl_stdin, sys};

fn subctl(sb: &Sandbox, args: &[&str]) -> Output {
    std::process::Command::new(sb.binary("subctl"))
        .args(args)
        .arg("--kubeconfig")
        .arg(sb.kubeconfig())
        .output()
        .expect("run subctl")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn attr<'a>(xml: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let start = xml.find(&key).map(|i| i + key.len()).unwrap_or(0);
    xml[start..].split('"').next().unwrap_or_default()
}

const PAIR: [&str; 4] = ["--context", "cluster1", "--tocontext", "cluster2"];

#[test]
fn verify_benchmark_and_gather_work_through_pods() {
    assert!(
        is_root(),
        "the sandbox e2e test needs root: run the suite as root, as .ci/run does"
    );
    let up = harness::up("op", 2, true).expect("sandbox comes up");
    let sb = &up.0;
    let dir = sb.dir.clone();

    // A healthy pair: every check passes, IPv6 included (dual-stack sandbox).
    let junit = dir.join("verify.xml");
    let mut args = vec!["verify", "--junit-report", junit.to_str().expect("path")];
    args.extend(PAIR);
    let out = subctl(sb, &args);
    assert!(out.status.success(), "verify failed:\n{}", text(&out));
    let xml = std::fs::read_to_string(&junit).expect("JUnit report");
    assert_eq!(attr(&xml, "tests"), "7", "{xml}");
    assert_eq!(attr(&xml, "failures"), "0", "{xml}");
    assert_eq!(attr(&xml, "skipped"), "0", "{xml}");
    assert!(text(&out).contains("after unexport"), "{}", text(&out));

    // Gateway failover, on request: cluster2's active gateway node is unlabelled, the other
    // takes over, traffic resumes, and the label is back afterwards.
    let mut args = vec!["verify", "--only", "gateway-failover"];
    args.extend(PAIR);
    let out = subctl(sb, &args);
    assert!(out.status.success(), "gateway-failover failed:\n{}", text(&out));
    assert!(
        text(&out).contains("1 passed, 0 failed, 0 skipped"),
        "{}",
        text(&out)
    );
    let labelled = sb
        .kubectl(
            "cluster2",
            &["get", "nodes", "-l", "submariner.io/gateway=true", "-o", "name"],
        )
        .expect("nodes");
    assert_eq!(labelled.lines().count(), 2, "{labelled}");

    // Bad flags are named with the fix.
    let out = subctl(
        sb,
        &[
            "verify",
            "--only",
            "conectivity",
            "--context",
            "cluster1",
            "--tocontext",
            "cluster2",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown check \"conectivity\""),
        "{}",
        text(&out)
    );
    let out = subctl(
        sb,
        &["verify", "--context", "cluster1", "--tocontext", "cluster1"],
    );
    assert!(text(&out).contains("same cluster"), "{}", text(&out));

    // Benchmarks: two rows each, with real figures.
    for kind in ["latency", "throughput"] {
        let mut args = vec!["benchmark", kind, "--seconds", "1", "-o", "json"];
        args.extend(PAIR);
        let out = subctl(sb, &args);
        assert!(out.status.success(), "benchmark {kind} failed:\n{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = &stdout[stdout.find("\n[").expect("a JSON summary") + 1..];
        let rows: Vec<serde_json::Value> = serde_json::from_str(json).expect("rows");
        assert_eq!(rows.len(), 2, "{stdout}");
        assert_eq!(rows[0]["TEST"], "gateway to gateway");
        assert_eq!(rows[1]["TEST"], "non-gateway to non-gateway");
        for r in &rows {
            let figure = match kind {
                "latency" => r["P50"].as_str().and_then(|v| v.strip_suffix(" µs")),
                _ => r["THROUGHPUT"]
                    .as_str()
                    .and_then(|v| v.strip_suffix(" Gbit/s").or_else(|| v.strip_suffix(" Mbit/s"))),
            };
            let value: f64 = figure.and_then(|f| f.parse().ok()).expect("a figure");
            assert!(value > 0.0, "{r}");
        }
    }

    // Gather: resources with secrets redacted, node state from every schedulable node.
    let psk = sb
        .kubectl(
            "cluster1",
            &[
                "get",
                "submariners",
                "-A",
                "-o",
                "jsonpath={.items[0].spec.ceIPSecPSK}",
            ],
        )
        .expect("the PSK");
    assert!(psk.len() > 20, "{psk:?}");
    let gathered = dir.join("gather");
    let out = subctl(sb, &["gather", "--dir", gathered.to_str().expect("path")]);
    assert!(out.status.success(), "gather failed:\n{}", text(&out));
    let c1 = gathered.join("cluster1");
    let submariners = std::fs::read_to_string(c1.join("submariners.yaml")).expect("submariners");
    assert!(submariners.contains("ceIPSecPSK: REDACTED"), "{submariners}");
    for entry in walk(&gathered) {
        let body = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!body.contains(&psk), "{} holds the PSK", entry.display());
    }
    let active = sb
        .kubectl(
            "cluster1",
            &[
                "get",
                "gateways",
                "-n",
                "submariner-operator",
                "-o",
                "jsonpath={.items[?(@.status.haStatus==\"active\")].metadata.name}",
            ],
        )
        .expect("the active gateway");
    let gw =
        std::fs::read_to_string(c1.join("nodes").join(format!("{}.txt", active.trim()))).expect("node state");
    assert!(gw.contains("150:\tfrom all lookup 150"), "{gw}");
    assert!(
        gw.contains("interface: submariner") && gw.contains("preshared key: (hidden)"),
        "{gw}"
    );
    assert!(c1.join("nodes").join("cluster1-worker.txt").exists());
    let log = std::fs::read_to_string(
        c1.join("logs")
            .join(format!("submariner-gateway-{}.log", active.trim())),
    )
    .expect("the active gateway's log");
    assert!(log.contains("became the active gateway"), "{log}");
    let tail = sb
        .kubectl(
            "cluster1",
            &[
                "logs",
                "-n",
                "submariner-operator",
                "submariner-lighthouse-agent",
                "--tail",
                "1",
            ],
        )
        .expect("kubectl logs");
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let shown = std::fs::read_to_string(c1.join("show.txt")).expect("show");
    assert!(shown.contains("connected"), "{shown}");
    let sensitive = dir.join("gather-sensitive");
    let out = subctl(
        sb,
        &[
            "gather",
            "--context",
            "cluster1",
            "--include-sensitive-data",
            "--dir",
            sensitive.to_str().expect("path"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let kept =
        std::fs::read_to_string(sensitive.join("cluster1").join("submariners.yaml")).expect("submariners");
    assert!(kept.contains(&psk), "--include-sensitive-data keeps the PSK");
    // A bundle with secrets in it is readable by its owner only.
    for entry in walk(&sensitive) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&entry).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is mode {:o}", entry.display(), mode & 0o777);
    }
    // No component's log holds the PSK or the cluster's broker token.
    let token = sb
        .kubectl(
            "cluster1",
            &[
                "get",
                "secret",
                "submariner-broker-secret",
                "-n",
                "submariner-operator",
                "-o",
                "go-template={{.data.token | base64decode}}",
            ],
        )
        .expect("the broker token");
    assert!(token.len() > 20, "{token:?}");
    // The active gateway's WireGuard private key, read through its UAPI socket.
    let argv = sb
        .exec_argv(
            "cluster1",
            active.trim(),
            &[
                "wg".into(),
                "show".into(),
                "submariner".into(),
                "private-key".into(),
            ],
        )
        .expect("argv");
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .expect("wg runs");
    let private_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(private_key.len(), 44, "a base64 WireGuard key: {private_key:?}");
    let logs = walk(&sb.logs());
    assert!(logs.len() > 5, "the sandbox keeps its components' logs");
    for entry in logs.iter().chain(walk(&gathered).iter()) {
        let body = std::fs::read_to_string(entry).unwrap_or_default();
        assert!(
            !body.contains(&psk) && !body.contains(token.trim()) && !body.contains(&private_key),
            "{} holds a secret",
            entry.display()
        );
    }

    workloads_roll_out(sb);

    // Firewall: the path MTU is found, and a black hole (ICMP "fragmentation needed" dropped on
    // cluster1's worker node) is named with its fix.
    let out = subctl(sb, &["diagnose", "firewall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("from cluster1 to cluster2: path MTU 1420 bytes"),
        "{}",
        text(&out)
    );
    let worker = sb
        .topology()
        .expect("topology")
        .cluster("cluster1")
        .and_then(|c| c.nodes.iter().find(|n| n.name == "cluster1-worker"))
        .expect("worker")
        .netns
        .clone();
    let drop_icmp = "add table inet blackhole\nadd chain inet blackhole out { type filter hook output priority 0; }\nadd rule inet blackhole out icmp type destination-unreachable drop\n";
    let rules = dir.join("blackhole.nft");
    std::fs::write(&rules, drop_icmp).expect("rules");
    sys::exec_in(&worker, &["nft", "-f", rules.to_str().expect("path")]).expect("nft");
    let out = subctl(
        sb,
        &[
            "diagnose",
            "firewall",
            "--context",
            "cluster1",
            "--remotecontext",
            "cluster2",
        ],
    );
    let _ = sys::exec_in(&worker, &["nft", "delete", "table", "inet", "blackhole"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("from cluster1 to cluster2: packets over 1420 bytes are dropped without ICMP"),
        "{}",
        text(&out)
    );

    // Tunnels down: verify fails each connectivity check with the reason, in the report too.
    for gw in ["cluster2-gw1/gateway", "cluster2-gw2/gateway"] {
        sb.kill(gw).expect("kill gateway");
    }
    let junit = dir.join("verify-down.xml");
    let mut args = vec![
        "verify",
        "--only",
        "connectivity",
        "--operation-timeout",
        "20",
        "--junit-report",
        junit.to_str().expect("path"),
    ];
    args.extend(PAIR);
    let out = subctl(sb, &args);
    assert!(
        !out.status.success(),
        "verify passed with no gateway in cluster2:\n{}",
        text(&out)
    );
    let xml = std::fs::read_to_string(&junit).expect("JUnit report");
    assert_eq!(attr(&xml, "failures"), "4", "{xml}");
    assert!(xml.contains("cannot connect"), "{xml}");
    assert!(
        text(&out).contains("subctl diagnose connections"),
        "{}",
        text(&out)
    );
}

const SETS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: db:1, command: [sleep, "3600"]}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      tolerations: [{operator: Exists}]
      containers: [{name: agent, image: agent:1, command: [sleep, "3600"]}]
"#;

/// Workloads made with kubectl run as pods (the sandbox's controller-manager and kubelet
/// stand-ins) and `kubectl rollout status` follows them as on a real cluster.
fn workloads_roll_out(sb: &Sandbox) {
    let k = |args: &[&str]| {
        sb.kubectl("cluster1", args)
            .unwrap_or_else(|e| panic!("kubectl {}: {e:#}", args.join(" ")))
    };
    let rollout = |what: &str, want: &str| {
        let out = k(&["rollout", "status", what, "--timeout=60s"]);
        assert!(out.contains(want), "rollout status {what}: no {want:?} in {out}");
    };
    // One field of every `kind` object labelled app=`app`, sorted.
    let fields = |kind: &str, app: &str, path: &str| -> Vec<String> {
        let out = k(&[
            "get",
            kind,
            "-l",
            &format!("app={app}"),
            "-o",
            &format!("jsonpath={{{path}}}"),
        ]);
        let mut v: Vec<String> = out.split_whitespace().map(String::from).collect();
        v.sort();
        v
    };
    k(&[
        "create",
        "deployment",
        "web",
        "--image=web:1",
        "--replicas=2",
        "--",
        "sleep",
        "3600",
    ]);
    rollout("deployment/web", "deployment \"web\" successfully rolled out");
    assert_eq!(
        fields("pods", "web", ".items[*].status.phase"),
        ["Running", "Running"]
    );
    k(&["set", "image", "deployment/web", "web=web:2"]);
    rollout("deployment/web", "successfully rolled out");
    assert_eq!(
        fields("rs", "web", ".items[*].spec.replicas"),
        ["0", "2"],
        "the old ReplicaSet is scaled to zero"
    );
    let wide = k(&["get", "deployment", "web", "-o", "wide"]);
    assert!(wide.contains("2/2") && wide.contains("web:2"), "{wide}");
    let described = k(&["describe", "deployment", "web"]);
    assert!(
        described.contains("StrategyType:           RollingUpdate"),
        "{described}"
    );
    assert!(described.contains("NewReplicaSet:"), "{described}");

    kubectl_stdin(&sb.kubeconfig(), "cluster1", &["apply", "-f", "-"], SETS).expect("apply");
    rollout("statefulset/db", "roll out complete");
    assert_eq!(fields("pods", "db", ".items[*].metadata.name"), ["db-0", "db-1"]);
    rollout("daemonset/agent", "daemon set \"agent\" successfully rolled out");
    let nodes = k(&["get", "nodes", "-o", "name"]).lines().count();
    assert_eq!(
        fields("pods", "agent", ".items[*].metadata.name").len(),
        nodes,
        "one agent per node"
    );

    // Deleting the workloads takes their pods (owner references, the API server's GC).
    k(&["delete", "deployment", "web"]);
    k(&["delete", "statefulset", "db"]);
    k(&["delete", "daemonset", "agent"]);
    let mut left = String::new();
    for _ in 0..60 {
        left = k(&["get", "pods", "-l", "app in (web,db,agent)", "-o", "name"]);
        if left.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        left.trim().is_empty(),
        "pods left after their workloads went:\n{left}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
