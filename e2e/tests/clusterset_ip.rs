//! The routed ClusterSetIP end to end in a dual-stack sandbox (needs root): a broker deployed
//! with `--enable-clusterset-ip`, `payment-service` exported by cluster1 and cluster3. One VIP
//! per family for the whole cluster set appears in every cluster's ServiceImport and in DNS (A
//! and AAAA); `curl` to either from cluster2 reaches both exporters, from cluster1 its own pods
//! (local first); a second service port is routed to its own target port; while cluster3 is
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
fn vips(sb: &Sandbox, cluster: &str) -> Result<Vec<String>> {
    let out = harness::import_field(sb, cluster, "payment-service", "{.spec.ips}")?;
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_str(out.trim())?)
}

/// One `dig +short` answer from `pod`.
fn dig(pod: &Pod, kind: &str, name: &str) -> Result<String> {
    Ok(
        sys::exec_in(&pod.netns, &["dig", "+short", "+time=1", "+tries=1", kind, name])?
            .trim()
            .to_string(),
    )
}

#[test]
fn one_vip_per_service_is_routed_to_every_healthy_exporter_local_first() {
    assert!(
        is_root(),
        "the sandbox e2e test needs root: run the suite as root, as .ci/run does"
    );
    let mut up = harness::up_clusterset_ip("vip", 3, true).expect("sandbox comes up");
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

    // One VIP per family, the same in every cluster: IPv4 from Submariner's default range, IPv6
    // from ours.
    let ips = eventually(
        "every cluster imports one VIP per family",
        Duration::from_secs(30),
        || {
            let seen: Vec<Vec<String>> = ["cluster1", "cluster2", "cluster3"]
                .iter()
                .map(|c| vips(sb, c))
                .collect::<Result<_>>()?;
            if seen[0].len() != 2 || seen.iter().any(|s| *s != seen[0]) {
                bail!("ServiceImport ips per cluster: {seen:?}");
            }
            Ok(seen[0].clone())
        },
    );
    let (vip, vip6) = (ips[0].clone(), ips[1].clone());
    assert!(
        vip.starts_with("243."),
        "an IPv4 VIP from 243.0.0.0/8 first: {ips:?}"
    );
    assert!(
        vip6.starts_with("fd00:243::"),
        "an IPv6 VIP from fd00:243::/104: {ips:?}"
    );
    for (kind, want) in [("A", &vip), ("AAAA", &vip6)] {
        eventually(
            &format!("DNS answers the VIP ({kind})"),
            Duration::from_secs(20),
            || {
                let out = dig(&client2, kind, NAME)?;
                if out != *want {
                    bail!("{out:?}");
                }
                Ok(())
            },
        );
    }

    let url = format!("http://{vip}/health");
    let url6 = format!("http://[{vip6}]/health");
    for u in [&url, &url6] {
        eventually(
            &format!("{u} reaches both exporters from cluster2"),
            Duration::from_secs(30),
            || {
                let got = answers(&client2, u, 12);
                if got != BTreeSet::from(["cluster1".to_string(), "cluster3".to_string()]) {
                    bail!("answered by {got:?}");
                }
                Ok(())
            },
        );
        assert_eq!(
            answers(&client1, u, 8),
            BTreeSet::from(["cluster1".to_string()]),
            "an exporting cluster serves its own clients ({u})"
        );
    }

    // A second port, routed per port: VIP:81 reaches the pods' port 8081, VIP:80 stays on 8080.
    for (c, ns_pod) in [
        ("cluster1", "payment-service-0"),
        ("cluster3", "payment-service-0"),
    ] {
        let cmd = vec![
            sb.binary("subsea-sandbox"),
            "http-server".into(),
            "--port".into(),
            "8081".into(),
            "--pod".into(),
            ns_pod.into(),
            "--cluster".into(),
            c.into(),
        ];
        sb.start_in_pod(c, ns_pod, "http-admin", cmd)
            .expect("second server");
        sb.kubectl(
            c,
            &[
                "patch",
                "service",
                "payment-service",
                "--type=json",
                "-p",
                r#"[{"op":"add","path":"/spec/ports/-","value":{"name":"admin","port":81,"targetPort":8081,"protocol":"TCP"}}]"#,
            ],
        )
        .expect("second port");
    }
    for (client, base) in [
        (&client2, vip.clone()),
        (&client2, format!("[{vip6}]")),
        (&client1, vip.clone()),
    ] {
        eventually(
            &format!("{base}:81 is routed to port 8081"),
            Duration::from_secs(30),
            || {
                for (port, want) in [(81, "port=8081"), (80, "port=8080")] {
                    let out = sys::exec_in(
                        &client.netns,
                        &["curl", "-s", "-m", "2", &format!("http://{base}:{port}/port")],
                    )?;
                    if out.trim() != want {
                        bail!("{base}:{port} answered {out:?}, not {want}");
                    }
                }
                Ok(())
            },
        );
    }

    // cluster3 is cut off: its backends leave the VIP once its tunnel is reported down.
    harness::partition(sb, "cluster3").expect("partition");
    for u in [&url, &url6] {
        eventually(
            &format!("only cluster1 behind {u}"),
            Duration::from_secs(30),
            || {
                let got = answers(&client2, u, 8);
                if got != BTreeSet::from(["cluster1".to_string()]) {
                    bail!("answered by {got:?}");
                }
                Ok(())
            },
        );
    }
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
    let ips = harness::import_field(sb, "cluster2", "inventory", "{.spec.ips}").expect("imported");
    assert!(ips.is_empty(), "no VIP for an export that opted out: {ips}");

    // internalTrafficPolicy Local: the VIP goes to pods on the client's node only; a cluster
    // without one refuses the connection rather than sending it across.
    let pods = sb
        .deploy("cluster1", "nodelocal", "default", 1, false, 80, 8080)
        .expect("deploy");
    sb.kubectl(
        "cluster1",
        &[
            "patch",
            "service",
            "nodelocal",
            "--type=merge",
            "-p",
            r#"{"spec":{"internalTrafficPolicy":"Local"}}"#,
        ],
    )
    .expect("Local policy");
    export(sb, "export", "nodelocal", "cluster1").expect("export");
    let beside = sb
        .add_pod("cluster1", &pods[0].node, "beside", "default")
        .expect("client beside the pod");
    let local_vip = eventually("nodelocal's VIP in cluster2", Duration::from_secs(30), || {
        let out = harness::import_field(
            sb,
            "cluster2",
            "nodelocal",
            "{.spec.ips[0]}/{.spec.internalTrafficPolicy}",
        )?;
        match out.trim().split_once('/') {
            Some((ip, "Local")) if !ip.is_empty() => Ok(ip.to_string()),
            _ => bail!("{out:?}"),
        }
    });
    let local_url = format!("http://{local_vip}/health");
    eventually("the pod's node reaches it", Duration::from_secs(30), || {
        answer(&beside, &local_url).map(|_| ())
    });
    assert!(
        answer(&client2, &local_url).is_err(),
        "another cluster has no pod on the client's node: refused"
    );
    export(sb, "unexport", "nodelocal", "cluster1").expect("unexport");

    // subctl verify checks the VIP of each family (its test service is dual-stack where the
    // cluster is) where the default is on.
    let verify = harness::subctl(
        sb,
        &[
            "verify",
            "--context",
            "cluster2",
            "--tocontext",
            "cluster3",
            "--only",
            "service-discovery",
        ],
    )
    .expect("subctl verify passes");
    assert!(
        verify.contains("the ClusterSetIP 243.")
            && verify.contains("the ClusterSetIP fd00:243::")
            && verify.contains("0 failed")
            && verify.contains("Not checking cluster3."),
        "{verify}"
    );

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
                let rules = sys::exec_in(
                    &n.netns,
                    &["nft", "list", "table", "inet", "subsea-clusterset-ip"],
                )?;
                if rules.contains(&vip) || rules.contains(&vip6) {
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
