//! Service discovery end to end in the sandbox (needs root): the seed scenario verbatim —
//! export `payment-service` in cluster1, then from a pod in another cluster `nslookup`, `dig`
//! and `curl http://payment-service.default.svc.clusterset.local/health` — plus local
//! preference, round robin across two exporters, SRV, headless per-pod names, an unhealthy
//! cluster dropped from answers and restored, unexport → NXDOMAIN, an agent restart that
//! withdraws an export deleted while it was down, and a cluster leaving with `subctl uninstall`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use subsea_e2e::sandbox::harness::{self, eventually, is_root, subctl};
use subsea_e2e::sandbox::{Pod, sys};

fn in_pod(pod: &Pod, cmd: &[&str]) -> Result<String> {
    sys::exec_in(&pod.netns, cmd)
}

fn dig(pod: &Pod, args: &[&str]) -> Result<String> {
    let mut cmd = vec!["dig", "+time=1", "+tries=1"];
    cmd.extend_from_slice(args);
    in_pod(pod, &cmd)
}

const NAME: &str = "payment-service.default.svc.clusterset.local";

/// Ok once `name` is NXDOMAIN from `pod`.
fn nxdomain(pod: &Pod, name: &str) -> Result<()> {
    let out = dig(pod, &[name])?;
    if !out.contains("status: NXDOMAIN") {
        bail!("{out}");
    }
    Ok(())
}

#[test]
fn exported_services_resolve_and_answer_across_clusters() {
    assert!(
        is_root(),
        "the sandbox e2e test needs root: run the suite as root, as .ci/run does"
    );
    let mut up = harness::up("sd", 3, true).expect("sandbox comes up");
    let sb = &mut up.0;

    sb.deploy("cluster1", "payment-service", "default", 2, false, 80, 8080)
        .expect("deploy");
    let client2 = sb
        .add_pod("cluster2", "cluster2-worker", "client", "default")
        .expect("client pod");
    let client3 = sb
        .add_pod("cluster3", "cluster3-worker", "client", "default")
        .expect("client pod");
    let out = subctl(
        sb,
        &[
            "export",
            "service",
            "payment-service",
            "-n",
            "default",
            "--context",
            "cluster1",
        ],
    )
    .expect("export");
    assert!(out.contains("Service default/payment-service exported"), "{out}");

    // The export becomes Valid and Ready.
    eventually("the ServiceExport is Ready", Duration::from_secs(20), || {
        let c = sb.kubectl(
            "cluster1",
            &[
                "get",
                "serviceexport",
                "payment-service",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
        )?;
        if c != "True" {
            bail!("Ready is {c:?}");
        }
        Ok(())
    });
    let ip1 = sb
        .kubectl(
            "cluster1",
            &[
                "get",
                "svc",
                "payment-service",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ],
        )
        .expect("ip");

    // The seed scenario, verbatim, from a pod in cluster2.
    eventually("dig from cluster2", Duration::from_secs(20), || {
        let out = dig(&client2, &["+short", NAME])?;
        if out.trim() != ip1 {
            bail!("dig answered {out:?}, want {ip1}");
        }
        Ok(())
    });
    let ns = in_pod(&client2, &["nslookup", NAME]).expect("nslookup");
    assert!(ns.contains(&format!("Address: {ip1}")), "{ns}");
    let body = eventually("curl from cluster2", Duration::from_secs(20), || {
        in_pod(
            &client2,
            &["curl", "-sf", "-m", "3", &format!("http://{NAME}/health")],
        )
    });
    assert!(
        body.starts_with("ok pod=payment-service-") && body.contains("cluster=cluster1"),
        "{body}"
    );
    let shown = subctl(sb, &["show", "service-discovery", "--context", "cluster2"]).expect("show");
    assert!(
        shown
            .lines()
            .any(|l| l.contains("payment-service") && l.contains("import") && l.contains("cluster1")),
        "{shown}"
    );
    let shown = subctl(sb, &["show", "service-discovery", "--context", "cluster1"]).expect("show");
    assert!(
        shown
            .lines()
            .any(|l| l.contains("payment-service") && l.contains("export") && l.contains("exported")),
        "{shown}"
    );
    // Diagnose sees a healthy cluster: joined, labelled, one active gateway, connected tunnels,
    // the export exported.
    let diag = subctl(sb, &["diagnose", "all", "--context", "cluster1"]).expect("diagnose passes");
    assert!(
        diag.contains("is active")
            && diag.contains("is connected")
            && diag.contains("export default/payment-service is exported"),
        "{diag}"
    );
    let srv = dig(&client2, &["+short", "SRV", &format!("_http._tcp.{NAME}")]).expect("srv");
    assert_eq!(srv.trim(), format!("0 50 80 {NAME}."));
    // Dual-stack: the IPv6 ClusterIP answers AAAA, and IPv6 HTTP crosses the tunnel.
    let ip1_v6 = sb
        .kubectl(
            "cluster1",
            &[
                "get",
                "svc",
                "payment-service",
                "-o",
                "jsonpath={.spec.clusterIPs[1]}",
            ],
        )
        .expect("v6 ip");
    assert!(ip1_v6.contains(':'), "dual-stack service: {ip1_v6:?}");
    let aaaa = dig(&client2, &["+short", "AAAA", NAME]).expect("aaaa");
    assert_eq!(aaaa.trim(), ip1_v6);
    let body6 = eventually("curl over IPv6", Duration::from_secs(20), || {
        in_pod(
            &client2,
            &["curl", "-sf", "-6", "-m", "3", &format!("http://{NAME}/health")],
        )
    });
    assert!(body6.contains("cluster=cluster1"), "{body6}");
    let full = dig(&client2, &[NAME]).expect("dig");
    assert!(full.contains("flags: qr aa"), "authoritative: {full}");

    // A second exporter: cluster2 prefers its own, cluster3 alternates between both.
    sb.deploy("cluster2", "payment-service", "default", 1, false, 80, 8080)
        .expect("deploy in cluster2");
    subctl(
        sb,
        &[
            "export",
            "service",
            "payment-service",
            "-n",
            "default",
            "--context",
            "cluster2",
        ],
    )
    .expect("export in cluster2");
    let ip2 = sb
        .kubectl(
            "cluster2",
            &[
                "get",
                "svc",
                "payment-service",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ],
        )
        .expect("ip");
    eventually("cluster2 prefers its own export", Duration::from_secs(20), || {
        for _ in 0..3 {
            let out = dig(&client2, &["+short", NAME])?;
            if out.trim() != ip2 {
                bail!("cluster2 got {out:?}, want its own {ip2}");
            }
        }
        Ok(())
    });
    eventually(
        "cluster3 alternates between the two exporters",
        Duration::from_secs(20),
        || {
            let answers: Vec<String> = (0..4)
                .map(|_| dig(&client3, &["+short", NAME]).map(|s| s.trim().to_string()))
                .collect::<Result<_>>()?;
            if !(answers.contains(&ip1) && answers.contains(&ip2)) {
                bail!("answers {answers:?}");
            }
            Ok(())
        },
    );
    let named = dig(&client3, &["+short", &format!("cluster1.{NAME}")]).expect("dig");
    assert_eq!(named.trim(), ip1, "an explicit cluster name picks that cluster");

    // Cut cluster1's tunnels (both gateways down): cluster3 stops getting cluster1's address
    // once the health check marks the connection failed, and gets it back after.
    for gw in ["cluster1-gw1", "cluster1-gw2"] {
        sb.kill(&format!("{gw}/gateway")).expect("kill");
    }
    eventually(
        "cluster1 leaves cluster3's answers",
        Duration::from_secs(40),
        || {
            let answers: Vec<String> = (0..4)
                .map(|_| dig(&client3, &["+short", NAME]).map(|s| s.trim().to_string()))
                .collect::<Result<_>>()?;
            if answers.iter().any(|a| *a != ip2) {
                bail!("answers {answers:?}");
            }
            Ok(())
        },
    );
    for gw in ["cluster1-gw1", "cluster1-gw2"] {
        sb.restart(&format!("{gw}/gateway")).expect("restart");
    }
    eventually("cluster1 comes back", Duration::from_secs(40), || {
        let answers: Vec<String> = (0..4)
            .map(|_| dig(&client3, &["+short", NAME]).map(|s| s.trim().to_string()))
            .collect::<Result<_>>()?;
        if !answers.contains(&ip1) {
            bail!("answers {answers:?}");
        }
        Ok(())
    });

    // Headless: per-pod names under the cluster.
    let db = sb
        .deploy("cluster1", "db", "default", 2, true, 5432, 5432)
        .expect("headless deploy");
    subctl(
        sb,
        &[
            "export",
            "service",
            "db",
            "-n",
            "default",
            "--context",
            "cluster1",
        ],
    )
    .expect("export db");
    eventually("headless per-pod names", Duration::from_secs(20), || {
        let one = dig(
            &client3,
            &["+short", "db-0.cluster1.db.default.svc.clusterset.local"],
        )?;
        if one.trim() != db[0].ips[0] {
            bail!("db-0 answered {one:?}, want {}", db[0].ips[0]);
        }
        let all = dig(&client3, &["+short", "db.default.svc.clusterset.local"])?;
        if all.lines().count() != 2 {
            bail!("db answered {all:?}");
        }
        Ok(())
    });

    // Unexport everywhere: NXDOMAIN within the TTL window.
    for c in ["cluster1", "cluster2"] {
        subctl(
            sb,
            &[
                "unexport",
                "service",
                "payment-service",
                "-n",
                "default",
                "--context",
                c,
            ],
        )
        .expect("unexport");
    }
    let gone = Instant::now();
    eventually("NXDOMAIN after unexport", Duration::from_secs(20), || {
        nxdomain(&client3, NAME)
    });
    eprintln!("unexport → NXDOMAIN in {:.2} s", gone.elapsed().as_secs_f64());

    // The DNS server's metrics saw the answers above.
    let dns = sb.pod("cluster3", "lighthouse-dns").expect("dns pod");
    let metrics = in_pod(&dns, &["curl", "-sf", "http://127.0.0.1:9153/metrics"]).expect("metrics");
    assert!(
        metrics.contains("subsea_dns_queries_total{type=\"A\",rcode=\"NOERROR\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("subsea_dns_queries_total{type=\"A\",rcode=\"NXDOMAIN\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("subsea_dns_programming_duration_seconds_count"),
        "{metrics}"
    );

    // cluster2 exports payment-service again; it must outlive what happens to cluster1 next.
    subctl(
        sb,
        &[
            "export",
            "service",
            "payment-service",
            "-n",
            "default",
            "--context",
            "cluster2",
        ],
    )
    .expect("export in cluster2");
    let resolves = |name: &str| -> Result<()> {
        let out = dig(&client3, &["+short", name])?;
        if out.trim().is_empty() {
            bail!("{name} does not resolve");
        }
        Ok(())
    };
    eventually("cluster2's export answers again", Duration::from_secs(20), || {
        resolves(NAME)
    });

    // Agent restart: cluster1's agent is down while its `db` export is deleted; back up, it
    // withdraws what it had published for db, and nothing else.
    let db = "db.default.svc.clusterset.local";
    resolves(db).expect("db is exported from cluster1");
    sb.kill("cluster1/lighthouse-agent").expect("kill the agent");
    sb.kubectl("cluster1", &["delete", "serviceexport", "db", "-n", "default"])
        .expect("delete the export");
    sb.restart("cluster1/lighthouse-agent")
        .expect("restart the agent");
    eventually(
        "db is withdrawn after the agent restarts",
        Duration::from_secs(30),
        || nxdomain(&client3, db),
    );
    resolves(NAME).expect("cluster2's export is untouched by cluster1's restart");

    // A cluster leaving: with its components gone (as `uninstall` deletes their namespace),
    // `subctl uninstall` removes what cluster2 published on the broker, and the others stop
    // answering with its export.
    sb.kill("cluster2/lighthouse-agent")
        .expect("stop cluster2's agent");
    // From cluster2's control-plane node, where the broker's address is routable (as join ran).
    let cp = sb
        .topology()
        .expect("topology")
        .cluster("cluster2")
        .expect("cluster2")
        .control_plane()
        .netns
        .clone();
    let out = sys::exec_in(
        &cp,
        &[
            &sb.binary("subctl"),
            "uninstall",
            "--kubeconfig",
            &sb.inner_kubeconfig("cluster2").to_string_lossy(),
            "-y",
        ],
    )
    .expect("uninstall");
    assert!(out.contains("from the broker"), "{out}");
    eventually(
        "cluster2's export is gone after it leaves",
        Duration::from_secs(30),
        || nxdomain(&client3, NAME),
    );
    let left = sb
        .kubectl(
            "broker",
            &[
                "get",
                "serviceimports,endpointslices",
                "-A",
                "-l",
                "submariner-io/clusterID=cluster2",
                "-o",
                "name",
            ],
        )
        .expect("broker objects");
    assert!(
        left.trim().is_empty(),
        "cluster2 left objects on the broker: {left}"
    );
}
