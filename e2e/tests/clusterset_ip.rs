//! The routed ClusterSetIP end to end in the sandbox (needs root): a broker deployed with
//! `--enable-clusterset-ip`, `payment-service` exported by cluster1 and cluster3. One VIP for the
//! whole cluster set appears in every cluster's ServiceImport and in DNS; `curl` to it from
//! cluster2 reaches both exporters, from cluster1 its own pods (local first); while cluster3 is
//! partitioned its backends leave cluster2's VIP within the health-check budget (cluster1 and
//! cluster3 keep reaching their own) and come back after the heal; an export opting out
//! (`subctl export --use-clusterset-ip=false`) gets none; unexported, the VIP is released and its
//! rules are gone from every node.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, bail};
use subsea_e2e::sandbox::harness::{self, eventually, export, is_root};
use subsea_e2e::sandbox::{Pod, Sandbox, sys};

const NAME: &str = "payment-service.default.svc.clusterset.local";

/// The cluster that answered one `curl` of `url` from `pod`.
fn answer(pod: &Pod, url: &str) -> Result<String> {
    let out = sys::exec_in(&pod.netns, &["curl", "-s", "-m", "2", url])?;
    match out.split_whitespace().find_map(|w| w.strip_prefix("cluster=")) {
        Some(c) => Ok(c.to_string()),
        None => bail!("no answer from {url}: {out:?}"),
    }
}

/// The clusters that answered `n` connections.
fn answers(pod: &Pod, url: &str, n: usize) -> BTreeSet<String> {
    (0..n).filter_map(|_| answer(pod, url).ok()).collect()
}

/// `cluster`'s ServiceImport `payment-service` VIPs.
fn vips(sb: &Sandbox, cluster: &str) -> Result<String> {
    sb.kubectl(
        cluster,
        &[
            "get",
            "serviceimport",
            "payment-service",
            "-o",
            "jsonpath={.spec.ips}",
        ],
    )
}

#[test]
fn one_vip_per_service_is_routed_to_every_healthy_exporter_local_first() {
    assert!(
        is_root(),
        "the sandbox e2e test needs root: run the suite as root, as .ci/run does"
    );
    let mut up = harness::up_clusterset_ip("vip", 3).expect("sandbox comes up");
    let sb = &mut up.0;
    for c in ["cluster1", "cluster3"] {
        sb.deploy(c, "payment-service", "default", 1, false, 80, 8080)
            .expect("deploy");
    }
    let client1 = sb
        .add_pod("cluster1", "cluster1-worker", "client", "default")
        .expect("client pod");
    let client2 = sb
        .add_pod("cluster2", "cluster2-worker", "client", "default")
        .expect("client pod");
    let client3 = sb
        .add_pod("cluster3", "cluster3-worker", "client", "default")
        .expect("client pod");
    for c in ["cluster1", "cluster3"] {
        export(sb, "export", "payment-service", c).expect("export");
    }

    // One VIP, the same in every cluster, from Submariner's default range.
    let vip = eventually("every cluster imports one VIP", Duration::from_secs(30), || {
        let seen: Vec<String> = ["cluster1", "cluster2", "cluster3"]
            .iter()
            .map(|c| vips(sb, c))
            .collect::<Result<_>>()?;
        let ip = seen[0]
            .trim_matches(|c| c == '[' || c == ']' || c == '"')
            .to_string();
        if ip.is_empty() || seen.iter().any(|s| *s != seen[0]) {
            bail!("ServiceImport ips per cluster: {seen:?}");
        }
        Ok(ip)
    });
    assert!(vip.starts_with("243."), "a VIP from 243.0.0.0/8: {vip}");
    let dns = eventually("DNS answers the VIP", Duration::from_secs(20), || {
        let out = sys::exec_in(&client2.netns, &["dig", "+short", "+time=1", "+tries=1", NAME])?;
        if out.trim() != vip {
            bail!("{out:?}");
        }
        Ok(out)
    });
    assert_eq!(dns.trim(), vip);

    let url = format!("http://{vip}/health");
    eventually(
        "the VIP reaches both exporters from cluster2",
        Duration::from_secs(30),
        || {
            let got = answers(&client2, &url, 12);
            if got != BTreeSet::from(["cluster1".to_string(), "cluster3".to_string()]) {
                bail!("answered by {got:?}");
            }
            Ok(())
        },
    );
    assert_eq!(
        answers(&client1, &url, 8),
        BTreeSet::from(["cluster1".to_string()]),
        "an exporting cluster serves its own clients"
    );

    // cluster3 is cut off: its backends leave the VIP once its tunnel is reported down.
    harness::partition(sb, "cluster3").expect("partition");
    eventually("only cluster1 behind the VIP", Duration::from_secs(30), || {
        let got = answers(&client2, &url, 8);
        if got != BTreeSet::from(["cluster1".to_string()]) {
            bail!("answered by {got:?}");
        }
        Ok(())
    });
    // Every cluster keeps reaching the VIP meanwhile: the exporters their own pods.
    for (client, own) in [(&client1, "cluster1"), (&client3, "cluster3")] {
        assert_eq!(
            answers(client, &url, 6),
            BTreeSet::from([own.to_string()]),
            "{own} during the partition"
        );
    }
    harness::heal(sb, "cluster3").expect("heal");
    eventually("cluster3 back behind the VIP", Duration::from_secs(60), || {
        let got = answers(&client2, &url, 12);
        if !got.contains("cluster3") {
            bail!("answered by {got:?}");
        }
        Ok(())
    });

    // An export that opts out gets no VIP: DNS answers the exporting cluster's service IP.
    sb.deploy("cluster1", "inventory", "default", 1, false, 80, 8080)
        .expect("deploy");
    harness::subctl(
        sb,
        &[
            "export",
            "service",
            "inventory",
            "-n",
            "default",
            "--use-clusterset-ip=false",
            "--context",
            "cluster1",
        ],
    )
    .expect("export without a VIP");
    eventually(
        "inventory resolves to cluster1's service IP",
        Duration::from_secs(30),
        || {
            let name = "inventory.default.svc.clusterset.local";
            let out = sys::exec_in(&client2.netns, &["dig", "+short", "+time=1", "+tries=1", name])?;
            if !out.trim().starts_with("100.65.") {
                bail!("{out:?}");
            }
            Ok(())
        },
    );
    let ips = sb
        .kubectl(
            "cluster2",
            &["get", "serviceimport", "inventory", "-o", "jsonpath={.spec.ips}"],
        )
        .expect("imported");
    assert!(ips.is_empty(), "no VIP for an export that opted out: {ips}");

    // Unexported everywhere: the VIP is released and no node keeps a rule for it.
    for c in ["cluster1", "cluster3"] {
        export(sb, "unexport", "payment-service", c).expect("unexport");
    }
    eventually("the import and its VIP are gone", Duration::from_secs(30), || {
        if vips(sb, "cluster2").is_ok() {
            bail!("cluster2 still imports payment-service");
        }
        Ok(())
    });
    let t = sb.topology().expect("topology").clone();
    for c in &t.clusters {
        for n in &c.nodes {
            eventually("no rule for the released VIP", Duration::from_secs(20), || {
                let rules = sys::exec_in(&n.netns, &["nft", "list", "table", "ip", "subsea-clusterset-ip"])?;
                if rules.contains(&vip) {
                    bail!("{} still routes {vip}:\n{rules}", n.name);
                }
                Ok(())
            });
        }
    }
    assert!(
        answer(&client2, &url).is_err(),
        "the released VIP answers nothing"
    );
}
