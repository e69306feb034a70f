//! `subsea lighthouse-dns --fixture`: the format the DNS benchmark feeds it (objects as the API
//! returns them) is served (headless SRV and PTR included; cluster-specific names only without
//! `--strict-mcs-names`), and a file that is not a fixture is refused by name.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use subsea_integration::{TempDir, binary};

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn dig(port: u16, name: &str, qtype: &str) -> String {
    subsea_integration::bind::dig_short(port, name, qtype)
}

/// `subsea lighthouse-dns --fixture PATH EXTRA…` on a free port, once it answers `web`'s A
/// record: the process, the port and that answer.
fn serve(path: &std::path::Path, extra: &[&str]) -> (std::process::Child, u16, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(binary("subsea"))
        .args(["lighthouse-dns", "--fixture"])
        .arg(path)
        .args(["--listen", &listen, "--metrics-listen", "off"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("subsea starts");
    let start = Instant::now();
    let mut answer = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        answer = dig(port, "web.shop.svc.clusterset.local", "A");
        // Before the socket is bound dig reports "connection refused" (a line starting ";;").
        if !answer.is_empty() && !answer.starts_with(";;") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    (child, port, answer)
}

#[test]
fn a_fixture_of_api_objects_is_answered_and_a_bad_one_is_refused() {
    let dir = TempDir::new("dnsfix");
    let fixture = json!({
        "imports": [{"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "ClusterSetIP", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
            {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"type": "Headless", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}}],
        "slices": [{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": "web-c2", "namespace": "shop", "labels": {
                "endpointslice.kubernetes.io/managed-by": "lighthouse-agent.submariner.io",
                "lighthouse.submariner.io/sourceNamespace": "shop",
                "multicluster.kubernetes.io/service-name": "web",
                "multicluster.kubernetes.io/source-cluster": "c2"}},
            "endpoints": [{"addresses": ["100.66.0.9"], "conditions": {"ready": true}}]},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": "db-c2", "namespace": "shop", "labels": {
                "endpointslice.kubernetes.io/managed-by": "lighthouse-agent.submariner.io",
                "lighthouse.submariner.io/sourceNamespace": "shop",
                "lighthouse.submariner.io/is-headless": "true",
                "multicluster.kubernetes.io/service-name": "db",
                "multicluster.kubernetes.io/source-cluster": "c2"}},
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.130.4.11"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.130.4.12"], "hostname": "db-1", "conditions": {"ready": true}}]}]
    });
    let path = dir.0.join("fixture.json");
    std::fs::write(&path, fixture.to_string()).expect("write fixture");
    let (mut child, port, answer) = serve(&path, &[]);
    let srv = dig(port, "_http._tcp.web.shop.svc.clusterset.local", "SRV");
    // The MCS DNS spec's headless records: SRV per backend and port, PTR per backend.
    let headless_srv = dig(port, "_pg._tcp.db.shop.svc.clusterset.local", "SRV");
    let ptr = dig(port, "12.4.130.10.in-addr.arpa", "PTR");
    let unknown_ptr = subsea_integration::bind::dig_status(port, "9.9.9.9.in-addr.arpa", "PTR");
    let cluster_name = dig(port, "c2.web.shop.svc.clusterset.local", "A");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer, "100.66.0.9");
    assert_eq!(
        cluster_name, "100.66.0.9",
        "Lighthouse's cluster-specific names by default"
    );
    assert!(srv.contains(" 80 "), "SRV names the port: {srv:?}");
    let mut targets: Vec<&str> = headless_srv.lines().collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "0 50 5432 db-0.c2.db.shop.svc.clusterset.local.",
            "0 50 5432 db-1.c2.db.shop.svc.clusterset.local.",
        ]
    );
    assert_eq!(ptr, "db-1.c2.db.shop.svc.clusterset.local.");
    assert_eq!(
        unknown_ptr, "REFUSED",
        "an address nobody exports is not ours to answer"
    );

    // Only the spec's names with --strict-mcs-names.
    let (mut strict, port, answer) = serve(&path, &["--strict-mcs-names"]);
    let cluster_name = subsea_integration::bind::dig_status(port, "c2.web.shop.svc.clusterset.local", "A");
    let _ = strict.kill();
    let _ = strict.wait();
    assert_eq!(answer, "100.66.0.9");
    assert_eq!(
        cluster_name, "NXDOMAIN",
        "the MCS DNS spec forbids <cluster>.<svc> names"
    );

    let bad = dir.0.join("bad.json");
    std::fs::write(&bad, r#"{"imports": [{"metadata": {"name": "x"}}]}"#).expect("write");
    let out = Command::new(binary("subsea"))
        .args(["lighthouse-dns", "--fixture"])
        .arg(&bad)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--metrics-listen",
            "off",
        ])
        .output()
        .expect("subsea runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad fixture stops the server");
    assert!(
        err.contains("bad.json") && err.contains("is not a fixture"),
        "{err}"
    );
}
