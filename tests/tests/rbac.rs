//! Service-account tokens, RBAC and the per-cluster broker rule, checked with kubectl.

use base64::Engine;
use subsea_integration::{ApiServer, repo_root};

const SETUP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: broker
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: cluster-c1
  namespace: broker
  annotations:
    subsea.io/cluster-id: c1
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: cluster
  namespace: broker
rules:
- apiGroups: ["submariner.io"]
  resources: ["clusters", "endpoints"]
  verbs: ["create", "get", "list", "watch", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: cluster-c1
  namespace: broker
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: cluster
subjects:
- kind: ServiceAccount
  name: cluster-c1
  namespace: broker
---
apiVersion: v1
kind: Secret
metadata:
  name: cluster-c1-token
  namespace: broker
  annotations:
    kubernetes.io/service-account.name: cluster-c1
type: kubernetes.io/service-account-token
"#;

fn endpoint(name: &str, owner: Option<&str>) -> String {
    let labels = owner
        .map(|o| format!("\n  labels:\n    submariner-io/clusterID: {o}"))
        .unwrap_or_default();
    format!(
        "apiVersion: submariner.io/v1\nkind: Endpoint\nmetadata:\n  name: {name}\n  namespace: broker{labels}\nspec:\n  cluster_id: {}\n  cable_name: c\n  hostname: h\n  subnets: []\n  private_ip: 1.2.3.4\n  public_ip: \"\"\n  nat_enabled: false\n  backend: wireguard\n",
        owner.unwrap_or("x")
    )
}

fn decode(b64: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .expect("base64"),
    )
    .expect("utf-8")
}

#[test]
fn service_account_tokens_rbac_and_the_per_cluster_rule() {
    let s = ApiServer::start(&[]).expect("server");
    s.ok(&[
        "apply",
        "-f",
        repo_root().join("manifests/crds").to_str().expect("utf-8"),
    ]);
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(SETUP)).expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The token controller filled the Secret in.
    let token = decode(&s.ok(&[
        "get",
        "secret",
        "cluster-c1-token",
        "-n",
        "broker",
        "-o",
        "jsonpath={.data.token}",
    ]));
    assert!(token.len() > 20);
    assert_eq!(
        decode(&s.ok(&[
            "get",
            "secret",
            "cluster-c1-token",
            "-n",
            "broker",
            "-o",
            "jsonpath={.data.namespace}"
        ])),
        "broker"
    );
    let ca = decode(&s.ok(&[
        "get",
        "secret",
        "cluster-c1-token",
        "-n",
        "broker",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ]));
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));

    let token_flag = format!("--token={token}");
    let as_c1 = |args: &[&str]| {
        let mut all = vec![token_flag.as_str()];
        all.extend_from_slice(args);
        s.kubectl(&all).expect("kubectl runs")
    };
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).trim().to_string();

    // kubectl auth can-i answers from RBAC.
    assert_eq!(
        stdout(&as_c1(&[
            "auth",
            "can-i",
            "create",
            "endpoints.submariner.io",
            "-n",
            "broker"
        ])),
        "yes"
    );
    assert_eq!(
        stdout(&as_c1(&[
            "auth",
            "can-i",
            "create",
            "endpoints.submariner.io",
            "-n",
            "default"
        ])),
        "no"
    );
    assert_eq!(
        stdout(&as_c1(&["auth", "can-i", "get", "secrets", "-n", "broker"])),
        "no"
    );

    // RBAC denials read as Kubernetes'.
    let denied = as_c1(&["get", "secrets", "-n", "broker"]);
    assert!(!denied.status.success());
    assert_eq!(
        stderr(&denied),
        r#"Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:broker:cluster-c1" cannot list resource "secrets" in API group "" in the namespace "broker""#
    );
    assert!(
        as_c1(&["get", "endpoints.submariner.io", "-n", "broker"])
            .status
            .success()
    );

    // The per-cluster rule: c1 writes only what is labelled c1, and reads the rest.
    let apply_as_c1 = |yaml: &str| {
        s.kubectl_stdin(&[token_flag.as_str(), "apply", "-f", "-"], Some(yaml))
            .expect("runs")
    };
    assert!(apply_as_c1(&endpoint("mine", Some("c1"))).status.success());
    let theirs = apply_as_c1(&endpoint("theirs", Some("c2")));
    assert!(
        stderr(&theirs).contains("may only create broker objects labelled submariner-io/clusterID=c1"),
        "{}",
        stderr(&theirs)
    );
    assert!(!apply_as_c1(&endpoint("unlabelled", None)).status.success());
    // Its own label with another cluster's identity in the spec is refused too.
    let impostor = endpoint("impostor", Some("c1")).replace("cluster_id: c1", "cluster_id: c2");
    let out = apply_as_c1(&impostor);
    assert!(
        stderr(&out).contains("has spec.cluster_id \"c2\""),
        "{}",
        stderr(&out)
    );
    let admin = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(&endpoint("theirs", Some("c2"))))
        .expect("runs");
    assert!(admin.status.success());
    assert!(
        as_c1(&["get", "endpoints.submariner.io", "theirs", "-n", "broker"])
            .status
            .success(),
        "reads are allowed"
    );
    let del = as_c1(&["delete", "endpoints.submariner.io", "theirs", "-n", "broker"]);
    assert!(stderr(&del).contains("Forbidden"), "{}", stderr(&del));
    let relabel = as_c1(&[
        "label",
        "endpoints.submariner.io",
        "mine",
        "-n",
        "broker",
        "--overwrite",
        "submariner-io/clusterID=c2",
    ]);
    assert!(
        stderr(&relabel).contains("Forbidden"),
        "cannot give an object away: {}",
        stderr(&relabel)
    );
    assert!(
        as_c1(&["delete", "endpoints.submariner.io", "mine", "-n", "broker"])
            .status
            .success()
    );

    // Deleting the service account revokes its tokens.
    s.ok(&["delete", "serviceaccount", "cluster-c1", "-n", "broker"]);
    let revoked = as_c1(&["get", "endpoints.submariner.io", "-n", "broker"]);
    assert!(
        stderr(&revoked).contains("You must be logged in to the server"),
        "{}",
        stderr(&revoked)
    );
}
