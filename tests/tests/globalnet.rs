//! Globalnet on the broker: `deploy-broker --globalnet` writes Submariner's ConfigMap, clusters
//! with the same CIDRs join at once and get distinct GlobalCIDRs, and every bad request is
//! refused by name with the broker left as it was.

use std::collections::BTreeSet;
use std::path::Path;

use subsea_integration::{ApiServer, TempDir};

const SAME_CIDRS: [&str; 4] = ["--servicecidr", "10.96.0.0/12", "--clustercidr", "10.244.0.0/16"];

fn globalnet_data(broker: &ApiServer, key: &str) -> String {
    broker.ok(&[
        "get",
        "configmap",
        "submariner-globalnet-info",
        "-n",
        "submariner-k8s-broker",
        "-o",
        &format!("jsonpath={{.data.{key}}}"),
    ])
}

fn join(c: &ApiServer, dir: &Path, id: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["join", "broker-info.subm", "--clusterid", id];
    args.extend(SAME_CIDRS);
    args.extend(extra);
    let (ok, out, err) = c.subctl(dir, &args);
    (ok, format!("{out}{err}"))
}

#[test]
fn clusters_with_the_same_cidrs_join_at_once_and_get_distinct_global_cidrs() {
    let broker = ApiServer::start(&["--context", "broker"]).expect("broker");
    let clusters: Vec<ApiServer> = (1..=3)
        .map(|n| ApiServer::simulated_cluster(n).expect("cluster"))
        .collect();
    let dir = TempDir::new("globalnet");
    let (ok, out, err) = broker.subctl(
        &dir.0,
        &["deploy-broker", "--globalnet", "--globalnet-cluster-size", "4000"],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Globalnet is on: clusters get 4096 global IPs each from 242.0.0.0/8"),
        "{out}"
    );
    assert_eq!(globalnet_data(&broker, "globalnetEnabled"), "true");
    assert_eq!(globalnet_data(&broker, "globalnetCidrRange"), "\"242.0.0.0/8\"");
    assert_eq!(globalnet_data(&broker, "globalnetClusterSize"), "4096");
    let brokers = broker.subctl(&dir.0, &["show", "brokers"]).1;
    assert!(
        brokers.contains("242.0.0.0/8") && brokers.contains("4096"),
        "{brokers}"
    );

    // Every cluster has kind's CIDRs, and all join at the same moment.
    let results: Vec<(bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = clusters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let dir = &dir.0;
                s.spawn(move || join(c, dir, &format!("cluster{}", i + 1), &[]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for (ok, out) in &results {
        assert!(ok, "{out}");
        assert!(out.contains("Globalnet is on"), "{out}");
    }
    let info = globalnet_data(&broker, "clusterinfo");
    let list: Vec<serde_json::Value> = serde_json::from_str(&info).expect("clusterinfo is JSON");
    assert_eq!(list.len(), 3, "{info}");
    let blocks: BTreeSet<String> = list
        .iter()
        .map(|c| c["global_cidr"][0].as_str().expect("cidr").to_string())
        .collect();
    let first_three: BTreeSet<String> = ["242.0.0.0/20", "242.0.16.0/20", "242.0.32.0/20"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(blocks, first_three, "first-fit, never twice: {info}");

    for (i, c) in clusters.iter().enumerate() {
        let id = format!("cluster{}", i + 1);
        let mine = list
            .iter()
            .find(|e| e["cluster_id"] == id.as_str())
            .expect("allocated")["global_cidr"][0]
            .as_str()
            .expect("cidr")
            .to_string();
        let on_broker = broker.ok(&[
            "get",
            "clusters.submariner.io",
            &id,
            "-n",
            "submariner-k8s-broker",
            "-o",
            "jsonpath={.spec.global_cidr[0]}",
        ]);
        assert_eq!(on_broker, mine);
        let spec = c.ok(&[
            "get",
            "submariners.submariner.io",
            "submariner",
            "-n",
            "submariner-operator",
            "-o",
            "jsonpath={.spec.globalCIDR}",
        ]);
        assert_eq!(spec, mine);
        let sd = c.ok(&[
            "get",
            "servicediscoveries.submariner.io",
            "service-discovery",
            "-n",
            "submariner-operator",
            "-o",
            "jsonpath={.spec.globalnetEnabled}",
        ]);
        assert_eq!(sd, "true");
        let networks = c.subctl(&dir.0, &["show", "networks"]).1;
        assert!(
            networks.contains("GLOBAL CIDR") && networks.contains(&mine),
            "{networks}"
        );
    }

    // A rejoin keeps the block; bad requests are refused by name and change nothing.
    let before = globalnet_data(&broker, "clusterinfo");
    let (ok, out) = join(&clusters[0], &dir.0, "cluster1", &[]);
    assert!(ok, "{out}");
    let taken = list
        .iter()
        .find(|e| e["cluster_id"] == "cluster2")
        .expect("cluster2")["global_cidr"][0]
        .as_str()
        .expect("cidr")
        .to_string();
    let extra = ApiServer::simulated_cluster(4).expect("cluster4");
    let bad: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--globalnet-cidr", taken.as_str()],
            "the GlobalCIDR of cluster \"cluster2\"".to_string(),
        ),
        (
            vec!["--globalnet-cidr", "10.0.0.0/16"],
            "outside the broker's Globalnet range 242.0.0.0/8".to_string(),
        ),
        (vec!["--globalnet-cidr", "242.9.0.1/16"], "host bits".to_string()),
        (
            vec!["--globalnet=false"],
            "the broker has Globalnet on".to_string(),
        ),
        (
            vec!["--globalnet-cluster-size", "1000000000"],
            "larger than the broker's Globalnet range".to_string(),
        ),
    ];
    for (flags, why) in bad {
        let (ok, out) = join(&extra, &dir.0, "cluster4", &flags);
        assert!(!ok, "{flags:?} must fail: {out}");
        assert!(out.contains(&why), "{flags:?}: expected {why:?} in {out}");
        assert!(!out.contains("panicked"), "{out}");
        assert_eq!(globalnet_data(&broker, "clusterinfo"), before, "{flags:?}");
        assert!(
            broker
                .fails(&[
                    "get",
                    "clusters.submariner.io",
                    "cluster4",
                    "-n",
                    "submariner-k8s-broker"
                ])
                .contains("NotFound"),
            "{flags:?} registered nothing"
        );
    }
    let (ok, out) = join(
        &extra,
        &dir.0,
        "cluster4",
        &["--globalnet-cidr", "242.200.0.0/16"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("Allocated GlobalCIDR 242.200.0.0/16"), "{out}");
    assert!(out.contains("Deployed Globalnet on the gateway nodes"), "{out}");
    extra.ok(&[
        "get",
        "daemonset",
        "submariner-globalnet",
        "-n",
        "submariner-operator",
    ]);

    // Uninstall removes what Globalnet put outside its namespace.
    let internal = "apiVersion: v1\nkind: Service\nmetadata:\n  name: submariner-web\n  namespace: default\n  labels: {app.kubernetes.io/managed-by: subsea-globalnet}\nspec:\n  ports: [{port: 80}]\n  externalIPs: [242.200.0.10]\n";
    assert!(
        extra
            .kubectl_stdin(&["apply", "-f", "-"], Some(internal))
            .expect("runs")
            .status
            .success()
    );
    extra.ok(&["annotate", "node", "gw", "submariner.io/globalIp=242.200.0.1"]);
    let shown = extra.ok(&["get", "svc", "submariner-web", "-n", "default"]);
    assert!(
        shown.contains("242.200.0.10"),
        "kubectl shows the external IP: {shown}"
    );
    let (ok, out, err) = extra.subctl(&dir.0, &["uninstall", "-y"]);
    assert!(ok, "{out}{err}");
    assert!(
        extra
            .fails(&["get", "svc", "submariner-web", "-n", "default"])
            .contains("NotFound")
    );
    let notes = extra.ok(&["get", "node", "gw", "-o", "jsonpath={.metadata.annotations}"]);
    assert!(!notes.contains("globalIp"), "{notes}");
}

#[test]
fn bad_globalnet_settings_are_refused_before_anything_is_written() {
    let broker = ApiServer::start(&["--context", "broker"]).expect("broker");
    let dir = TempDir::new("globalnet-bad");
    for (flags, why) in [
        (
            vec!["--globalnet-cidr-range", "242.0.0.0/24"],
            "does not fit in --globalnet-cidr-range",
        ),
        (
            vec!["--globalnet-cidr-range", "fd00::/8"],
            "Globalnet allocates IPv4",
        ),
        (
            vec!["--globalnet-cidr-range", "242.0.0.0"],
            "--globalnet-cidr-range",
        ),
        (vec!["--globalnet-cluster-size", "2"], "too small"),
    ] {
        let mut args = vec!["deploy-broker", "--globalnet"];
        args.extend(&flags);
        let (ok, _, err) = broker.subctl(&dir.0, &args);
        assert!(!ok, "{flags:?}");
        assert!(err.contains(why), "{flags:?}: {err}");
        assert!(
            broker
                .fails(&["get", "namespace", "submariner-k8s-broker"])
                .contains("NotFound"),
            "{flags:?} wrote nothing"
        );
    }

    // A broker without Globalnet: --globalnet-cidr is refused, and a Globalnet redeploy keeps
    // working; a redeploy that would strand a cluster's block is refused.
    assert!(broker.subctl(&dir.0, &["deploy-broker"]).0);
    let c1 = ApiServer::simulated_cluster(1).expect("cluster");
    let (ok, out) = join(&c1, &dir.0, "cluster1", &["--globalnet-cidr", "242.1.0.0/16"]);
    assert!(!ok && out.contains("does not have Globalnet on"), "{out}");
    assert!(broker.subctl(&dir.0, &["deploy-broker", "--globalnet"]).0);
    let (ok, out) = join(&c1, &dir.0, "cluster1", &["--globalnet-cidr", "242.1.0.0/16"]);
    assert!(ok, "{out}");
    let (ok, _, err) = broker.subctl(
        &dir.0,
        &[
            "deploy-broker",
            "--globalnet",
            "--globalnet-cidr-range",
            "242.0.0.0/16",
        ],
    );
    assert!(!ok, "{err}");
    assert!(
        err.contains("does not hold 242.1.0.0/16") && err.contains("\"cluster1\""),
        "{err}"
    );
    let (ok, _, err) = broker.subctl(&dir.0, &["deploy-broker"]);
    assert!(!ok && err.contains("redeploy it with --globalnet"), "{err}");
    assert_eq!(globalnet_data(&broker, "globalnetCidrRange"), "\"242.0.0.0/8\"");
}
