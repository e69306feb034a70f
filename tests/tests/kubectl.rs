//! The installed kubectl against `subsea apiserver`: what a user types must work as on a real
//! cluster, including the error messages.

use std::process::{Command, Stdio};
use std::time::Duration;

use subsea_integration::{ApiServer, repo_root};

const CLUSTER: &str = r#"apiVersion: submariner.io/v1
kind: Cluster
metadata:
  name: cluster1
  namespace: default
spec:
  cluster_id: cluster1
  service_cidr: ["100.66.0.0/16"]
  cluster_cidr: ["10.130.0.0/16"]
  global_cidr: []
"#;

const EXPORT: &str = r#"apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata:
  name: payment-service
  namespace: default
"#;

fn with_crds() -> ApiServer {
    let s = ApiServer::start(&[]).expect("server starts");
    let crds = repo_root().join("manifests/crds");
    let out = s.ok(&["apply", "-f", crds.to_str().expect("utf-8 path")]);
    assert!(out.contains("clusters.submariner.io created"), "{out}");
    s
}

fn apply(s: &ApiServer, yaml: &str) -> String {
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(yaml))
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn api_resources_lists_builtins_and_installed_crds() {
    let s = with_crds();
    let out = s.ok(&["api-resources"]);
    for want in [
        "configmaps",
        "namespaces",
        "leases",
        "endpointslices",
        "customresourcedefinitions",
        "clusters",
        "endpoints",
        "gateways",
        "serviceexports",
        "serviceimports",
        "submariners",
        "servicediscoveries",
        "brokers",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(want)),
            "{want} missing from:\n{out}"
        );
    }
    assert!(out.contains("svcex"), "short names are listed:\n{out}");
    let version = s.ok(&["version", "-o", "json"]);
    assert!(version.contains("\"minor\": \"32\""), "{version}");
}

#[test]
fn apply_create_reapply_and_get_in_every_form() {
    let s = with_crds();
    assert!(apply(&s, EXPORT).contains("serviceexport.multicluster.x-k8s.io/payment-service created"));
    assert!(apply(&s, CLUSTER).contains("cluster.submariner.io/cluster1 created"));
    assert!(apply(&s, CLUSTER).contains("unchanged"));
    let changed = CLUSTER.replace("100.66.0.0/16", "100.67.0.0/16");
    assert!(apply(&s, &changed).contains("configured"));
    let export_labelled = EXPORT.replace("namespace: default", "namespace: default\n  labels: {tier: pay}");
    assert!(apply(&s, &export_labelled).contains("configured"));

    let yaml = s.ok(&["get", "clusters", "cluster1", "-o", "yaml"]);
    assert!(
        yaml.contains("100.67.0.0/16") && !yaml.contains("100.66.0.0/16"),
        "{yaml}"
    );
    assert!(
        yaml.contains("generation: 2"),
        "a spec change bumps generation:\n{yaml}"
    );
    for form in [
        "clusters",
        "cluster",
        "clusters.submariner.io",
        "clusters.v1.submariner.io",
    ] {
        let out = s.ok(&["get", form, "-o", "name"]);
        assert_eq!(out.trim(), "cluster.submariner.io/cluster1", "form {form}");
    }
    for form in [
        "svcex",
        "serviceexport",
        "serviceexports.multicluster.x-k8s.io",
        "serviceexports.v1beta1.multicluster.x-k8s.io",
    ] {
        let out = s.ok(&["get", form, "-o", "name"]);
        assert_eq!(
            out.trim(),
            "serviceexport.multicluster.x-k8s.io/payment-service",
            "form {form}"
        );
    }
    let json = s.ok(&[
        "get",
        "serviceexports.v1beta1.multicluster.x-k8s.io",
        "payment-service",
        "-o",
        "json",
    ]);
    assert!(
        json.contains("\"apiVersion\": \"multicluster.x-k8s.io/v1beta1\""),
        "served as v1beta1:\n{json}"
    );
    let all = s.ok(&["get", "svcex", "-A"]);
    assert!(
        all.contains("NAMESPACE") && all.contains("default") && all.contains("payment-service"),
        "{all}"
    );
    assert!(
        s.ok(&["get", "svcex", "-l", "tier=pay", "-o", "name"])
            .contains("payment-service")
    );
    assert!(
        s.ok(&["get", "svcex", "-l", "tier=other", "-o", "name"])
            .trim()
            .is_empty()
    );
    let wide = s.ok(&["get", "clusters", "-o", "wide"]);
    assert!(wide.contains("cluster1"), "{wide}");
    // Server-side printing: the CRD's printer columns, and the built-ins' usual ones.
    let table = s.ok(&["get", "clusters"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        vec!["NAME", "CLUSTER ID", "SERVICE CIDR", "CLUSTER CIDR", "AGE"],
        "{table}"
    );
    assert!(table.contains(r#"["100.67.0.0/16"]"#), "{table}");
    let ns = s.ok(&["get", "ns", "default"]);
    assert!(ns.starts_with("NAME      STATUS   AGE\ndefault   Active"), "{ns}");
}

#[test]
fn label_annotate_and_patch() {
    let s = with_crds();
    apply(&s, CLUSTER);
    assert!(
        s.ok(&["label", "cluster", "cluster1", "env=prod"])
            .contains("labeled")
    );
    assert!(
        s.ok(&["annotate", "cluster", "cluster1", "owner=team-a"])
            .contains("annotated")
    );
    s.ok(&[
        "patch",
        "cluster",
        "cluster1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"color_codes":["blue"]}}"#,
    ]);
    s.ok(&[
        "patch",
        "cluster",
        "cluster1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/spec/global_cidr/-","value":"242.0.0.0/16"}]"#,
    ]);
    let out = s.ok(&["get", "cluster", "cluster1", "-o", "jsonpath={.metadata.labels.env} {.metadata.annotations.owner} {.spec.color_codes[0]} {.spec.global_cidr[0]}"]);
    assert_eq!(out, "prod team-a blue 242.0.0.0/16");
    // Removing a field with a null in a merge patch.
    s.ok(&[
        "patch",
        "cluster",
        "cluster1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"color_codes":null}}"#,
    ]);
    let out = s.ok(&["get", "cluster", "cluster1", "-o", "jsonpath={.spec.color_codes}"]);
    assert_eq!(out, "");
}

#[test]
fn watch_shows_added_modified_deleted() {
    let s = with_crds();
    apply(&s, &CLUSTER.replace("cluster1", "cluster0"));
    let mut watch = Command::new("kubectl")
        .env("KUBECONFIG", s.kubeconfig())
        .args(["--cache-dir", s.kube_cache.0.to_str().expect("utf-8")])
        .args([
            "get",
            "clusters",
            "--watch",
            "--output-watch-events",
            "--request-timeout=30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl watch starts");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = watch.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The watch is established once the existing object has been listed.
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("watch header");
    assert!(first.starts_with("EVENT"), "{first}");
    let listed = rx.recv_timeout(Duration::from_secs(20)).expect("initial object");
    assert!(listed.contains("cluster0"), "{listed}");
    apply(&s, CLUSTER);
    s.ok(&["label", "cluster", "cluster1", "a=b"]);
    s.ok(&["delete", "cluster", "cluster1"]);
    let mut events = Vec::new();
    while events.len() < 3 {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            break;
        };
        events.push(line.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(
        events,
        vec!["ADDED cluster1", "MODIFIED cluster1", "DELETED cluster1"]
    );
}

#[test]
fn wait_for_condition_and_for_delete() {
    let s = with_crds();
    apply(&s, EXPORT);
    let cfg = s.kubeconfig();
    let cache = s.kube_cache.0.clone();
    let run_wait = move |args: Vec<&'static str>| {
        let cfg = cfg.clone();
        let cache = cache.clone();
        std::thread::spawn(move || {
            Command::new("kubectl")
                .env("KUBECONFIG", cfg)
                .arg("--cache-dir")
                .arg(cache)
                .args(args)
                .output()
                .expect("kubectl wait runs")
        })
    };
    let waiter = run_wait(vec![
        "wait",
        "--for=condition=Valid",
        "serviceexport/payment-service",
        "--timeout=20s",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    s.ok(&[
        "patch",
        "serviceexport",
        "payment-service",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Valid","status":"True","reason":"Valid"}]}}"#,
    ]);
    let out = waiter.join().expect("wait thread");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));

    let waiter = run_wait(vec![
        "wait",
        "--for=delete",
        "serviceexport/payment-service",
        "--timeout=20s",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    s.ok(&["delete", "serviceexport", "payment-service"]);
    let out = waiter.join().expect("wait thread");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn errors_print_as_kubernetes_prints_them() {
    let s = with_crds();
    let err = s.fails(&["get", "cluster", "nope"]);
    assert_eq!(
        err.trim(),
        r#"Error from server (NotFound): clusters.submariner.io "nope" not found"#
    );
    apply(&s, CLUSTER);
    let out = s
        .kubectl_stdin(&["create", "-f", "-"], Some(CLUSTER))
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"Error from server (AlreadyExists): error when creating "STDIN": clusters.submariner.io "cluster1" already exists"#), "{err}");
    // A replace based on a stale resourceVersion conflicts.
    let stale = s.ok(&["get", "cluster", "cluster1", "-o", "yaml"]);
    s.ok(&["label", "cluster", "cluster1", "bump=1"]);
    let out = s
        .kubectl_stdin(&["replace", "-f", "-"], Some(&stale))
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on clusters.submariner.io "cluster1": the object has been modified; please apply your changes to the latest version and try again"#), "{err}");
    let err = s.fails(&[
        "patch",
        "cluster",
        "cluster1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"cluster_id":""}}"#,
    ]);
    assert_eq!(
        err.trim(),
        r#"The Cluster "cluster1" is invalid: spec.cluster_id: Invalid value: "": spec.cluster_id in body should be at least 1 chars long"#
    );
    let bad_name = CLUSTER.replace("name: cluster1", "name: Cluster_1");
    let out = s
        .kubectl_stdin(&["create", "-f", "-"], Some(&bad_name))
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"The Cluster "Cluster_1" is invalid: metadata.name: Invalid value: "Cluster_1": a lowercase RFC 1123 subdomain"#), "{err}");
    // Unknown fields are rejected under kubectl's default strict validation.
    let unknown = CLUSTER.replace("global_cidr: []", "global_cidr: []\n  colour: red");
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(&unknown))
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"unknown field "spec.colour""#), "{err}");
}

#[test]
fn namespaces_terminate_and_take_their_contents() {
    let s = ApiServer::start(&[]).expect("server starts");
    apply(&s, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n");
    apply(
        &s,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: team\ndata:\n  k: v\n",
    );
    // kubectl reports the missing namespace rather than the object, as on a real cluster.
    let err = s.fails(&["get", "cm", "c", "-n", "missing"]);
    assert!(err.contains(r#"namespaces "missing" not found"#), "{err}");
    let out = s
        .kubectl_stdin(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: missing\n"),
        )
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"namespaces "missing" not found"#));
    assert!(s.ok(&["delete", "ns", "team"]).contains("deleted"));
    assert!(s.fails(&["get", "ns", "team"]).contains("NotFound"));
    assert!(s.ok(&["get", "cm", "-n", "team", "-o", "name"]).trim().is_empty());
}

#[test]
fn bad_input_gets_a_status_not_a_crash() {
    let s = with_crds();
    let dir = subsea_integration::TempDir::new("badinput");
    let post = |name: &str, body: &[u8], path: &str| {
        let f = dir.0.join(name);
        std::fs::write(&f, body).expect("write body");
        let out = s
            .kubectl(&["create", "--raw", path, "-f", f.to_str().expect("utf-8")])
            .expect("runs");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let cms = "/api/v1/namespaces/default/configmaps";
    assert!(post("malformed", b"{\"metadata\": {", cms).contains("error decoding request body as JSON"));
    let wrong = post(
        "wrong",
        br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#,
        cms,
    );
    assert!(
        wrong.contains("the kind in the data (Secret) does not match the expected kind (ConfigMap)"),
        "{wrong}"
    );
    let wrong_av = post(
        "wrongav",
        br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
        cms,
    );
    assert!(
        wrong_av.contains("does not match the expected API version (v1)"),
        "{wrong_av}"
    );
    let bad_name = post(
        "badname",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"-x-"}}"#,
        cms,
    );
    assert!(
        bad_name.contains("is invalid") && bad_name.contains("metadata.name"),
        "{bad_name}"
    );
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
        "x".repeat(4 << 20)
    );
    assert!(
        post("big", big.as_bytes(), cms).contains("larger than the limit"),
        "413 for oversized bodies"
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(post("deep", deep.as_bytes(), cms).contains("recursion limit exceeded"));
    assert!(post("array", b"[]", cms).contains("must be a JSON object"));
    // The server is still healthy and stored nothing.
    assert_eq!(s.ok(&["get", "--raw", "/readyz"]), "ok");
    assert!(s.ok(&["get", "cm", "-o", "name"]).trim().is_empty());
}

#[test]
fn broker_policy_manifest_loads() {
    let s = ApiServer::start(&[]).expect("server starts");
    let dir = repo_root().join("manifests/broker");
    let out = s.ok(&["apply", "-f", dir.to_str().expect("utf-8")]);
    assert!(
        out.contains(
            "validatingadmissionpolicy.admissionregistration.k8s.io/subsea-broker-per-cluster-writes created"
        ),
        "{out}"
    );
    assert!(out.contains("validatingadmissionpolicybinding.admissionregistration.k8s.io/subsea-broker-per-cluster-writes created"), "{out}");
    let ns = s.ok(&[
        "get",
        "ns",
        "default",
        "-o",
        "jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name}",
    ]);
    assert_eq!(
        ns, "default",
        "namespaces carry their name label, which the policy binding selects on"
    );
}

#[test]
fn deleting_an_owner_collects_or_orphans_its_dependents() {
    let s = ApiServer::start(&[]).expect("server starts");
    let child = |name: &str, owner: &str, uid: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: {uid}}}\n"
        )
    };
    for (owner, dependent) in [("owner-a", "child-a"), ("owner-b", "child-b")] {
        apply(
            &s,
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {owner}\n"),
        );
        let uid = s.ok(&["get", "cm", owner, "-o", "jsonpath={.metadata.uid}"]);
        apply(&s, &child(dependent, owner, &uid));
    }
    s.ok(&["delete", "cm", "owner-a"]);
    s.ok(&["delete", "cm", "owner-b", "--cascade=orphan"]);
    let mut collected = false;
    for _ in 0..100 {
        if s.kubectl(&["get", "cm", "child-a"]).expect("runs").status.code() == Some(1) {
            collected = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(collected, "the dependent of a deleted owner is garbage-collected");
    let refs = s.ok(&[
        "get",
        "cm",
        "child-b",
        "-o",
        "jsonpath={.metadata.ownerReferences}",
    ]);
    assert!(
        refs.trim().is_empty() || refs.trim() == "[]",
        "orphaned dependents lose the reference: {refs}"
    );
}

#[test]
fn server_side_apply_tracks_owners_and_conflicts() {
    let s = ApiServer::start(&[]).expect("server starts");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    let out = s
        .kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(cm))
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("configmap/ssa serverside-applied"));
    let managers = s.ok(&[
        "get",
        "cm",
        "ssa",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}:{.metadata.managedFields[*].operation}",
    ]);
    assert_eq!(managers, "kubectl:Apply");
    let changed = cm.replace("a: \"1\"", "a: \"9\"");
    let out = s
        .kubectl_stdin(
            &["apply", "--server-side", "--field-manager", "other", "-f", "-"],
            Some(&changed),
        )
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\" using v1: .data.a"),
        "{err}"
    );
    let out = s
        .kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager",
                "other",
                "--force-conflicts",
                "-f",
                "-",
            ],
            Some(&changed),
        )
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(s.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.a}"]), "9");
    // Both managers applied b with the same value, so they co-own it: it stays until neither
    // applies it any more.
    let only_a = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"9\"\n";
    let apply_as = |args: &[&str]| {
        s.kubectl_stdin(args, Some(only_a))
            .expect("runs")
            .status
            .success()
    };
    assert!(apply_as(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-"
    ]));
    assert_eq!(
        s.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data}"]),
        r#"{"a":"9","b":"2"}"#
    );
    assert!(apply_as(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-f",
        "-"
    ]));
    assert_eq!(
        s.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data}"]),
        r#"{"a":"9"}"#
    );
}

#[test]
fn client_side_apply_twice_merges_like_a_real_cluster() {
    let s = with_crds();
    let svc = |ports: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {{app: web}}\n  ports:\n{ports}"
        )
    };
    apply(&s, &svc("  - {name: http, port: 80, targetPort: 8080}\n"));
    apply(
        &s,
        &svc(
            "  - {name: http, port: 80, targetPort: 8080}\n  - {name: https, port: 443, targetPort: 8443}\n",
        ),
    );
    assert_eq!(
        s.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.ports[*].port}"]),
        "80 443",
        "port added by strategic merge"
    );
    apply(&s, &svc("  - {name: https, port: 443, targetPort: 8443}\n"));
    assert_eq!(
        s.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.ports[*].port}"]),
        "443",
        "port removed by a $patch: delete directive"
    );
    let changed = CLUSTER.replace("global_cidr: []", "global_cidr: []\n  color_codes: [blue]");
    apply(&s, &changed);
    apply(&s, CLUSTER);
    assert_eq!(
        s.ok(&["get", "cluster", "cluster1", "-o", "jsonpath={.spec.color_codes}"]),
        "",
        "a field dropped from the file is removed"
    );
}

#[test]
fn imperative_create_commands_work() {
    // kubectl's generators send protobuf bodies.
    let s = ApiServer::start(&[]).expect("server starts");
    assert!(
        s.ok(&["create", "namespace", "team"])
            .contains("namespace/team created")
    );
    assert!(
        s.ok(&["create", "configmap", "cfg", "-n", "team", "--from-literal=k=v"])
            .contains("configmap/cfg created")
    );
    assert!(
        s.ok(&[
            "create",
            "secret",
            "generic",
            "pw",
            "-n",
            "team",
            "--from-literal=p=hunter2"
        ])
        .contains("secret/pw created")
    );
    assert!(
        s.ok(&["create", "serviceaccount", "bot", "-n", "team"])
            .contains("serviceaccount/bot created")
    );
    assert_eq!(
        s.ok(&["get", "cm", "cfg", "-n", "team", "-o", "jsonpath={.data.k}"]),
        "v"
    );
    assert_eq!(
        s.ok(&["get", "secret", "pw", "-n", "team", "-o", "jsonpath={.data.p}"]),
        "aHVudGVyMg=="
    );
    let string_data =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sd\n  namespace: team\nstringData:\n  p: hunter2\n";
    apply(&s, string_data);
    assert_eq!(
        s.ok(&["get", "secret", "sd", "-n", "team", "-o", "jsonpath={.data.p}"]),
        "aHVudGVyMg==",
        "stringData folds into data"
    );
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: team\ndatta:\n  k: v\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(bad)).expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("strict decoding error: unknown field \"datta\""));
}

#[test]
fn server_side_apply_keeps_status_of_kinds_without_a_status_subresource() {
    // Submariner's Gateway is status-only and has no status subresource: gateways write it
    // with server-side apply, so the applied status must be stored.
    let s = with_crds();
    s.ok(&["create", "namespace", "submariner-operator"]);
    let gw = |ha: &str| {
        format!(
            "apiVersion: submariner.io/v1\nkind: Gateway\nmetadata:\n  name: gw1\n  namespace: submariner-operator\nstatus:\n  haStatus: {ha}\n  version: v\n  statusFailure: \"\"\n  connections: []\n  localEndpoint: {{cluster_id: c1, cable_name: x, hostname: gw1, subnets: [], private_ip: \"\", public_ip: \"\", nat_enabled: false, backend: wireguard}}\n"
        )
    };
    for ha in ["active", "passive"] {
        let out = s
            .kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(&gw(ha)))
            .expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got = s.ok(&[
            "get",
            "gateways.submariner.io",
            "-n",
            "submariner-operator",
            "gw1",
            "-o",
            "jsonpath={.status.haStatus}",
        ]);
        assert_eq!(got, ha);
    }
}

#[test]
fn deploy_manifests_load_and_their_commands_are_accepted_by_the_binary() {
    // Every workload in manifests/deploy applies to a Kubernetes API, and every container
    // command is one `subsea` accepts (checked with --help, so a renamed subcommand or flag
    // fails here rather than in a real cluster).
    let s = with_crds();
    s.ok(&["create", "namespace", "submariner-operator"]);
    let dir = repo_root().join("manifests/deploy");
    for entry in std::fs::read_dir(&dir).expect("manifests/deploy") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace("SUBSEA_IMAGE", "example/subsea:test");
        let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(&text)).expect("runs");
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let json = s.ok(&["get", "daemonsets,deployments", "-A", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        for item in v["items"].as_array().expect("items") {
            for c in item["spec"]["template"]["spec"]["containers"]
                .as_array()
                .expect("containers")
            {
                let cmd: Vec<String> = c["command"]
                    .as_array()
                    .expect("command")
                    .iter()
                    .map(|a| a.as_str().expect("str").to_string())
                    .collect();
                assert_eq!(cmd[0], "subsea", "{}", path.display());
                let out = std::process::Command::new(subsea_integration::binary("subsea"))
                    .args(&cmd[1..])
                    .arg("--help")
                    .output()
                    .expect("subsea runs");
                assert!(
                    out.status.success(),
                    "`{} --help` failed: {}",
                    cmd.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
