//! Durability: objects, resourceVersions and served CRDs survive a SIGKILL and restart.

use serde_json::Value;
use subsea_integration::{ApiServer, repo_root};

fn items(s: &ApiServer, what: &str) -> Vec<Value> {
    let out = s.ok(&["get", what, "-A", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    v["items"].as_array().cloned().unwrap_or_default()
}

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("resourceVersion")
}

#[test]
fn restart_keeps_objects_resource_versions_and_crds() {
    let mut s = ApiServer::start(&[]).expect("server");
    s.ok(&[
        "apply",
        "-f",
        repo_root().join("manifests/crds").to_str().expect("utf-8"),
    ]);
    let cluster = "apiVersion: submariner.io/v1\nkind: Cluster\nmetadata:\n  name: c1\nspec:\n  cluster_id: c1\n  service_cidr: [100.66.0.0/16]\n  cluster_cidr: [10.130.0.0/16]\n  global_cidr: []\n";
    assert!(
        s.kubectl_stdin(&["apply", "-f", "-"], Some(cluster))
            .expect("runs")
            .status
            .success()
    );
    for i in 0..30 {
        let cm = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\ndata:\n  i: \"{i}\"\n");
        assert!(
            s.kubectl_stdin(&["create", "-f", "-"], Some(&cm))
                .expect("runs")
                .status
                .success()
        );
    }
    s.ok(&["delete", "cm", "cm0"]);
    let before_cms = items(&s, "configmaps");
    let before_clusters = items(&s, "clusters");
    let deletion_rv = {
        s.ok(&["delete", "cm", "cm1"]);
        let out = s.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]);
        let v: Value = serde_json::from_str(&out).expect("json");
        v["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|r| r.parse::<u64>().ok())
            .expect("list rv")
    };

    s.restart().expect("restart after SIGKILL");

    let after_cms = items(&s, "configmaps");
    let expected: Vec<&Value> = before_cms
        .iter()
        .filter(|c| c["metadata"]["name"] != "cm1")
        .collect();
    assert_eq!(
        after_cms.iter().collect::<Vec<_>>(),
        expected,
        "every ConfigMap, uid and resourceVersion included"
    );
    assert_eq!(
        items(&s, "clusters"),
        before_clusters,
        "custom resources are served again after restart"
    );
    assert!(s.fails(&["get", "cm", "cm0"]).contains("NotFound"));
    let created = s.ok(&["create", "configmap", "--dry-run=client", "-o", "json", "fresh"]);
    let out = s
        .kubectl_stdin(&["create", "-f", "-", "-o", "json"], Some(&created))
        .expect("runs");
    let fresh: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        rv(&fresh) > deletion_rv,
        "resourceVersions never go backwards ({} after {deletion_rv})",
        rv(&fresh)
    );
}
