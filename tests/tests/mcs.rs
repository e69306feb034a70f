//! MCS API v1beta1 through real parts: `kubectl` writes v1beta1 ServiceExports to real `subsea
//! apiserver`s, real `subsea lighthouse-agent` processes sync them through a real broker. The
//! exported labels and annotations reach the importing cluster's ServiceImport, leave it when the
//! user removes them, and a differing export gets a `Conflict` condition; an ExternalName
//! Service is refused with the MCS API's reason.

use std::time::{Duration, Instant};

use subsea_integration::{ApiServer, Daemon, TempDir};

fn apply(s: &ApiServer, yaml: &str) {
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(yaml))
        .expect("kubectl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn eventually(what: &str, logs: &dyn Fn() -> String, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}\n{}", logs());
}

fn service(name: &str, backend: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  ports:\n  - {{name: http, port: 80, protocol: TCP}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-1\n  namespace: default\n  labels: {{kubernetes.io/service-name: {name}}}\naddressType: IPv4\nports:\n- {{name: http, port: 80, protocol: TCP}}\nendpoints:\n- addresses: [\"{backend}\"]\n  conditions: {{ready: true}}\n"
    )
}

fn export(name: &str, labels: &str, annotations: &str) -> String {
    format!(
        "apiVersion: multicluster.x-k8s.io/v1beta1\nkind: ServiceExport\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  exportedLabels: {labels}\n  exportedAnnotations: {annotations}\n"
    )
}

/// `kubectl get` of one field of an object, empty when it or the field is missing.
fn field(s: &ApiServer, kind: &str, name: &str, path: &str) -> String {
    s.kubectl(&[
        "get",
        kind,
        name,
        "-n",
        "default",
        "-o",
        &format!("jsonpath={path}"),
    ])
    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    .unwrap_or_default()
}

const IMPORT: &str = "serviceimports.multicluster.x-k8s.io";
const EXPORT: &str = "serviceexports.multicluster.x-k8s.io";

#[test]
fn exported_labels_reach_every_cluster_conflicts_are_reported_and_external_names_refused() {
    let broker = ApiServer::start(&["--context", "broker"]).expect("broker");
    let (c1, c2) = (
        ApiServer::simulated_cluster(1).expect("c1"),
        ApiServer::simulated_cluster(2).expect("c2"),
    );
    let dir = TempDir::new("mcs-v1beta1");
    let (ok, out, err) = broker.subctl(&dir.0, &["deploy-broker"]);
    assert!(ok, "{out}{err}");
    for (c, id) in [(&c1, "cluster1"), (&c2, "cluster2")] {
        let (ok, out, err) = c.subctl(&dir.0, &["join", "broker-info.subm", "--clusterid", id]);
        assert!(ok, "{out}{err}");
    }
    let agents = subsea_integration::lighthouse_agents(&[(&c1, "cluster1"), (&c2, "cluster2")], &dir.0);
    let logs = || agents.iter().map(Daemon::log).collect::<Vec<_>>().join("\n");

    apply(&c1, &service("web", "10.130.1.5"));
    apply(
        &c1,
        &export(
            "web",
            "{team: payments, tier: gold}",
            "{example.com/owner: alice}",
        ),
    );
    eventually("cluster1's exported labels on cluster2's import", &logs, || {
        field(
            &c2,
            IMPORT,
            "web",
            "{.metadata.labels.team}/{.metadata.labels.tier}",
        ) == "payments/gold"
            && field(&c2, IMPORT, "web", "{.metadata.annotations.example\\.com/owner}") == "alice"
    });
    // The importing cluster's ServiceImport status (v1beta1): slices here, Ready.
    eventually(
        "cluster2's import is Ready with its slices present",
        &logs,
        || {
            field(
                &c2,
                IMPORT,
                "web",
                "{.status.endpointSliceObjects}/{.status.conditions[?(@.type==\"Ready\")].reason}",
            ) == "Present/Ready"
        },
    );
    // kubectl's table shows Submariner's columns.
    let table = c2.ok(&["get", IMPORT, "-n", "default"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "TYPE", "IP", "AGE"], "{table}");
    assert!(table.contains("ClusterSetIP"), "{table}");
    // kubectl selects by an exported label in the importing cluster.
    let selected = c2.ok(&[
        "get",
        IMPORT,
        "-n",
        "default",
        "-l",
        "team=payments",
        "-o",
        "name",
    ]);
    assert_eq!(selected.trim(), "serviceimport.multicluster.x-k8s.io/web");

    // cluster2 exports the same service later, with other labels: a conflict, the oldest served.
    apply(&c2, &service("web", "10.131.1.5"));
    apply(&c2, &export("web", "{team: web}", "{}"));
    let conflict = "{.status.conditions[?(@.type==\"Conflict\")].status}/{.status.conditions[?(@.type==\"Conflict\")].reason}";
    eventually("cluster2's export reports the label conflict", &logs, || {
        field(&c2, EXPORT, "web", conflict) == "True/LabelsConflict,AnnotationsConflict"
    });
    assert_eq!(field(&c2, IMPORT, "web", "{.metadata.labels.team}"), "payments");
    // The MCS API puts the Conflict on each export: the oldest hears of it too.
    eventually("cluster1's export reports the conflict too", &logs, || {
        field(&c1, EXPORT, "web", conflict) == "True/LabelsConflict,AnnotationsConflict"
    });

    // cluster1 drops its labels and annotations: they leave every import, and the clusters now
    // differ only in cluster2's label.
    apply(&c1, &export("web", "{}", "{}"));
    eventually("the removed labels leave cluster2's import", &logs, || {
        field(
            &c2,
            IMPORT,
            "web",
            "{.metadata.labels.team}{.metadata.labels.tier}{.metadata.annotations.example\\.com/owner}",
        )
        .is_empty()
            && field(&c2, EXPORT, "web", conflict) == "True/LabelsConflict"
    });
    assert_eq!(
        field(
            &c2,
            IMPORT,
            "web",
            "{.metadata.labels.app\\.kubernetes\\.io/managed-by}"
        ),
        "lighthouse-agent.submariner.io",
        "the agent's own label stays"
    );

    // An ExternalName Service cannot be exported.
    apply(
        &c1,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\n  namespace: default\nspec:\n  type: ExternalName\n  externalName: example.com\n",
    );
    apply(&c1, &export("ext", "{}", "{}"));
    eventually("the ExternalName export is refused", &logs, || {
        field(
            &c1,
            EXPORT,
            "ext",
            "{.status.conditions[?(@.type==\"Valid\")].status}/{.status.conditions[?(@.type==\"Valid\")].reason}",
        ) == "False/InvalidServiceType"
    });
    assert!(
        field(&c2, IMPORT, "ext", "{.metadata.name}").is_empty(),
        "nothing of it is imported"
    );
}
