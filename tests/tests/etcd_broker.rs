//! `subsea apiserver` on a real etcd (Debian's etcd-server, started by the test on loopback):
//! kube-apiserver's key layout, replicas serving one store, acknowledged writes surviving the
//! loss of an etcd member and of a replica, outages answered with a Status and recovered
//! without a restart, and values that are not objects skipped.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use subsea_integration::ApiServer;
use subsea_integration::etcd::EtcdCluster;

fn on(etcd: &EtcdCluster, extra: &[&str]) -> ApiServer {
    let servers = etcd.servers();
    let mut flags = vec!["--etcd-servers", servers.as_str()];
    flags.extend(extra);
    ApiServer::start(&flags).expect("apiserver on etcd")
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `mod_revision` of a key, from etcd itself.
fn mod_revision(etcd: &EtcdCluster, key: &str) -> u64 {
    let out = json_of(&etcd.etcdctl(&["get", key, "-w", "json"]).expect("etcdctl get"));
    out["kvs"][0]["mod_revision"]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not in etcd: {out}"))
}

/// Who holds the controllers' Lease, as `server` reports it (empty when nobody yet).
fn lease_holder(server: &ApiServer) -> String {
    server
        .kubectl(&[
            "get",
            "lease",
            "-n",
            "kube-system",
            "subsea-apiserver-controllers",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} within {within:?}");
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";

#[test]
fn objects_are_stored_as_kube_apiserver_stores_them() {
    let etcd = EtcdCluster::start(1).expect("etcd");
    let mut s = on(&etcd, &["--etcd-prefix", "/registry"]);
    s.ok(&["create", "namespace", "team"]);
    s.ok(&["create", "configmap", "x", "-n", "team", "--from-literal=k=v"]);
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: team}\nspec: {ports: [{port: 80, targetPort: 8080}]}\n";
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(svc))
        .expect("kubectl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(CRD))
        .expect("kubectl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: team}\nspec: {size: 3}\n";
    wait_until("the CRD is served", Duration::from_secs(10), || {
        s.kubectl_stdin(&["apply", "-f", "-"], Some(w))
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    let keys = etcd
        .etcdctl(&["get", "--prefix", "/registry/", "--keys-only"])
        .expect("keys");
    for key in [
        "/registry/namespaces/team",
        "/registry/configmaps/team/x",
        "/registry/services/specs/team/web",
        "/registry/services/specs/default/kubernetes",
        "/registry/clusterroles/cluster-admin",
        "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com",
        "/registry/example.com/widgets/team/w1",
    ] {
        assert!(keys.lines().any(|l| l == key), "{key} missing from etcd:\n{keys}");
    }
    // The value is the object's JSON without a resourceVersion: that is the key's mod_revision.
    let stored = json_of(
        &etcd
            .etcdctl(&["get", "/registry/configmaps/team/x", "--print-value-only"])
            .expect("get"),
    );
    assert_eq!(stored["kind"], "ConfigMap");
    assert_eq!(stored["data"]["k"], "v");
    assert!(stored["metadata"].get("resourceVersion").is_none(), "{stored}");
    let rv = s.ok(&[
        "get",
        "configmap",
        "x",
        "-n",
        "team",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(
        rv.parse::<u64>().expect("rv"),
        mod_revision(&etcd, "/registry/configmaps/team/x")
    );
    let svc = json_of(
        &etcd
            .etcdctl(&["get", "/registry/services/specs/team/web", "--print-value-only"])
            .expect("get"),
    );
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.0.0.")),
        "{svc}"
    );

    // A value that is not an object is skipped with its key logged, live and at start.
    etcd.etcdctl(&["put", "/registry/configmaps/team/garbage", "not json {"])
        .expect("put");
    s.ok(&["create", "configmap", "after-garbage", "-n", "team"]);
    let names = s.ok(&["get", "configmaps", "-n", "team", "-o", "name"]);
    assert!(names.lines().any(|l| l == "configmap/after-garbage"), "{names}");
    assert!(!names.lines().any(|l| l == "configmap/garbage"), "{names}");
    assert!(
        s.log().contains("/registry/configmaps/team/garbage"),
        "{}",
        s.log()
    );
    s.restart().expect("restart");
    let names = s.ok(&["get", "configmaps", "-n", "team", "-o", "name"]);
    assert!(
        names.contains("configmap/x") && names.contains("configmap/after-garbage"),
        "{names}"
    );
    assert_eq!(
        s.ok(&["get", "widget", "w1", "-n", "team", "-o", "jsonpath={.spec.size}"]),
        "3"
    );
}

#[test]
fn replicas_on_one_etcd_serve_one_store() {
    let etcd = EtcdCluster::start(3).expect("etcd");
    let a = on(&etcd, &[]);
    let b = ApiServer::replica_of(&a).expect("second replica");
    // Written through one replica, read at once through the other (a quorum-fresh read).
    for i in 0..20 {
        a.ok(&["create", "configmap", &format!("c{i}")]);
        b.ok(&["get", "configmap", &format!("c{i}")]);
    }
    // Optimistic concurrency across replicas: one update wins, the other gets 409.
    let rv = a.ok(&[
        "get",
        "configmap",
        "c0",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let put = |s: &ApiServer, value: &str| {
        let body = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"c0\",\"resourceVersion\":\"{rv}\"}},\"data\":{{\"v\":\"{value}\"}}}}"
        );
        s.kubectl_stdin(&["replace", "-f", "-"], Some(&body))
            .expect("kubectl")
    };
    let first = put(&a, "a");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = put(&b, "b");
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("the object has been modified"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(b.ok(&["get", "configmap", "c0", "-o", "jsonpath={.data.v}"]), "a");
    // One replica runs the controllers that must run once, by a Lease both see.
    wait_until(
        "a replica holds the controllers' Lease",
        Duration::from_secs(10),
        || !lease_holder(&a).is_empty(),
    );
    let (ha, hb) = (lease_holder(&a), lease_holder(&b));
    assert_eq!(ha, hb);
    let ends = |s: &ApiServer| ha.ends_with(&format!("_{}", s.url().trim_start_matches("https://")));
    assert!(
        ends(&a) != ends(&b),
        "holder {ha} is not exactly one of the replicas"
    );
    // Services created at once through both replicas never share a cluster IP.
    std::thread::scope(|scope| {
        for (i, s) in [&a, &b].into_iter().cycle().take(16).enumerate() {
            scope.spawn(move || {
                let svc = format!("apiVersion: v1\nkind: Service\nmetadata: {{name: svc{i}}}\nspec: {{ports: [{{port: 80}}]}}\n");
                let out = s.kubectl_stdin(&["create", "-f", "-"], Some(&svc)).expect("kubectl");
                assert!(out.status.success(), "svc{i}: {}", String::from_utf8_lossy(&out.stderr));
            });
        }
    });
    let ips = a.ok(&[
        "get",
        "services",
        "-o",
        "jsonpath={range .items[*]}{.spec.clusterIP}{\"\\n\"}{end}",
    ]);
    let ips: Vec<&str> = ips.lines().collect();
    assert_eq!(ips.len(), 17, "{ips:?}");
    assert_eq!(
        ips.iter().collect::<HashSet<_>>().len(),
        ips.len(),
        "a cluster IP was given twice: {ips:?}"
    );
    // A CRD made on one replica is served by the other.
    let out = a
        .kubectl_stdin(&["apply", "-f", "-"], Some(CRD))
        .expect("kubectl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 1}\n";
    wait_until("replica b serves widgets", Duration::from_secs(10), || {
        b.kubectl_stdin(&["apply", "-f", "-"], Some(w))
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    assert_eq!(
        a.ok(&["get", "widgets", "-o", "name"]).trim(),
        "widget.example.com/w1"
    );
    // Deleting the CRD on b takes its objects on both.
    b.ok(&["delete", "crd", "widgets.example.com"]);
    wait_until("replica a stops serving widgets", Duration::from_secs(10), || {
        !a.kubectl(&["get", "widgets"])
            .map(|o| o.status.success())
            .unwrap_or(true)
    });
    let keys = etcd
        .etcdctl(&["get", "--prefix", "/registry/example.com/", "--keys-only"])
        .expect("keys");
    assert!(keys.trim().is_empty(), "custom resources left in etcd: {keys}");
}

/// Creates `name` through `s` with curl; `Some(resourceVersion)` when the server acknowledged it.
fn create(s: &ApiServer, token: &str, name: &str) -> Option<u64> {
    let body =
        format!("{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"{name}\"}}}}");
    let out = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "15",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .args([
            "-H",
            "Content-Type: application/json",
            "-X",
            "POST",
            "-d",
            &body,
            "-w",
            "\n%{http_code}",
        ])
        .arg(format!("{}/api/v1/namespaces/default/configmaps", s.url()))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (json, code) = text.rsplit_once('\n')?;
    if code != "201" {
        return None;
    }
    serde_json::from_str::<Value>(json).ok()?["metadata"]["resourceVersion"]
        .as_str()?
        .parse()
        .ok()
}

#[test]
fn acknowledged_writes_survive_losing_an_etcd_member_and_a_replica() {
    let mut etcd = EtcdCluster::start(3).expect("etcd");
    let a = on(&etcd, &[]);
    let b = ApiServer::replica_of(&a).expect("second replica");
    let token = a.admin_token();
    let a_pid = a.pid().expect("replica a runs");
    let start_rv = b.ok(&["get", "configmaps", "-o", "jsonpath={.metadata.resourceVersion}"]);
    // A watcher on the replica that stays up, from before the burst.
    let mut watch = Command::new("curl")
        .args(["-sk", "-N", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!(
            "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={}",
            b.url(),
            start_rv.trim()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl watch");
    let seen: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let reader = {
        let seen = seen.clone();
        let out = watch.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let Ok(ev) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if ev["type"] == "ADDED" {
                    let m = &ev["object"]["metadata"];
                    let rv = m["resourceVersion"]
                        .as_str()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    seen.lock()
                        .expect("lock")
                        .insert(m["name"].as_str().unwrap_or_default().into(), rv);
                }
            }
        })
    };
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    std::thread::scope(|scope| {
        for w in 0..4 {
            let (a, b, acked, token) = (&a, &b, acked.clone(), token.clone());
            scope.spawn(move || {
                for i in 0..60 {
                    let name = format!("burst-{w}-{i}");
                    // Half the writers go through the replica that will be killed.
                    let via = if w % 2 == 0 { a } else { b };
                    if let Some(rv) = create(via, &token, &name) {
                        acked.lock().expect("lock").push((name, rv));
                    }
                }
            });
        }
        let acked = acked.clone();
        let etcd = &mut etcd;
        scope.spawn(move || {
            let at = |n: usize| {
                wait_until("writes acknowledged", Duration::from_secs(60), || {
                    acked.lock().expect("lock").len() >= n
                })
            };
            at(40);
            etcd.kill(0);
            at(100);
            // SIGKILL: nothing of the replica's is flushed or said goodbye to.
            let _ = Command::new("kill").args(["-9", &a_pid.to_string()]).status();
        });
    });
    let acked = acked.lock().expect("lock").clone();
    // The replica that stays up keeps acknowledging after both kills.
    assert!(
        acked.len() >= 100,
        "only {} writes were acknowledged",
        acked.len()
    );
    // No resourceVersion given to two writes.
    let rvs: HashSet<u64> = acked.iter().map(|(_, rv)| *rv).collect();
    assert_eq!(rvs.len(), acked.len(), "a resourceVersion was reused");
    // Every acknowledged write is there, at the resourceVersion it was acknowledged with.
    let list = json_of(&b.ok(&["get", "configmaps", "-o", "json"]));
    let stored: BTreeMap<String, u64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            let rv = m["resourceVersion"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            (m["name"].as_str().unwrap_or_default().to_string(), rv)
        })
        .collect();
    for (name, rv) in &acked {
        assert_eq!(stored.get(name), Some(rv), "acknowledged {name} at {rv}");
    }
    // The surviving replica's watcher saw every acknowledged write.
    wait_until(
        "the watcher saw every acknowledged write",
        Duration::from_secs(20),
        || {
            let seen = seen.lock().expect("lock");
            acked.iter().all(|(n, rv)| seen.get(n) == Some(rv))
        },
    );
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = reader.join();
    // The killed member comes back and the survivor goes on writing.
    etcd.restart(0).expect("member back");
    b.ok(&["create", "configmap", "after-the-faults"]);
    // The controllers that must run once move to the survivor when their Lease expires, and
    // work there: a namespace is terminated.
    let b_addr = b.url().trim_start_matches("https://").to_string();
    wait_until(
        "the survivor holds the controllers' Lease",
        Duration::from_secs(30),
        || lease_holder(&b).ends_with(&format!("_{b_addr}")),
    );
    b.ok(&["create", "namespace", "doomed"]);
    b.ok(&["create", "configmap", "inside", "-n", "doomed"]);
    b.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    wait_until("the namespace is terminated", Duration::from_secs(20), || {
        !b.kubectl(&["get", "namespace", "doomed"])
            .map(|o| o.status.success())
            .unwrap_or(true)
    });
}

#[test]
fn outages_answer_with_a_status_and_recover_without_a_restart() {
    // Unreachable at start: a clear error naming the URL, at once.
    let dir = subsea_integration::TempDir::new("etcd-down");
    let out = Command::new(subsea_integration::binary("subsea"))
        .args([
            "apiserver",
            "--listen",
            "127.0.0.1:0",
            "--etcd-servers",
            "http://127.0.0.1:9",
        ])
        .arg("--data-dir")
        .arg(&dir.0)
        .output()
        .expect("subsea runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach etcd at http://127.0.0.1:9 (--etcd-servers)"),
        "{err}"
    );

    let mut etcd = EtcdCluster::start(1).expect("etcd");
    let s = on(&etcd, &[]);
    s.ok(&["create", "configmap", "before"]);
    etcd.kill(0);
    let err = s.fails(&["create", "configmap", "during", "--request-timeout=20s"]);
    assert!(
        err.contains("storage is unavailable") || err.contains("did not answer within"),
        "{err}"
    );
    etcd.restart(0).expect("etcd back");
    wait_until("writes work again", Duration::from_secs(30), || {
        s.kubectl(&["create", "configmap", "after"])
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    let names = s.ok(&["get", "configmaps", "-o", "name"]);
    assert!(
        names.contains("configmap/before") && names.contains("configmap/after"),
        "{names}"
    );
    assert!(
        !names.contains("configmap/during"),
        "a refused write was stored: {names}"
    );
    // The cache follows etcd again: a change made behind the server's back shows up.
    etcd.etcdctl(&["del", "/registry/configmaps/default/before"])
        .expect("del");
    wait_until(
        "the deletion made in etcd reaches the server",
        Duration::from_secs(10),
        || {
            !s.ok(&["get", "configmaps", "-o", "name"])
                .contains("configmap/before")
        },
    );
}

/// What `SUBSEA_TEST_STORE=etcd-replicas` runs the kubectl and kube-rs suites on: two replicas
/// behind a round-robin balancer. Each kubectl run is a new connection, so reads alternate
/// between the replicas; after the replica that served the write dies, the other still has it.
#[test]
fn a_balancer_in_front_of_two_replicas_serves_one_store() {
    let mut s = ApiServer::replicated(&[]).expect("two replicas behind a balancer");
    let front = s.url();
    assert!(s.twin().is_some(), "a second replica runs");
    s.ok(&["create", "configmap", "shared", "--from-literal=k=v"]);
    for _ in 0..6 {
        assert_eq!(
            s.ok(&["get", "configmap", "shared", "-o", "jsonpath={.data.k}"]),
            "v"
        );
    }
    s.kill();
    assert_eq!(s.url(), front, "the kubeconfig names the balancer");
    assert_eq!(
        s.ok(&["get", "configmap", "shared", "-o", "jsonpath={.data.k}"]),
        "v",
        "the other replica serves the write through the balancer"
    );
    s.ok(&["create", "configmap", "after", "--from-literal=k=w"]);
    let twin = s.twin().expect("twin");
    assert_eq!(
        twin.ok(&["get", "configmap", "after", "-o", "jsonpath={.data.k}"]),
        "w"
    );
}
