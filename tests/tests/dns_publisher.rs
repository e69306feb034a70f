//! `subsea dns-publisher` against a real BIND 9 (RFC 2136 + TSIG) and a `subsea apiserver`
//! broker holding the objects the Lighthouse agents and gateways write: both clusters'
//! addresses under one name, an unreachable cluster withdrawn and restored, records of other
//! owners and unmanaged records left alone, unexport removing records and registry, a wrong key
//! refused with nothing written, and upsert-only never deleting.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use subsea_integration::bind::Bind;
use subsea_integration::{ApiServer, TempDir, binary};

const NS: &str = "submariner-k8s-broker";
const ZONE: &str = "clusters.example.com";

struct Publisher {
    child: Child,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Publisher {
    fn start(broker: &ApiServer, bind: &Bind, key: &std::path::Path, extra: &[&str]) -> Self {
        let dir = TempDir::new("publisher");
        let log = dir.0.join("publisher.log");
        let child = Command::new(binary("subsea"))
            .args(["dns-publisher", "--kubeconfig"])
            .arg(broker.kubeconfig())
            .args(["--server", &bind.addr(), "--zone", ZONE, "--tsig-key-file"])
            .arg(key)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("subsea dns-publisher starts");
        Self {
            child,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn broker() -> ApiServer {
    let b = ApiServer::start(&[]).expect("broker");
    let dir = TempDir::new("deploy");
    let (ok, out, err) = b.subctl(&dir.0, &["deploy-broker"]);
    assert!(ok, "deploy-broker: {out}{err}");
    b
}

fn apply(b: &ApiServer, obj: serde_json::Value) {
    let out = b
        .kubectl_stdin(&["apply", "-f", "-"], Some(&obj.to_string()))
        .expect("kubectl");
    assert!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A cluster's ServiceImport as its Lighthouse agent writes it.
fn export(b: &ApiServer, cluster: &str, svc: &str, external: serde_json::Value) {
    apply(
        b,
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": format!("{svc}-default-{cluster}"), "namespace": NS,
            "labels": {"multicluster.kubernetes.io/source-cluster": cluster, "submariner-io/clusterID": cluster,
                "lighthouse.submariner.io/sourceNamespace": "default", "multicluster.kubernetes.io/service-name": svc},
            "annotations": {"subsea.io/external-dns": external.to_string()}},
        "spec": {"type": "ClusterSetIP", "ports": [{"port": 80, "protocol": "TCP"}]}}),
    );
}

/// A cluster's gateway heartbeat, renewed now or `age` seconds ago.
fn heartbeat(b: &ApiServer, cluster: &str, age: i64, conns: serde_json::Value) {
    let at = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(age);
    apply(
        b,
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": format!("subsea-gateway-{cluster}"), "namespace": NS,
            "labels": {"submariner-io/clusterID": cluster}, "annotations": {"subsea.io/connections": conns.to_string()}},
        "spec": {"holderIdentity": "gw", "leaseDurationSeconds": 10,
            "renewTime": at.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string()}}),
    );
}

fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} within {secs} s; publisher log:\n{}", log());
}

fn status(b: &ApiServer, owner: &str) -> serde_json::Value {
    let out = b
        .kubectl(&[
            "-n",
            NS,
            "get",
            "configmap",
            &format!("subsea-dns-publisher-{owner}"),
            "-o",
            "json",
        ])
        .expect("kubectl");
    if !out.status.success() {
        return serde_json::Value::Null;
    }
    let cm: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    serde_json::from_str(cm["data"]["status.json"].as_str().unwrap_or("null")).unwrap_or_default()
}

#[test]
fn every_reachable_clusters_addresses_are_published_and_foreign_records_left_alone() {
    let bind = Bind::start(ZONE).expect("BIND 9 (apt-get install bind9)");
    let b = broker();
    // Already in the zone: a name ExternalDNS of another owner manages, and one nobody registered.
    bind.nsupdate(&[
        "update add shop.clusters.example.com 300 A 203.0.113.1",
        "update add a-shop.clusters.example.com 300 TXT \"heritage=external-dns,external-dns/owner=team-a,external-dns/resource=ingress/x/shop\"",
        "update add mail.clusters.example.com 300 A 203.0.113.2",
    ])
    .expect("seed the zone");
    heartbeat(&b, "c1", 0, json!({"c2": "connected"}));
    heartbeat(&b, "c2", 0, json!({"c1": "connected"}));
    export(&b, "c1", "web", json!({"addresses": ["192.0.2.1"]}));
    export(
        &b,
        "c2",
        "web",
        json!({"addresses": ["198.51.100.2", "2001:db8::2"]}),
    );
    export(
        &b,
        "c1",
        "shop",
        json!({"addresses": ["192.0.2.9"], "hostnames": ["shop.clusters.example.com"]}),
    );
    export(
        &b,
        "c1",
        "mail",
        json!({"addresses": ["192.0.2.8"], "hostnames": ["mail.clusters.example.com"]}),
    );
    let p = Publisher::start(&b, &bind, &bind.key_file(), &[]);
    let web = "web.default.clusters.example.com";
    eventually(
        "both clusters' addresses under one name",
        20,
        || bind.dig(web, "A") == ["192.0.2.1", "198.51.100.2"],
        || p.log(),
    );
    assert_eq!(bind.dig(web, "AAAA"), ["2001:db8::2"]);
    assert_eq!(bind.dig(&format!("c1.{web}"), "A"), ["192.0.2.1"]);
    assert_eq!(bind.dig(&format!("c2.{web}"), "A"), ["198.51.100.2"]);
    assert_eq!(
        bind.dig(&format!("a-{web}"), "TXT"),
        ["heritage=external-dns,external-dns/owner=subsea,external-dns/resource=service/default/web"]
    );
    assert_eq!(
        bind.dig("shop.clusters.example.com", "A"),
        ["203.0.113.1"],
        "another owner's name is untouched"
    );
    assert_eq!(
        bind.dig("mail.clusters.example.com", "A"),
        ["203.0.113.2"],
        "an unregistered name is untouched"
    );
    eventually(
        "the status names what was left alone",
        10,
        || {
            let s = status(&b, "subsea");
            let skipped = s["skipped"].to_string();
            s["published"] == true
                && skipped.contains("team-a")
                && skipped.contains("no registry record claims")
        },
        || p.log(),
    );

    // c2 cut off: its heartbeat expires and c1's gateway loses it.
    heartbeat(&b, "c1", 0, json!({"c2": "error"}));
    heartbeat(&b, "c2", 30, json!({"c1": "connected"}));
    let cut = Instant::now();
    eventually(
        "c2's addresses withdrawn",
        10,
        || bind.dig(web, "A") == ["192.0.2.1"],
        || p.log(),
    );
    assert!(
        cut.elapsed() < Duration::from_secs(3),
        "withdrawn in {:?}",
        cut.elapsed()
    );
    assert!(bind.dig(web, "AAAA").is_empty(), "c2 held the only AAAA");
    assert!(bind.dig(&format!("c2.{web}"), "A").is_empty());
    let s = status(&b, "subsea");
    assert!(
        s["unreachableClusters"]["c2"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{s}"
    );

    // Healed.
    heartbeat(&b, "c2", 0, json!({"c1": "connected"}));
    heartbeat(&b, "c1", 0, json!({"c2": "connected"}));
    eventually(
        "c2's addresses restored",
        10,
        || bind.dig(web, "A") == ["192.0.2.1", "198.51.100.2"],
        || p.log(),
    );

    // Unexported everywhere: records and registry go, the others stay.
    for c in ["c1", "c2"] {
        b.ok(&["-n", NS, "delete", "serviceimport", &format!("web-default-{c}")]);
    }
    eventually(
        "the records removed",
        10,
        || bind.dig(web, "A").is_empty() && bind.dig(&format!("a-{web}"), "TXT").is_empty(),
        || p.log(),
    );
    assert!(bind.dig(&format!("c1.{web}"), "A").is_empty());
    assert!(bind.dig(&format!("aaaa-{web}"), "TXT").is_empty());
    assert_eq!(bind.dig("shop.clusters.example.com", "A"), ["203.0.113.1"]);
    assert_eq!(bind.dig("a-shop.clusters.example.com", "TXT").len(), 1);
    assert_eq!(bind.dig("mail.clusters.example.com", "A"), ["203.0.113.2"]);
    assert!(p.log().contains("deleted"), "{}", p.log());
}

#[test]
fn a_wrong_key_is_refused_clearly_and_nothing_is_written() {
    let bind = Bind::start(ZONE).expect("BIND 9");
    let b = broker();
    export(&b, "c1", "web", json!({"addresses": ["192.0.2.1"]}));
    for (key, words) in [
        (bind.wrong_key_file(), "BADSIG"),
        (bind.unknown_key_file(), "refused TSIG key"),
    ] {
        let p = Publisher::start(&b, &bind, &key, &[]);
        eventually(
            "the refusal in the log",
            15,
            || p.log().contains(words),
            || p.log(),
        );
        assert!(
            p.log().contains("--tsig-key-file"),
            "the log says what to fix: {}",
            p.log()
        );
        eventually(
            "the refusal in the status",
            10,
            || {
                let s = status(&b, "subsea");
                s["published"] == false && s["lastError"].as_str().unwrap_or_default().contains(words)
            },
            || p.log(),
        );
        assert!(bind.dig("web.default.clusters.example.com", "A").is_empty());
        assert!(bind.dig("a-web.default.clusters.example.com", "TXT").is_empty());
        let secret = std::fs::read_to_string(&key).expect("key");
        let secret = secret.split('"').nth(3).expect("secret");
        assert!(!p.log().contains(secret), "the secret never reaches the log");
    }
    // A key file that is not one: refused at start, naming the file.
    let dir = TempDir::new("badkey");
    let bad = dir.0.join("bad.key");
    std::fs::write(&bad, "secret = hunter2\n").expect("write");
    let out = Command::new(binary("subsea"))
        .args([
            "dns-publisher",
            "--server",
            &bind.addr(),
            "--zone",
            ZONE,
            "--tsig-key-file",
        ])
        .arg(&bad)
        .arg("--kubeconfig")
        .arg(b.kubeconfig())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("bad.key") && err.contains("tsig-keygen"),
        "{err}"
    );
}

#[test]
fn publishers_with_different_owners_share_a_zone_and_upsert_only_never_deletes() {
    let bind = Bind::start(ZONE).expect("BIND 9");
    let b = broker();
    export(&b, "c1", "web", json!({"addresses": ["192.0.2.1"]}));
    let ours = Publisher::start(&b, &bind, &bind.key_file(), &["--policy", "upsert-only"]);
    let web = "web.default.clusters.example.com";
    eventually(
        "published",
        20,
        || bind.dig(web, "A") == ["192.0.2.1"],
        || ours.log(),
    );
    let theirs = Publisher::start(
        &b,
        &bind,
        &bind.key_file(),
        &[
            "--txt-owner-id",
            "other",
            "--domain-filter",
            "default.clusters.example.com",
        ],
    );
    eventually(
        "the second owner sees the name is taken",
        20,
        || {
            status(&b, "other")["skipped"]
                .to_string()
                .contains("registered to owner \\\"subsea\\\"")
        },
        || theirs.log(),
    );
    assert_eq!(
        bind.dig(&format!("a-{web}"), "TXT").len(),
        1,
        "one registry record, ours"
    );
    assert!(bind.dig(&format!("a-{web}"), "TXT")[0].contains("owner=subsea"));
    // An update by us goes through; the second publisher still leaves it alone.
    export(&b, "c1", "web", json!({"addresses": ["192.0.2.1", "192.0.2.3"]}));
    eventually(
        "updated",
        10,
        || bind.dig(web, "A") == ["192.0.2.1", "192.0.2.3"],
        || ours.log(),
    );
    b.ok(&["-n", NS, "delete", "serviceimport", "web-default-c1"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        bind.dig(web, "A"),
        ["192.0.2.1", "192.0.2.3"],
        "upsert-only keeps what it published"
    );
    assert!(
        !theirs.log().contains("deleted") && !theirs.log().contains("created"),
        "{}",
        theirs.log()
    );
}
