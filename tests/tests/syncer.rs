//! The cluster <-> broker syncer between two joined clusters, with the clusters' own scoped
//! broker tokens: publish, copy down, loop prevention, updates, deletes, orphan cleanup at
//! start, and convergence after the broker was down. On a broker of two replicas on etcd, the
//! gateway's syncer and the real `subsea lighthouse-agent` keep syncing through the surviving
//! replica when the one in broker-info's `brokerURL` is SIGKILLed.

use std::time::{Duration, Instant};

use kube::Client;
use kube::api::ApiResource;
use subsea_api::submariner::Endpoint;
use subsea_integration::{ApiServer, Daemon, TempDir};
use subsea_syncer::driver::Syncer;
use subsea_syncer::plan::{Config, Direction};

const OP: &str = "submariner-operator";
const BROKER_NS: &str = "submariner-k8s-broker";

async fn local_client(s: &ApiServer) -> Client {
    let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).expect("kubeconfig");
    Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config"),
    )
    .expect("client")
}

fn broker_client(broker: &ApiServer, cluster: &ApiServer) -> Client {
    use base64::Engine;
    let field = |k: &str| {
        let v = cluster.ok(&[
            "get",
            "secret",
            "submariner-broker-secret",
            "-n",
            OP,
            "-o",
            &format!("jsonpath={{.data.{}}}", k.replace('.', "\\.")),
        ]);
        base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .expect("base64")
    };
    let token = String::from_utf8(field("token")).expect("utf-8");
    subsea_runtime::client::broker(&broker.url(), &field("ca.crt"), &token, BROKER_NS, true)
        .expect("broker client")
}

fn spawn_pair(id: &str, local: Client, broker: Client) -> Vec<tokio::task::JoinHandle<()>> {
    let ar = ApiResource::erase::<Endpoint>(&());
    let up = Syncer {
        resource: ar.clone(),
        config: Config {
            cluster_id: id.into(),
            direction: Direction::LocalToBroker,
            source_namespace: Some(OP.into()),
            target_namespace: BROKER_NS.into(),
        },
        source: local.clone(),
        target: broker.clone(),
    };
    let down = Syncer {
        resource: ar,
        config: Config {
            cluster_id: id.into(),
            direction: Direction::BrokerToLocal,
            source_namespace: Some(BROKER_NS.into()),
            target_namespace: OP.into(),
        },
        source: broker,
        target: local,
    };
    vec![tokio::spawn(up.run()), tokio::spawn(down.run())]
}

fn endpoint(name: &str, cluster_id: &str, hostname: &str) -> String {
    format!(
        "apiVersion: submariner.io/v1\nkind: Endpoint\nmetadata:\n  name: {name}\n  namespace: {OP}\nspec:\n  cluster_id: {cluster_id}\n  cable_name: submariner-cable-{cluster_id}-1-2-3-4\n  hostname: {hostname}\n  subnets: []\n  private_ip: 1.2.3.4\n  public_ip: \"\"\n  nat_enabled: false\n  backend: wireguard\n"
    )
}

/// `kubectl get endpoints.submariner.io -n NS` as "name=hostname@clusterlabel" lines, sorted.
fn endpoints(s: &ApiServer, ns: &str) -> String {
    let out = s.ok(&["get", "endpoints.submariner.io", "-n", ns, "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.hostname}@{.metadata.labels.submariner-io/clusterID}{\"\\n\"}{end}"]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    lines.join(" ")
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    eventually_or(what, &String::new, f).await;
}

fn apply(s: &ApiServer, yaml: &str) {
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(yaml))
        .expect("kubectl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_flow_between_clusters_through_the_broker() {
    let mut broker = ApiServer::start(&["--context", "broker"]).expect("broker");
    let (c1, c2) = (
        ApiServer::simulated_cluster(1).expect("c1"),
        ApiServer::simulated_cluster(2).expect("c2"),
    );
    let dir = TempDir::new("syncer");
    assert!(broker.subctl(&dir.0, &["deploy-broker"]).0);
    assert!(
        c1.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster1"])
            .0
    );
    assert!(
        c2.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster2"])
            .0
    );
    let (l1, l2) = (local_client(&c1).await, local_client(&c2).await);

    // Orphans from a previous run: a copy in cluster2 of a cluster1 endpoint that no longer
    // exists, and a broker object of cluster2 with no local source.
    apply(
        &c2,
        &endpoint("stale-copy", "cluster1", "old").replace(
            "namespace: submariner-operator",
            "namespace: submariner-operator\n  labels: {submariner-io/clusterID: cluster1}",
        ),
    );
    apply(
        &broker,
        &endpoint("stale-up", "cluster2", "old").replace(
            "namespace: submariner-operator",
            "namespace: submariner-k8s-broker\n  labels: {submariner-io/clusterID: cluster2}",
        ),
    );
    apply(&c1, &endpoint("cluster1-ep", "cluster1", "gw1"));

    let mut tasks = spawn_pair("cluster1", l1.clone(), broker_client(&broker, &c1));
    tasks.extend(spawn_pair("cluster2", l2.clone(), broker_client(&broker, &c2)));

    eventually(
        "cluster1's endpoint reaches cluster2 and the orphans are gone",
        || {
            endpoints(&c2, OP) == "cluster1-ep=gw1@cluster1"
                && endpoints(&broker, BROKER_NS) == "cluster1-ep=gw1@cluster1"
        },
    )
    .await;
    assert_eq!(
        endpoints(&c1, OP),
        "cluster1-ep=gw1@",
        "no copy of our own endpoint comes back down"
    );

    apply(&c2, &endpoint("cluster2-ep", "cluster2", "gw2"));
    eventually("cluster2's endpoint reaches cluster1", || {
        endpoints(&c1, OP) == "cluster1-ep=gw1@ cluster2-ep=gw2@cluster2"
    })
    .await;
    apply(&c1, &endpoint("cluster1-ep", "cluster1", "gw1b"));
    eventually("an update propagates", || {
        endpoints(&c2, OP) == "cluster1-ep=gw1b@cluster1 cluster2-ep=gw2@"
    })
    .await;
    assert_eq!(
        endpoints(&broker, BROKER_NS),
        "cluster1-ep=gw1b@cluster1 cluster2-ep=gw2@cluster2",
        "nothing duplicated"
    );

    // The broker goes away; changes made meanwhile arrive once it is back.
    broker.kill();
    c1.ok(&["delete", "endpoints.submariner.io", "cluster1-ep", "-n", OP]);
    apply(&c1, &endpoint("cluster1-new", "cluster1", "gw1c"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.restart().expect("broker restarts on the same port");
    eventually(
        "after the outage cluster2 sees exactly cluster1's current endpoint",
        || endpoints(&c2, OP) == "cluster1-new=gw1c@cluster1 cluster2-ep=gw2@",
    )
    .await;
    assert_eq!(
        endpoints(&broker, BROKER_NS),
        "cluster1-new=gw1c@cluster1 cluster2-ep=gw2@cluster2"
    );
    for t in tasks {
        t.abort();
    }
}

/// A broker of two `subsea apiserver` replicas on one 3-member etcd, deployed naming the second
/// as the replica URL, and two clusters joined through broker-info.
struct Replicated {
    a: ApiServer,
    b: ApiServer,
    c1: ApiServer,
    c2: ApiServer,
    dir: TempDir,
    _etcd: subsea_integration::etcd::EtcdCluster,
}

fn replicated_broker(tag: &str) -> Replicated {
    let etcd = subsea_integration::etcd::EtcdCluster::start(3).expect("etcd");
    let servers = etcd.servers();
    let a = ApiServer::start(&["--context", "broker", "--etcd-servers", &servers]).expect("replica a");
    let b = ApiServer::replica_of(&a).expect("replica b");
    let (c1, c2) = (
        ApiServer::simulated_cluster(1).expect("c1"),
        ApiServer::simulated_cluster(2).expect("c2"),
    );
    let dir = TempDir::new(tag);
    let (ok, out, err) = a.subctl(&dir.0, &["deploy-broker", "--broker-replica-url", &b.url()]);
    assert!(ok, "{out}{err}");
    for (c, id) in [(&c1, "cluster1"), (&c2, "cluster2")] {
        let (ok, out, err) = c.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", id]);
        assert!(ok, "{out}{err}");
    }
    Replicated {
        a,
        b,
        c1,
        c2,
        dir,
        _etcd: etcd,
    }
}

/// The broker as two `subsea apiserver` replicas on one etcd: clusters joined with the replica's
/// URL in broker-info keep syncing through it when the replica they used is SIGKILLed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_keep_flowing_when_a_broker_replica_dies() {
    let Replicated {
        mut a,
        b,
        c1,
        c2,
        dir,
        _etcd,
    } = replicated_broker("syncer-replicas");
    let b_host = b.url().trim_start_matches("https://").to_string();
    let replicas = c1.ok(&[
        "get",
        "servicediscovery",
        "service-discovery",
        "-n",
        OP,
        "-o",
        "jsonpath={.spec.brokerK8sApiServerReplicas[0]}",
    ]);
    assert_eq!(replicas, b_host, "join records the broker's other replica");
    let mut tasks = Vec::new();
    for (c, id) in [(&c1, "cluster1"), (&c2, "cluster2")] {
        let local = local_client(c).await;
        let spec = subsea_runtime::join::service_discovery(&local)
            .await
            .expect("join object");
        let access = subsea_runtime::join::broker_access(&spec).expect("broker access");
        assert_eq!(access.url, a.url());
        tasks.extend(spawn_pair(id, local, access.client().expect("broker client")));
    }
    apply(&c1, &endpoint("cluster1-ep", "cluster1", "gw1"));
    eventually("cluster1's endpoint reaches cluster2", || {
        endpoints(&c2, OP) == "cluster1-ep=gw1@cluster1"
    })
    .await;
    a.kill();
    apply(&c1, &endpoint("cluster1-ep", "cluster1", "gw1b"));
    apply(&c2, &endpoint("cluster2-ep", "cluster2", "gw2"));
    eventually(
        "both clusters' changes flow through the surviving replica",
        || {
            endpoints(&c2, OP) == "cluster1-ep=gw1b@cluster1 cluster2-ep=gw2@"
                && endpoints(&c1, OP) == "cluster1-ep=gw1b@ cluster2-ep=gw2@cluster2"
        },
    )
    .await;
    assert_eq!(
        endpoints(&b, BROKER_NS),
        "cluster1-ep=gw1b@cluster1 cluster2-ep=gw2@cluster2",
        "nothing duplicated on the broker"
    );
    // The broker-info file names the dead replica first: join moves on to the other one.
    let c3 = ApiServer::simulated_cluster(3).expect("c3");
    let (ok, out, err) = c3.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", "cluster3"]);
    assert!(ok, "join while the first broker replica is down: {out}{err}");
    assert_eq!(
        b.ok(&[
            "get",
            "clusters.submariner.io",
            "cluster3",
            "-n",
            BROKER_NS,
            "-o",
            "jsonpath={.metadata.name}"
        ]),
        "cluster3",
        "the cluster registered through the surviving replica"
    );
    for t in tasks {
        t.abort();
    }
}

fn exported_service(name: &str, backend: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  ports:\n  - {{name: http, port: 80, protocol: TCP}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-1\n  namespace: default\n  labels: {{kubernetes.io/service-name: {name}}}\naddressType: IPv4\nports:\n- {{name: http, port: 80, protocol: TCP}}\nendpoints:\n- addresses: [\"{backend}\"]\n  conditions: {{ready: true}}\n---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: {name}\n  namespace: default\n"
    )
}

/// The aggregated ServiceImports in `default` as "name<-cluster,cluster" words, and the
/// Lighthouse EndpointSlice copies as "slice@cluster" words, each sorted.
fn imports(s: &ApiServer) -> String {
    let list = |args: &[&str]| {
        let mut words: Vec<String> = s.ok(args).split_whitespace().map(String::from).collect();
        words.sort();
        words.join(" ")
    };
    let imports = list(&[
        "get",
        "serviceimports.multicluster.x-k8s.io",
        "-n",
        "default",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}<-{range .status.clusters[*]}{.cluster},{end}{\"\\n\"}{end}",
    ]);
    let copies = list(&[
        "get",
        "endpointslices",
        "-n",
        "default",
        "-l",
        "endpointslice.kubernetes.io/managed-by=lighthouse-agent.submariner.io",
        "-o",
        "jsonpath={range .items[*]}{.metadata.labels.multicluster\\.kubernetes\\.io/service-name}@{.metadata.labels.multicluster\\.kubernetes\\.io/source-cluster}{\"\\n\"}{end}",
    ]);
    format!("{imports} | {copies}")
}

/// The Lighthouse agents (real `subsea lighthouse-agent` processes) keep exporting, importing
/// and withdrawing through the surviving broker replica when the one in `brokerURL` is
/// SIGKILLed; nothing is duplicated on the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lighthouse_agents_keep_syncing_when_a_broker_replica_dies() {
    let Replicated {
        mut a,
        b,
        c1,
        c2,
        dir,
        _etcd,
    } = replicated_broker("lighthouse-replicas");
    let agents = subsea_integration::lighthouse_agents(&[(&c1, "cluster1"), (&c2, "cluster2")], &dir.0);
    let logs = || agents.iter().map(Daemon::log).collect::<Vec<_>>().join("\n");
    apply(&c1, &exported_service("web", "10.130.1.5"));
    eventually_or("cluster1's export is imported in cluster2", &logs, || {
        imports(&c2) == "web<-cluster1, | web@cluster1"
    })
    .await;

    a.kill();
    apply(&c1, &exported_service("db", "10.130.1.6"));
    apply(&c2, &exported_service("web", "10.131.1.5"));
    eventually_or(
        "exports made after the replica died reach the other cluster",
        &logs,
        || {
            imports(&c2) == "db<-cluster1, web<-cluster1,cluster2, | db@cluster1 web@cluster1 web@cluster2"
                && imports(&c1)
                    == "db<-cluster1, web<-cluster1,cluster2, | db@cluster1 web@cluster1 web@cluster2"
        },
    )
    .await;
    let on_broker = || {
        let mut names: Vec<String> = b
            .ok(&[
                "get",
                "serviceimports.multicluster.x-k8s.io",
                "-n",
                BROKER_NS,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ])
            .split_whitespace()
            .map(String::from)
            .collect();
        names.sort();
        names.join(" ")
    };
    assert_eq!(
        on_broker(),
        "db-default-cluster1 web-default-cluster1 web-default-cluster2",
        "one broker import per export"
    );
    c1.ok(&[
        "delete",
        "serviceexports.multicluster.x-k8s.io",
        "db",
        "-n",
        "default",
    ]);
    eventually_or("a withdrawal reaches the other cluster", &logs, || {
        imports(&c2) == "web<-cluster1,cluster2, | web@cluster1 web@cluster2"
    })
    .await;
    assert_eq!(on_broker(), "web-default-cluster1 web-default-cluster2");
}

async fn eventually_or(what: &str, logs: &dyn Fn() -> String, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}\n{}", logs());
}
