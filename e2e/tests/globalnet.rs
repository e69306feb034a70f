//! Globalnet end to end (needs root): three clusters with kind's CIDRs (every pod and service
//! range the same), joined through a Globalnet broker. From a pod in each cluster
//! `curl http://payment-service.default.svc.clusterset.local/health` reaches the exporting
//! cluster; the server sees the client cluster's global egress IP, or its namespace's
//! GlobalEgressIP; headless per-pod names answer per-pod global IPs; a gateway failover keeps
//! the global IPs working; bad egress requests get a reason; a routed ClusterSetIP reaches the
//! pods through the global IP; unexport releases the address.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;
use subsea_e2e::sandbox::harness::{self, active_gateway, eventually, is_root, kill_active_gateway, subctl};
use subsea_e2e::sandbox::{Pod, Sandbox, sys};

const NAME: &str = "payment-service.default.svc.clusterset.local";

fn in_pod(pod: &Pod, cmd: &[&str]) -> Result<String> {
    sys::exec_in(&pod.netns, cmd)
}

fn curl(pod: &Pod, url: &str) -> Result<String> {
    in_pod(pod, &["curl", "-sf", "-m", "3", url])
}

fn json(sb: &Sandbox, context: &str, args: &[&str]) -> Result<Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend(["-o", "json"]);
    Ok(serde_json::from_str(&sb.kubectl(context, &a)?)?)
}

fn allocated(v: &Value) -> Vec<String> {
    v["status"]["allocatedIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn source_of(pod: &Pod, url: &str) -> Result<String> {
    let body = curl(pod, url)?;
    body.trim()
        .strip_prefix("source=")
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("unexpected /source answer {body:?}"))
}

#[test]
fn clusters_with_the_same_cidrs_reach_each_other_through_global_ips() {
    assert!(
        is_root(),
        "the sandbox e2e test needs root: run the suite as root, as .ci/run does"
    );
    let mut up = harness::up_globalnet("gn", 3).expect("sandbox comes up");
    let sb = &mut up.0;
    let t = sb.topology().expect("topology").clone();
    for c in &t.clusters {
        assert_eq!(
            c.pod_cidrs,
            ["10.244.0.0/16"],
            "every cluster has kind's pod CIDR"
        );
    }

    // Every cluster got its own GlobalCIDR, published as its Endpoint's subnets.
    let networks = subctl(sb, &["show", "networks"]).expect("show networks");
    assert!(
        networks.contains("GLOBAL CIDR") && networks.contains("242.0.0.0/16"),
        "{networks}"
    );
    eventually("all gateways connected", Duration::from_secs(60), || {
        let out = subctl(sb, &["show", "connections"])?;
        let connected = out.lines().filter(|l| l.contains("connected")).count();
        if connected < 6 {
            bail!("{connected} of 6 connections up:\n{out}");
        }
        for g in ["242.0.0.0/16", "242.1.0.0/16", "242.2.0.0/16"] {
            if !out.contains(g) {
                bail!("no connection shows subnet {g}:\n{out}");
            }
        }
        Ok(())
    });
    let endpoints = subctl(sb, &["show", "endpoints", "--context", "cluster1"]).expect("show endpoints");
    assert!(
        endpoints.contains("GLOBAL CIDR") && endpoints.contains("242.1.0.0/16"),
        "{endpoints}"
    );

    // subctl verify knows Globalnet: pods are reached through exported Services' global IPs and
    // the server must see the client cluster's global egress IP.
    let verify = subctl(
        sb,
        &[
            "verify",
            "--context",
            "cluster2",
            "--tocontext",
            "cluster3",
            "--only",
            "connectivity",
        ],
    )
    .expect("subctl verify passes");
    assert!(
        verify.contains("global egress IP") && verify.contains("0 failed"),
        "{verify}"
    );

    sb.deploy("cluster1", "payment-service", "default", 2, false, 80, 8080)
        .expect("deploy");
    sb.deploy("cluster1", "nginx", "default", 2, true, 8080, 8080)
        .expect("deploy headless");
    for svc in ["payment-service", "nginx"] {
        subctl(
            sb,
            &["export", "service", svc, "-n", "default", "--context", "cluster1"],
        )
        .expect("export");
    }
    let clients: Vec<Pod> = t
        .clusters
        .iter()
        .map(|c| {
            sb.add_pod(&c.id, &format!("{}-worker", c.id), "client", "default")
                .expect("client pod")
        })
        .collect();

    // The exported Service's global IP: in the GlobalIngressIP, the ServiceImport and DNS.
    let gip = eventually("payment-service has a global IP", Duration::from_secs(30), || {
        let v = json(
            sb,
            "cluster1",
            &["globalingressips", "payment-service", "-n", "default"],
        )?;
        match v["status"]["allocatedIP"].as_str() {
            Some(ip) if ip.starts_with("242.0.") => Ok(ip.to_string()),
            _ => bail!("not allocated yet: {v}"),
        }
    });
    for client in &clients {
        let body = eventually(
            &format!("curl from {}", client.cluster),
            Duration::from_secs(30),
            || {
                let answer = in_pod(client, &["dig", "+short", "+time=1", "+tries=1", NAME])?;
                if answer.trim() != gip {
                    bail!("dig answered {answer:?}, want the global IP {gip}");
                }
                curl(client, &format!("http://{NAME}/health"))
            },
        );
        assert!(body.contains("cluster=cluster1"), "{}: {body}", client.cluster);
    }

    // The server sees the client cluster's global egress IP (the cluster-wide pool).
    let pool2 = eventually("cluster2's egress pool", Duration::from_secs(20), || {
        let v = json(
            sb,
            "cluster2",
            &["clusterglobalegressips", "cluster-egress.submariner.io"],
        )?;
        let ips = allocated(&v);
        if ips.len() != 8 {
            bail!("want 8 IPs: {v}");
        }
        Ok(ips)
    });
    let seen = source_of(&clients[1], &format!("http://{NAME}/source")).expect("source");
    assert!(
        pool2.contains(&seen),
        "the server saw {seen}, not one of cluster2's egress IPs {pool2:?}"
    );

    // A namespace's GlobalEgressIP takes precedence over the cluster's pool.
    sb.kubectl("cluster3", &["create", "namespace", "team"])
        .expect("namespace");
    let team = sb
        .add_pod("cluster3", "cluster3-worker", "team-client", "team")
        .expect("team pod");
    sb.register_pod(&team, &serde_json::json!({"app": "team"}), None)
        .expect("register pod");
    let geip = "apiVersion: submariner.io/v1\nkind: GlobalEgressIP\nmetadata: {name: team-egress, namespace: team}\nspec: {numberOfIPs: 1}\n";
    subsea_e2e::sandbox::kubectl_stdin(&sb.kubeconfig(), "cluster3", &["apply", "-f", "-"], geip)
        .expect("GlobalEgressIP");
    let team_ip = eventually(
        "the team GlobalEgressIP is allocated",
        Duration::from_secs(20),
        || {
            let v = json(sb, "cluster3", &["globalegressips", "team-egress", "-n", "team"])?;
            match allocated(&v).as_slice() {
                [one] => Ok(one.clone()),
                _ => bail!("{v}"),
            }
        },
    );
    eventually(
        "the team pod egresses with its namespace's IP",
        Duration::from_secs(20),
        || {
            let seen = source_of(&team, &format!("http://{NAME}/source"))?;
            if seen != team_ip {
                bail!("the server saw {seen}, want {team_ip}");
            }
            Ok(())
        },
    );

    // A request out of range is refused with the reason (by the schema or in the status).
    let bad = "apiVersion: submariner.io/v1\nkind: GlobalEgressIP\nmetadata: {name: greedy, namespace: team}\nspec: {numberOfIPs: 21}\n";
    match subsea_e2e::sandbox::kubectl_stdin(&sb.kubeconfig(), "cluster3", &["apply", "-f", "-"], bad) {
        Err(e) => assert!(format!("{e:#}").contains("numberOfIPs"), "{e:#}"),
        Ok(_) => eventually("greedy gets InvalidInput", Duration::from_secs(20), || {
            let v = json(sb, "cluster3", &["globalegressips", "greedy", "-n", "team"])?;
            if v["status"]["conditions"][0]["reason"] != "InvalidInput" || !allocated(&v).is_empty() {
                bail!("{v}");
            }
            Ok(())
        }),
    }

    // Headless: each pod has its own global IP, by name.
    let pod_ip = eventually("nginx-0 has a global IP", Duration::from_secs(30), || {
        let v = json(
            sb,
            "cluster1",
            &["globalingressips", "pod-nginx-0", "-n", "default"],
        )?;
        match v["status"]["allocatedIP"].as_str() {
            Some(ip) if !ip.is_empty() => Ok(ip.to_string()),
            _ => bail!("{v}"),
        }
    });
    let per_pod = "nginx-0.cluster1.nginx.default.svc.clusterset.local";
    eventually("the headless pod by name", Duration::from_secs(30), || {
        let answer = in_pod(&clients[1], &["dig", "+short", "+time=1", "+tries=1", per_pod])?;
        if answer.trim() != pod_ip {
            bail!("dig answered {answer:?}, want {pod_ip}");
        }
        let body = curl(&clients[1], &format!("http://{per_pod}:8080/health"))?;
        if !body.contains("pod=nginx-0") {
            bail!("{body}");
        }
        Ok(())
    });

    // Inside cluster1 the same name is the pod's own address (its global IP is for others).
    let own = sb.pod("cluster1", "nginx-0").expect("pod").ips[0].clone();
    eventually(
        "the headless pod by name, locally",
        Duration::from_secs(30),
        || {
            let answer = in_pod(&clients[0], &["dig", "+short", "+time=1", "+tries=1", per_pod])?;
            if answer.trim() != own {
                bail!("dig answered {answer:?} in cluster1, want the pod's own {own}");
            }
            Ok(())
        },
    );

    // Failover in the exporting cluster: the other gateway takes over with the same global IPs.
    let active = kill_active_gateway(sb, "cluster1").expect("kill the active gateway");
    eventually("traffic after the failover", Duration::from_secs(60), || {
        let now = active_gateway(sb, "cluster1")?;
        if now == active {
            bail!("{active} is still the active gateway");
        }
        curl(&clients[1], &format!("http://{NAME}/health"))
    });
    let after = json(
        sb,
        "cluster1",
        &["globalingressips", "payment-service", "-n", "default"],
    )
    .expect("giip");
    assert_eq!(
        after["status"]["allocatedIP"],
        gip.as_str(),
        "the global IP survives the failover"
    );

    // After the failover diagnose sees the new gateway's global IP and every tunnel up again.
    eventually(
        "diagnose passes after the failover",
        Duration::from_secs(30),
        || {
            let out = subctl(sb, &["diagnose", "all", "--context", "cluster1"])?;
            if !out.contains("has global IP 242.0.") || !out.contains("is reachable at global IP") {
                bail!("{out}");
            }
            Ok(())
        },
    );

    // A routed ClusterSetIP under Globalnet: the export asks for one, and the VIP reaches the
    // pods through the Service's global IP from the other clusters (and locally from cluster1).
    subctl(
        sb,
        &[
            "export",
            "service",
            "payment-service",
            "-n",
            "default",
            "--use-clusterset-ip",
            "--context",
            "cluster1",
        ],
    )
    .expect("ask for a VIP");
    let vip = eventually("cluster2 imports a VIP", Duration::from_secs(30), || {
        let ips = harness::import_field(sb, "cluster2", "payment-service", "{.spec.ips[0]}")?;
        if !ips.starts_with("243.") {
            bail!("no VIP yet: {ips:?}");
        }
        Ok(ips)
    });
    for client in &clients {
        let body = eventually(
            &format!("curl the VIP from {}", client.cluster),
            Duration::from_secs(30),
            || curl(client, &format!("http://{vip}/health")),
        );
        assert!(body.contains("cluster=cluster1"), "{}: {body}", client.cluster);
    }

    // Unexport releases the global IP.
    subctl(
        sb,
        &[
            "unexport",
            "service",
            "payment-service",
            "-n",
            "default",
            "--context",
            "cluster1",
        ],
    )
    .expect("unexport");
    eventually("the GlobalIngressIP is released", Duration::from_secs(30), || {
        let out = sb.kubectl(
            "cluster1",
            &["get", "globalingressips", "-n", "default", "-o", "name"],
        )?;
        if out.contains("payment-service") {
            bail!("still there: {out}");
        }
        Ok(())
    });
}
