//! `subctl deploy-broker` and `subctl join` against three `subsea apiserver`s (a broker and two
//! clusters), checked with kubectl; every bad input leaves the broker unchanged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use subsea_broker::info::BrokerInfo;
use subsea_integration::{ApiServer, TempDir};

fn cluster(n: u8) -> ApiServer {
    ApiServer::simulated_cluster(n).expect("cluster")
}

fn broker_state(b: &ApiServer) -> String {
    b.ok(&[
        "get",
        "serviceaccounts,secrets,rolebindings,clusters.submariner.io",
        "-n",
        "submariner-k8s-broker",
        "-o",
        "name",
    ])
}

fn read_info(dir: &Path) -> BrokerInfo {
    BrokerInfo::decode(&std::fs::read_to_string(dir.join("broker-info.subm")).expect("file")).expect("valid")
}

#[test]
fn deploy_broker_and_join_two_clusters() {
    let broker = ApiServer::start(&["--context", "broker"]).expect("broker");
    let (c1, c2) = (cluster(1), cluster(2));
    let dir = TempDir::new("broker-info");

    let (ok, out, err) = broker.subctl(&dir.0, &["deploy-broker"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("✓ Wrote broker-info.subm"), "{out}");
    let file = dir.0.join("broker-info.subm");
    assert_eq!(
        std::fs::metadata(&file).expect("file").permissions().mode() & 0o777,
        0o600
    );
    let info = read_info(&dir.0);
    assert_eq!(info.namespace, "submariner-k8s-broker");
    assert_eq!(info.psk.len(), 48);
    assert_eq!(info.components, vec!["connectivity", "service-discovery"]);
    assert_eq!(info.token_service_account, "submariner-k8s-broker-admin");
    assert!(
        broker
            .ok(&[
                "get",
                "brokers.submariner.io",
                "submariner-broker",
                "-n",
                "submariner-k8s-broker",
                "-o",
                "jsonpath={.spec.components}"
            ])
            .contains("service-discovery")
    );
    assert!(
        broker
            .ok(&["get", "roles", "-n", "submariner-k8s-broker", "-o", "name"])
            .contains("submariner-k8s-broker-cluster")
    );

    let (ok, out, err) = c1.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster1"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Service CIDRs 100.66.0.0/16; pod CIDRs 10.130.0.0/16"),
        "discovered from the cluster: {out}"
    );
    let (ok, out, err) = c2.subctl(
        &dir.0,
        &[
            "join",
            "broker-info.subm",
            "--coredns-custom-configmap",
            "kube-system/coredns-custom",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Cluster \"cluster2\" joined"),
        "ID from the kubeconfig cluster name: {out}"
    );

    // Broker side, read back with kubectl.
    let sas = broker.ok(&["get", "sa", "-n", "submariner-k8s-broker", "-o", "name"]);
    assert!(
        sas.contains("serviceaccount/cluster-cluster1") && sas.contains("serviceaccount/cluster-cluster2"),
        "{sas}"
    );
    let rbs = broker.ok(&[
        "get",
        "rolebindings",
        "-n",
        "submariner-k8s-broker",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.roleRef.name} {end}",
    ]);
    assert!(
        rbs.contains("cluster-cluster1-submariner-k8s-broker-cluster=submariner-k8s-broker-cluster"),
        "{rbs}"
    );
    let clusters = broker.ok(&["get", "clusters.submariner.io", "-n", "submariner-k8s-broker", "-o", "jsonpath={range .items[*]}{.metadata.labels.submariner-io/clusterID}:{.spec.service_cidr[0]}:{.spec.cluster_cidr[0]} {end}"]);
    assert_eq!(
        clusters.trim(),
        "cluster1:100.66.0.0/16:10.130.0.0/16 cluster2:100.67.0.0/16:10.131.0.0/16"
    );

    // Cluster side.
    for secret in ["submariner-broker-secret", "submariner-ipsec-psk"] {
        c1.ok(&["get", "secret", secret, "-n", "submariner-operator"]);
    }
    let sub = c1.ok(&["get", "submariners.submariner.io", "submariner", "-n", "submariner-operator", "-o", "jsonpath={.spec.clusterID} {.spec.cableDriver} {.spec.serviceCIDR} {.spec.clusterCIDR} {.spec.brokerK8sRemoteNamespace} {.spec.ceIPSecNATTPort}"]);
    assert_eq!(
        sub,
        "cluster1 wireguard 100.66.0.0/16 10.130.0.0/16 submariner-k8s-broker 4500"
    );
    // The connectivity workloads from manifests/deploy, with the default image, and the
    // ClusterSetIP router that comes with service discovery.
    let ds = c1.ok(&[
        "get",
        "daemonsets",
        "-n",
        "submariner-operator",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(
        ds,
        "submariner-clusterset-ip submariner-gateway submariner-routeagent"
    );
    let image = c1.ok(&[
        "get",
        "daemonset",
        "submariner-gateway",
        "-n",
        "submariner-operator",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(
        image,
        format!("ghcr.io/subsea-io/subsea:{}", env!("CARGO_PKG_VERSION"))
    );
    c1.ok(&[
        "get",
        "rolebinding",
        "submariner-gateway",
        "-n",
        "submariner-operator",
    ]);
    let deploys = c1.ok(&[
        "get",
        "deployments",
        "-n",
        "submariner-operator",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(
        deploys,
        "submariner-lighthouse-agent submariner-lighthouse-coredns"
    );
    c1.ok(&["get", "clusterrolebinding", "subsea-lighthouse-agent"]);
    c1.ok(&[
        "get",
        "servicediscoveries.submariner.io",
        "service-discovery",
        "-n",
        "submariner-operator",
    ]);
    assert_eq!(
        c1.ok(&[
            "get",
            "node",
            "gw",
            "-o",
            "jsonpath={.metadata.labels.submariner\\.io/gateway}"
        ]),
        "true"
    );
    assert_eq!(
        c1.ok(&["get", "node", "cp", "-o", "jsonpath={.metadata.labels}"])
            .contains("submariner.io/gateway"),
        false
    );
    let dns_ip = c1.ok(&[
        "get",
        "svc",
        "submariner-lighthouse-coredns",
        "-n",
        "submariner-operator",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let corefile = c1.ok(&[
        "get",
        "cm",
        "coredns",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.data.Corefile}",
    ]);
    assert!(
        corefile.starts_with("#lighthouse-start")
            && corefile.contains(&format!("forward . {dns_ip}"))
            && corefile.contains("kubernetes cluster.local"),
        "{corefile}"
    );
    let custom = c2.ok(&[
        "get",
        "cm",
        "coredns-custom",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.data.lighthouse\\.server}",
    ]);
    assert!(custom.contains("clusterset.local:53"), "{custom}");

    // The per-cluster token in cluster1 can write only cluster1's objects on the broker.
    let token = broker_token(&c1);
    let as_c1 = broker
        .kubectl(&[
            "--token",
            &token,
            "delete",
            "clusters.submariner.io",
            "cluster2",
            "-n",
            "submariner-k8s-broker",
        ])
        .expect("runs");
    assert!(String::from_utf8_lossy(&as_c1.stderr).contains("Forbidden"));

    // Re-running converges: no second account token, same PSK.
    let before = broker_state(&broker);
    let (ok, out, err) = c1.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster1"]);
    assert!(ok, "{out}{err}");
    assert_eq!(broker_state(&broker), before);
    let corefile = c1.ok(&[
        "get",
        "cm",
        "coredns",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.data.Corefile}",
    ]);
    assert_eq!(corefile.matches("#lighthouse-start").count(), 1);
    let (ok, out, err) = broker.subctl(&dir.0, &["deploy-broker"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        read_info(&dir.0).psk,
        info.psk,
        "re-deploying keeps the pre-shared key"
    );
    let backups = std::fs::read_dir(&dir.0)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("broker-info.subm."))
        })
        .count();
    assert_eq!(backups, 1);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .expect("base64")
}

#[test]
fn bad_joins_say_why_and_leave_the_broker_unchanged() {
    let broker = ApiServer::start(&["--context", "broker"]).expect("broker");
    let (c1, c2) = (cluster(1), cluster(2));
    let dir = TempDir::new("bad-joins");
    assert!(broker.subctl(&dir.0, &["deploy-broker"]).0);
    assert!(
        c1.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster1"])
            .0
    );
    let info = read_info(&dir.0);
    let write = |name: &str, i: &BrokerInfo| std::fs::write(dir.0.join(name), i.encode()).expect("write");

    // A file whose CA is not the broker's.
    let other_ca = std::fs::read(c2.data.0.join("ca.crt")).expect("other CA");
    write(
        "wrong-ca.subm",
        &BrokerInfo {
            ca_crt: other_ca,
            ..info.clone()
        },
    );
    // A token without broker permissions.
    broker.ok(&["create", "sa", "nobody", "-n", "submariner-k8s-broker"]);
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: nobody-token\n  namespace: submariner-k8s-broker\n  annotations: {kubernetes.io/service-account.name: nobody}\ntype: kubernetes.io/service-account-token\n";
    assert!(
        broker
            .kubectl_stdin(&["apply", "-f", "-"], Some(secret))
            .expect("runs")
            .status
            .success()
    );
    let nobody = String::from_utf8(base64_decode(&broker.ok(&[
        "get",
        "secret",
        "nobody-token",
        "-n",
        "submariner-k8s-broker",
        "-o",
        "jsonpath={.data.token}",
    ])))
    .expect("utf-8");
    write(
        "no-rights.subm",
        &BrokerInfo {
            token: nobody,
            ..info.clone()
        },
    );
    std::fs::write(dir.0.join("garbage.subm"), "this is not a broker-info file").expect("write");
    write(
        "no-psk.subm",
        &BrokerInfo {
            psk: Vec::new(),
            ..info.clone()
        },
    );

    let before = broker_state(&broker);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["join", "missing.subm", "--clusterid", "cluster2"],
            "failed to read the broker-info file",
        ),
        (
            vec!["join", "garbage.subm", "--clusterid", "cluster2"],
            "is not a valid broker-info file",
        ),
        (
            vec!["join", "broker-info.subm", "--clusterid", "Cluster_2"],
            "is not a valid DNS-1123 label",
        ),
        (
            vec!["join", "broker-info.subm", "--clusterid", "cluster1"],
            "cluster ID \"cluster1\" is already used by another cluster",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--clustercidr",
                "10.130.0.0/17",
            ],
            "overlap those of joined cluster \"cluster1\": 10.130.0.0/17 overlaps 10.130.0.0/16",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--broker-url",
                "https://127.0.0.1:1",
            ],
            "cannot reach the broker at https://127.0.0.1:1",
        ),
        (
            vec!["join", "wrong-ca.subm", "--clusterid", "cluster2"],
            "--check-broker-certificate=false",
        ),
        (
            vec!["join", "no-rights.subm", "--clusterid", "cluster2"],
            "missing permissions on the broker",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--cable-driver",
                "libreswan",
            ],
            "is not supported",
        ),
        (
            vec!["deploy-broker", "--globalnet", "--globalnet-cluster-size", "1"],
            "too small",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--nattport",
                "0",
            ],
            "--nattport 0 is not a UDP port",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--health-check-interval",
                "0",
            ],
            "--health-check-interval must be at least 1",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--custom-domains",
                "not a domain",
            ],
            "\"not a domain\" is not a DNS domain",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--repository",
                "bad repo;x",
            ],
            "is not an image repository",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--coredns-custom-configmap",
                "a/b/c",
            ],
            "--coredns-custom-configmap \"a/b/c\"",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--clustercidr",
                "10.140.0.1/16",
            ],
            "has host bits set; did you mean 10.140.0.0/16?",
        ),
        (
            vec![
                "join",
                "broker-info.subm",
                "--clusterid",
                "cluster2",
                "--servicecidr",
                "10.150.0.0/16",
                "--clustercidr",
                "10.150.0.0/16",
            ],
            "overlaps the pod CIDR 10.150.0.0/16 of the same cluster",
        ),
        (
            vec!["join", "no-psk.subm", "--clusterid", "cluster2"],
            "IPSecPSK is empty",
        ),
        (
            vec!["deploy-broker", "--broker-url", "not a url"],
            "is not a usable URL",
        ),
        (
            vec!["deploy-broker", "-n", "BAD NS"],
            "\"BAD NS\" is not a valid name",
        ),
        (
            vec!["deploy-broker", "--ipsec-psk-from", "missing.subm"],
            "failed to read --ipsec-psk-from",
        ),
    ];
    let c2_before = c2.ok(&["get", "crds,namespaces,serviceaccounts", "-A", "-o", "name"]);
    for (args, want) in cases {
        let (ok, out, err) = c2.subctl(&dir.0, &args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in:\n{err}");
        assert_eq!(broker_state(&broker), before, "{args:?} changed the broker");
        assert_eq!(
            c2.ok(&["get", "crds,namespaces,serviceaccounts", "-A", "-o", "name"]),
            c2_before,
            "{args:?} changed the cluster it ran against"
        );
    }
    assert!(
        c2.ok(&["get", "secrets", "-n", "submariner-operator", "-o", "name"])
            .trim()
            .is_empty(),
        "nothing written locally either"
    );
}

/// The broker token `subctl join` stored in a joined cluster.
fn broker_token(c: &ApiServer) -> String {
    let b64 = c.ok(&[
        "get",
        "secret",
        "submariner-broker-secret",
        "-n",
        "submariner-operator",
        "-o",
        "jsonpath={.data.token}",
    ]);
    String::from_utf8(base64_decode(&b64)).expect("utf-8")
}

/// One kubeconfig with a context per server, as users of several clusters have.
fn merged_kubeconfig(dir: &Path, servers: &[&ApiServer]) -> std::path::PathBuf {
    let paths: Vec<String> = servers
        .iter()
        .map(|s| s.kubeconfig().display().to_string())
        .collect();
    let out = std::process::Command::new("kubectl")
        .env("KUBECONFIG", paths.join(":"))
        .args(["config", "view", "--flatten"])
        .output()
        .expect("kubectl config view");
    let path = dir.join("all.kubeconfig");
    std::fs::write(&path, out.stdout).expect("write kubeconfig");
    path
}

fn subctl(dir: &Path, args: &[&str]) -> (bool, String, String) {
    subsea_integration::run_subctl(Some(dir), args, &[])
}

#[test]
fn show_recover_and_uninstall() {
    let broker = ApiServer::start(&["--context", "broker"]).expect("broker");
    let (c1, c2) = (cluster(1), cluster(2));
    let dir = TempDir::new("day2");
    assert!(
        broker
            .subctl(&dir.0, &["deploy-broker", "--custom-domains", "example.org"])
            .0
    );
    assert!(
        c1.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster1"])
            .0
    );
    assert!(
        c2.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster2"])
            .0
    );
    let kc = merged_kubeconfig(&dir.0, &[&broker, &c1, &c2]);
    let kc = kc.to_str().expect("utf-8");

    let (ok, out, err) = subctl(&dir.0, &["show", "brokers", "--kubeconfig", kc]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Cluster \"broker\"\nNAMESPACE               NAME                COMPONENTS"),
        "{out}"
    );
    assert!(
        out.contains("submariner-k8s-broker   submariner-broker   connectivity, service-discovery   no"),
        "{out}"
    );
    assert!(out.contains("Cluster \"cluster1\"\nNo brokers found"), "{out}");
    let (ok, out, _) = subctl(
        &dir.0,
        &[
            "show",
            "networks",
            "--kubeconfig",
            kc,
            "--context",
            "cluster2",
            "-o",
            "json",
        ],
    );
    assert!(ok);
    let rows: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(rows[0]["SERVICE CIDRS"], serde_json::json!(["100.67.0.0/16"]));
    assert_eq!(rows[0]["CONTEXT"], "cluster2");
    let (ok, out, _) = subctl(
        &dir.0,
        &[
            "show",
            "versions",
            "--kubeconfig",
            kc,
            "--context",
            "cluster1",
            "-o",
            "yaml",
        ],
    );
    assert!(ok && out.contains("COMPONENT: submariner-gateway"), "{out}");

    let gateways = "apiVersion: submariner.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n  namespace: submariner-operator\nstatus:\n  haStatus: active\n  version: 0.1.0\n  statusFailure: \"\"\n  localEndpoint: {cluster_id: cluster1, cable_name: c1, hostname: gw, subnets: [], private_ip: 172.18.0.4, public_ip: \"\", nat_enabled: false, backend: wireguard}\n  connections:\n  - status: connected\n    statusMessage: \"\"\n    usingIP: 172.18.0.5\n    endpoint: {cluster_id: cluster2, cable_name: c2, hostname: gw2, subnets: [100.67.0.0/16, 10.131.0.0/16], private_ip: 172.18.0.5, public_ip: \"\", nat_enabled: false, backend: wireguard}\n    latencyRTT: {last: 1.1ms, min: 1ms, average: 1.2ms, max: 1.5ms, stdDev: 100µs}\n---\napiVersion: submariner.io/v1\nkind: Gateway\nmetadata:\n  name: cp\n  namespace: submariner-operator\nstatus:\n  haStatus: passive\n  version: 0.1.0\n  statusFailure: \"\"\n  localEndpoint: {cluster_id: cluster1, cable_name: c1b, hostname: cp, subnets: [], private_ip: 172.18.0.6, public_ip: \"\", nat_enabled: false, backend: wireguard}\n  connections: []\n";
    assert!(
        c1.kubectl_stdin(&["apply", "-f", "-"], Some(gateways))
            .expect("runs")
            .status
            .success()
    );
    let (ok, out, err) = subctl(
        &dir.0,
        &["show", "gateways", "--kubeconfig", kc, "--context", "cluster1"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("gw     active      All connections (1) are established"),
        "{out}"
    );
    assert!(
        out.contains("cp     passive     There are no connections"),
        "{out}"
    );
    let (ok, out, _) = subctl(
        &dir.0,
        &["show", "connections", "--kubeconfig", kc, "--context", "cluster1"],
    );
    assert!(ok);
    assert!(out.contains("GATEWAY   CLUSTER    REMOTE IP    NAT   CABLE DRIVER   SUBNETS                        STATUS      RTT avg."), "{out}");
    assert!(out.contains("gw2       cluster2   172.18.0.5   no    wireguard      100.67.0.0/16, 10.131.0.0/16   connected   1.2ms"), "{out}");

    let (ok, _, err) = subctl(
        &dir.0,
        &[
            "recover-broker-info",
            "--kubeconfig",
            kc,
            "--context",
            "cluster1",
            "--output",
            "recovered.subm",
        ],
    );
    assert!(
        !ok && err.contains("--broker-kubeconfig/--broker-context"),
        "{err}"
    );
    let (ok, _, err) = subctl(
        &dir.0,
        &[
            "recover-broker-info",
            "--kubeconfig",
            kc,
            "--context",
            "cluster1",
            "--broker-context",
            "broker",
            "--output",
            "recovered.subm",
        ],
    );
    assert!(ok, "{err}");
    let (orig, rec) = (
        read_info(&dir.0),
        BrokerInfo::decode(&std::fs::read_to_string(dir.0.join("recovered.subm")).expect("file"))
            .expect("valid"),
    );
    assert_eq!(rec, orig, "the recovered file matches the original");

    let c2_token = broker_token(&c2);
    let (ok, _, err) = subctl(
        &dir.0,
        &["uninstall", "--kubeconfig", kc, "--context", "cluster2"],
    );
    assert!(!ok && err.contains("re-run with -y"), "{err}");
    let (ok, out, err) = subctl(
        &dir.0,
        &["uninstall", "--kubeconfig", kc, "--context", "cluster2", "-y"],
    );
    assert!(ok, "{out}{err}");
    let left = broker.ok(&[
        "get",
        "clusters.submariner.io",
        "-n",
        "submariner-k8s-broker",
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "cluster.submariner.io/cluster1");
    // Its credential is gone from the broker: account, token Secret and binding, and the token
    // no longer authenticates.
    // (The garbage collector removes what the account owned, within a second.)
    let list = || {
        broker.ok(&[
            "get",
            "serviceaccounts,secrets,rolebindings",
            "-n",
            "submariner-k8s-broker",
            "-o",
            "name",
        ])
    };
    let mut creds = list();
    for _ in 0..50 {
        if !creds.contains("cluster-cluster2") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        creds = list();
    }
    assert!(!creds.contains("cluster-cluster2"), "{creds}");
    assert!(
        creds.contains("cluster-cluster1"),
        "the other cluster keeps its own: {creds}"
    );
    let denied = broker
        .kubectl(&[
            &format!("--token={c2_token}"),
            "get",
            "clusters.submariner.io",
            "-n",
            "submariner-k8s-broker",
        ])
        .expect("kubectl runs");
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("You must be logged in"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    assert!(
        c2.fails(&["get", "ns", "submariner-operator"])
            .contains("NotFound")
    );
    assert!(
        !c2.ok(&[
            "get",
            "cm",
            "coredns",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.data.Corefile}"
        ])
        .contains("lighthouse")
    );
    assert!(
        !c2.ok(&["get", "nodes", "--show-labels"])
            .contains("submariner.io/gateway")
    );
    assert!(!c2.ok(&["get", "crds", "-o", "name"]).contains("submariner.io"));
    let roles = c2.ok(&["get", "clusterroles,clusterrolebindings", "-o", "name"]);
    assert!(
        !roles.contains("submariner-gateway-nodes") && !roles.contains("lighthouse"),
        "{roles}"
    );
    // cluster2 can join again afterwards.
    assert!(
        c2.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster2"])
            .0
    );
}
