//! Regression tests for the defects an adversarial pass found in `subsea apiserver`: each case
//! here succeeded (or hurt the server) before its fix.

use std::time::Duration;

use base64::Engine;
use subsea_integration::ApiServer;

const ATTACKER: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: mallory
  namespace: team
---
apiVersion: v1
kind: Secret
metadata:
  name: mallory-token
  namespace: team
  annotations:
    kubernetes.io/service-account.name: mallory
type: kubernetes.io/service-account-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: rbac-writer
  namespace: team
rules:
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["create", "update", "patch", "get", "list"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: mallory-rbac-writer
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: rbac-writer
subjects:
- kind: ServiceAccount
  name: mallory
  namespace: team
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: crb-writer
rules:
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["clusterrolebindings", "clusterroles"]
  verbs: ["create", "update", "patch", "get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: mallory-crb-writer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: crb-writer
subjects:
- kind: ServiceAccount
  name: mallory
  namespace: team
"#;

/// The token the token controller wrote into `ns/secret`.
fn token_of(s: &ApiServer, ns: &str, secret: &str) -> String {
    for _ in 0..100 {
        let out = s.ok(&["get", "secret", secret, "-n", ns, "-o", "jsonpath={.data.token}"]);
        if !out.trim().is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(out.trim())
                .expect("base64 token");
            return String::from_utf8(raw).expect("utf-8 token");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no token in {ns}/{secret}");
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

const NOT_HELD: &str = "is attempting to grant RBAC permissions not currently held";

#[test]
fn rbac_writers_cannot_grant_what_they_do_not_hold() {
    let s = ApiServer::start(&[]).expect("server");
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(ATTACKER))
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let token = format!("--token={}", token_of(&s, "team", "mallory-token"));
    let as_mallory = |yaml: &str, verb: &[&str]| {
        let mut args = vec![token.as_str()];
        args.extend_from_slice(verb);
        s.kubectl_stdin(&args, Some(yaml)).expect("kubectl runs")
    };

    // Binding cluster-admin (a default ClusterRole) to itself.
    let crb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwn\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: mallory\n  namespace: team\n";
    let out = as_mallory(crb, &["create", "-f", "-"]);
    assert!(!out.status.success(), "bound cluster-admin to itself");
    let err = stderr(&out);
    assert!(err.contains("Forbidden") && err.contains(NOT_HELD), "{err}");
    assert!(
        err.contains(r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#),
        "{err}"
    );

    // A Role with every permission in its namespace.
    let star = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: star\n  namespace: team\nrules:\n- apiGroups: [\"*\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n";
    let err = stderr(&as_mallory(star, &["create", "-f", "-"]));
    assert!(err.contains(NOT_HELD), "{err}");
    // The same through server-side apply.
    let err = stderr(&as_mallory(star, &["apply", "--server-side", "-f", "-"]));
    assert!(err.contains(NOT_HELD), "server-side apply: {err}");

    // Widening its own bound Role.
    let out = s
        .kubectl(&[
            token.as_str(),
            "patch",
            "role",
            "rbac-writer",
            "-n",
            "team",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],"verbs":["get"]}}]"#,
        ])
        .expect("runs");
    assert!(stderr(&out).contains(NOT_HELD), "{}", stderr(&out));

    // Within what it holds, it may create roles and bind them.
    let subset = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: cm-reader\n  namespace: team\nrules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\"]\n";
    let out = as_mallory(subset, &["create", "-f", "-"]);
    assert!(
        out.status.success(),
        "a subset of its own rules: {}",
        stderr(&out)
    );
    let rb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: cm-reader\n  namespace: team\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: cm-reader\nsubjects:\n- kind: User\n  name: bob\n";
    let out = as_mallory(rb, &["create", "-f", "-"]);
    assert!(out.status.success(), "binding a role it holds: {}", stderr(&out));

    // A binding's roleRef never changes, whoever asks.
    let repoint =
        r#"{"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"}}"#;
    for who in [Some(token.as_str()), None] {
        let mut args: Vec<&str> = who.into_iter().collect();
        args.extend([
            "patch",
            "rolebinding",
            "cm-reader",
            "-n",
            "team",
            "--type=merge",
            "-p",
            repoint,
        ]);
        let out = s.kubectl(&args).expect("runs");
        let err = stderr(&out);
        assert!(!out.status.success(), "roleRef changed by {who:?}");
        assert!(err.contains("cannot change roleRef"), "{err}");
    }

    // The `bind` verb on a role allows binding it without holding it; `escalate` allows writing
    // roles beyond one's own rules.
    let grants = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: bind-view\nrules:\n- apiGroups: [rbac.authorization.k8s.io]\n  resources: [clusterroles]\n  resourceNames: [view]\n  verbs: [bind]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: mallory-bind-view\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: bind-view\nsubjects:\n- kind: ServiceAccount\n  name: mallory\n  namespace: team\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: escalator\n  namespace: team\nrules:\n- apiGroups: [rbac.authorization.k8s.io]\n  resources: [roles]\n  verbs: [escalate]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: mallory-escalator\n  namespace: team\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: escalator\nsubjects:\n- kind: ServiceAccount\n  name: mallory\n  namespace: team\n";
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(grants))
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let bind_view = crb
        .replace("name: pwn", "name: mallory-view")
        .replace("name: cluster-admin", "name: view");
    let out = as_mallory(&bind_view, &["create", "-f", "-"]);
    assert!(out.status.success(), "bind verb: {}", stderr(&out));
    let out = as_mallory(star, &["create", "-f", "-"]);
    assert!(out.status.success(), "escalate verb: {}", stderr(&out));

    // None of the refused attempts left anything behind.
    let can = |verb: &str, what: &str| {
        let o = s
            .kubectl(&[token.as_str(), "auth", "can-i", verb, what, "-n", "default"])
            .expect("runs");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(can("get", "secrets"), "no");
    assert_eq!(can("delete", "nodes"), "no");
    assert!(
        s.fails(&["get", "clusterrolebinding", "pwn"])
            .contains("NotFound")
    );
}

#[test]
fn default_cluster_roles_exist_and_bind_as_on_any_cluster() {
    let s = ApiServer::start(&[]).expect("server");
    let names = s.ok(&["get", "clusterroles", "-o", "name"]);
    for role in ["cluster-admin", "admin", "edit", "view"] {
        assert!(
            names.contains(&format!("clusterrole.rbac.authorization.k8s.io/{role}")),
            "{names}"
        );
    }
    let subjects = s.ok(&[
        "get",
        "clusterrolebinding",
        "cluster-admin",
        "-o",
        "jsonpath={.subjects[0].name}",
    ]);
    assert_eq!(subjects.trim(), "system:masters");
    s.ok(&["create", "namespace", "team"]);
    s.ok(&["create", "serviceaccount", "viewer", "-n", "team"]);
    let secret = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: viewer\n  namespace: team\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects:\n- kind: ServiceAccount\n  name: viewer\n  namespace: team\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: viewer-token\n  namespace: team\n  annotations:\n    kubernetes.io/service-account.name: viewer\ntype: kubernetes.io/service-account-token\n";
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(secret))
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let token = format!("--token={}", token_of(&s, "team", "viewer-token"));
    let can = |verb: &str, what: &str| {
        let o = s
            .kubectl(&[token.as_str(), "auth", "can-i", verb, what, "-n", "team"])
            .expect("runs");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(can("list", "configmaps"), "yes");
    assert_eq!(can("get", "secrets"), "no");
    assert_eq!(can("create", "configmaps"), "no");
    // Restarting keeps one copy of each and changes nothing.
    let mut s = s;
    s.restart().expect("restart");
    let again = s.ok(&["get", "clusterroles", "-o", "name"]);
    assert_eq!(
        again
            .matches("clusterrole.rbac.authorization.k8s.io/view\n")
            .count(),
        1
    );
}
