//! The external DNS publisher end to end (needs root): two clusters export a LoadBalancer
//! Service; `subsea dns-publisher` next to the broker publishes both clusters' addresses into
//! a real BIND 9 zone; a cluster cut off the WAN is withdrawn within the health-check budget
//! and restored when it heals; unexport removes the records and their registry entries.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use subsea_e2e::sandbox::harness::{self, eventually, heal, is_root, partition, subctl};
use subsea_e2e::sandbox::{Sandbox, kubectl_stdin};
use subsea_integration::bind::Bind;

const ZONE: &str = "mc.example.com";
const NAME: &str = "shop.default.mc.example.com";

struct Publisher(Child);

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn service(sb: &Sandbox, cluster: &str) {
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: shop, namespace: default}\nspec:\n  type: LoadBalancer\n  selector: {app: shop}\n  ports: [{port: 80, targetPort: 8080, protocol: TCP}]\n";
    kubectl_stdin(&sb.kubeconfig(), cluster, &["apply", "-f", "-"], yaml).expect("service");
    harness::export(sb, "export", "shop", cluster).expect("export");
}

/// What a cloud's load-balancer controller does: the ingress address in the Service status.
fn load_balancer(sb: &Sandbox, cluster: &str, ip: &str) {
    let patch = format!(r#"{{"status":{{"loadBalancer":{{"ingress":[{{"ip":"{ip}"}}]}}}}}}"#);
    sb.kubectl(
        cluster,
        &[
            "patch",
            "service",
            "shop",
            "-n",
            "default",
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
    )
    .expect("status patch");
}

#[test]
fn both_clusters_are_published_and_a_partitioned_one_is_withdrawn_until_it_heals() {
    assert!(
        is_root(),
        "the sandbox e2e test needs root: run the suite as root, as .ci/run does"
    );
    let bind = Bind::start(ZONE).expect("BIND 9 (apt-get install bind9)");
    let mut up = harness::up("xdns", 2, false).expect("sandbox comes up");
    let sb = &mut up.0;
    // A record another owner (an ExternalDNS) manages in the same zone.
    bind.nsupdate(&[
        "update add www.mc.example.com 300 A 198.51.100.80",
        "update add a-www.mc.example.com 300 TXT \"heritage=external-dns,external-dns/owner=corp,external-dns/resource=ingress/web/www\"",
    ])
    .expect("seed");
    let start_publisher = |owner: &str, key: &std::path::Path| {
        let log = sb.logs().join(format!("dns-publisher-{owner}.log"));
        let child = Command::new(sb.binary("subsea"))
            .args(["dns-publisher", "--kubeconfig"])
            .arg(sb.kubeconfig())
            .args([
                "--context",
                "broker",
                "--server",
                &bind.addr(),
                "--zone",
                ZONE,
                "--txt-owner-id",
                owner,
                "--tsig-key-file",
            ])
            .arg(key)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("dns-publisher");
        (Publisher(child), log)
    };
    let (_publisher, log) = start_publisher("subsea", &bind.key_file());
    // A second publisher with a key the server does not accept.
    let (_wrong, wrong_log) = start_publisher("wrongkey", &bind.wrong_key_file());
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually("both gateways connected", Duration::from_secs(60), || {
        let out = subctl(sb, &["show", "connections"])?;
        if out.lines().filter(|l| l.contains("connected")).count() < 2 {
            bail!("not yet:\n{out}");
        }
        Ok(())
    });
    for c in ["cluster1", "cluster2"] {
        service(sb, c);
    }
    // Both exports are in; their load balancers get addresses at the same moment.
    eventually("both exports on the broker", Duration::from_secs(30), || {
        let out = harness::broker_imports(sb)?;
        if out.matches("shop-default-").count() < 2 {
            bail!("{out}");
        }
        Ok(())
    });
    let start = Instant::now();
    load_balancer(sb, "cluster1", "203.0.113.11");
    load_balancer(sb, "cluster2", "203.0.113.12");
    let both = vec!["203.0.113.11".to_string(), "203.0.113.12".to_string()];
    eventually("both addresses published", Duration::from_secs(20), || {
        let got = bind.dig(NAME, "A");
        if got != both {
            bail!("{got:?}; publisher log:\n{}", show_log());
        }
        Ok(())
    });
    let took = start.elapsed();
    println!("published both clusters' addresses {took:?} after the load balancers got them");
    assert!(
        took < Duration::from_secs(1),
        "published in {took:?}, not within 1 s"
    );
    assert_eq!(bind.dig(&format!("cluster2.{NAME}"), "A"), ["203.0.113.12"]);

    // cluster2 cut off the WAN: its address leaves the shared name and its own name.
    partition(sb, "cluster2").expect("partition");
    let cut = Instant::now();
    eventually("cluster2 withdrawn", Duration::from_secs(30), || {
        let got = bind.dig(NAME, "A");
        if got != ["203.0.113.11"] {
            bail!("{got:?}");
        }
        Ok(())
    });
    let withdrawn = cut.elapsed();
    println!("withdrawn {withdrawn:?} after the partition");
    assert!(bind.dig(&format!("cluster2.{NAME}"), "A").is_empty());
    assert_eq!(bind.dig(&format!("cluster1.{NAME}"), "A"), ["203.0.113.11"]);
    // The health-check budget (5 pings at 1 s) plus the heartbeat's 1 s and a pass.
    assert!(
        withdrawn < Duration::from_secs(12),
        "withdrawn after {withdrawn:?}"
    );
    let sd = subctl(sb, &["show", "service-discovery", "--context", "broker"]).expect("show");
    assert!(sd.contains(NAME) && sd.contains("cluster2"), "{sd}");

    heal(sb, "cluster2").expect("heal");
    eventually("cluster2 restored", Duration::from_secs(60), || {
        let got = bind.dig(NAME, "A");
        if got != both {
            bail!("{got:?}");
        }
        Ok(())
    });

    // Unexported in both: records and registry records go.
    for c in ["cluster1", "cluster2"] {
        harness::export(sb, "unexport", "shop", c).expect("unexport");
    }
    eventually("records removed", Duration::from_secs(30), || {
        if !bind.dig(NAME, "A").is_empty() || !bind.dig(&format!("a-{NAME}"), "TXT").is_empty() {
            bail!("still published");
        }
        Ok(())
    });
    assert!(bind.dig(&format!("cluster1.{NAME}"), "A").is_empty());
    assert!(!show_log().contains("publishing failed"), "{}", show_log());

    // The other owner's record survived all of it.
    assert_eq!(bind.dig("www.mc.example.com", "A"), ["198.51.100.80"]);
    assert_eq!(bind.dig("a-www.mc.example.com", "TXT").len(), 1);
    // The wrongly keyed publisher said why, in its log and its status, and wrote nothing.
    let wrong = std::fs::read_to_string(&wrong_log).unwrap_or_default();
    assert!(
        wrong.contains("BADSIG") && wrong.contains("--tsig-key-file"),
        "{wrong}"
    );
    let cm = sb
        .kubectl(
            "broker",
            &[
                "get",
                "configmap",
                "subsea-dns-publisher-wrongkey",
                "-n",
                "submariner-k8s-broker",
                "-o",
                "json",
            ],
        )
        .expect("status");
    let cm: serde_json::Value = serde_json::from_str(&cm).expect("json");
    let st: serde_json::Value =
        serde_json::from_str(cm["data"]["status.json"].as_str().unwrap_or("null")).expect("status.json");
    assert!(
        st["published"] == false && st["lastError"].as_str().unwrap_or_default().contains("BADSIG"),
        "{st}"
    );
}
