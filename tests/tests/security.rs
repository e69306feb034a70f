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

/// One request with curl: (status code, body).
fn raw(s: &ApiServer, token: &str, method: &str, path: &str, ct: &str, body: &[u8]) -> (u16, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("curl")
        .args(["-sk", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .args(["-H", &format!("Content-Type: {ct}")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--data-binary", "@-"])
        .arg(format!("{}{path}", s.url()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl runs");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body).expect("request body");
    }
    let out = child.wait_with_output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn get(s: &ApiServer, token: &str, path: &str) -> (u16, serde_json::Value) {
    let (code, body) = raw(s, token, "GET", path, "application/json", b"");
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn continue_tokens_only_continue_their_own_list() {
    let s = ApiServer::start(&[]).expect("server");
    s.ok(&["create", "namespace", "team"]);
    for n in ["a", "b", "c"] {
        s.ok(&[
            "create",
            "secret",
            "generic",
            &format!("s-{n}"),
            "-n",
            "team",
            "--from-literal=password=hunter2",
        ]);
        s.ok(&["create", "configmap", &format!("c-{n}"), "-n", "team"]);
    }
    s.ok(&["create", "serviceaccount", "reader", "-n", "team"]);
    let setup = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: cm-reader\n  namespace: team\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get, list]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: reader\n  namespace: team\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: cm-reader\nsubjects:\n- kind: ServiceAccount\n  name: reader\n  namespace: team\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: reader-token\n  namespace: team\n  annotations:\n    kubernetes.io/service-account.name: reader\ntype: kubernetes.io/service-account-token\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(setup)).expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let reader = token_of(&s, "team", "reader-token");
    let admin = s.admin_token();

    let (code, page) = get(&s, &admin, "/api/v1/namespaces/team/secrets?limit=1");
    assert_eq!(code, 200);
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    let steal = format!("/api/v1/namespaces/team/configmaps?limit=1&continue={token}");
    let (code, body) = get(&s, &reader, &steal);
    assert_eq!(code, 400, "{body}");
    assert!(
        !body.to_string().contains("aHVudGVyMg"),
        "secret data leaked: {body}"
    );
    let (code, _) = get(&s, &admin, &steal);
    assert_eq!(code, 400, "another resource, even for the same caller");
    // The owner still continues its own list afterwards.
    let (code, next) = get(
        &s,
        &admin,
        &format!("/api/v1/namespaces/team/secrets?limit=1&continue={token}"),
    );
    assert_eq!(code, 200);
    assert_eq!(next["items"].as_array().map(Vec::len), Some(1));
    // The reader's own paging works.
    let (code, cms) = get(&s, &reader, "/api/v1/namespaces/team/configmaps?limit=1");
    assert_eq!(code, 200);
    let t = cms["metadata"]["continue"].as_str().expect("token");
    let (code, _) = get(
        &s,
        &reader,
        &format!("/api/v1/namespaces/team/configmaps?limit=5&continue={t}"),
    );
    assert_eq!(code, 200);
}

#[test]
fn the_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = ApiServer::start(&[]).expect("server");
    s.ok(&["create", "secret", "generic", "x", "--from-literal=k=v"]);
    let dir = s.data.0.clone();
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    // On etcd the objects are not in the data directory; the rest of it is the same.
    let log_files: &[&str] = if s.etcd.is_some() {
        &[]
    } else {
        &["snapshot.jsonl", "wal.log"]
    };
    let secret_files: Vec<&str> = log_files
        .iter()
        .copied()
        .chain([
            "lock",
            "admin.kubeconfig",
            "admin.token",
            "ca.key",
            "apiserver.key",
        ])
        .collect();
    assert_eq!(mode(&dir), 0o700, "data directory");
    for f in &secret_files {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    // A directory loosened by hand (an old version, a careless chmod) is tightened at start.
    s.kill();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for f in log_files {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    s.restart().expect("restart");
    assert_eq!(mode(&dir), 0o700);
    for f in &secret_files {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f} after restart");
    }
    assert!(s.log().contains("restricting it to its owner"), "{}", s.log());
}

#[test]
fn deeply_nested_yaml_is_refused_before_parsing() {
    let s = ApiServer::start(&[]).expect("server");
    let admin = s.admin_token();
    let path = "/api/v1/namespaces/default/configmaps";
    let flow = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}{}\n",
        "[".repeat(60_000),
        "]".repeat(60_000)
    );
    let (code, body) = raw(&s, &admin, "POST", path, "application/yaml", flow.as_bytes());
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("nesting deeper than 128"), "{body}");
    let block: String = (0..1500).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
    let (code, body) = raw(&s, &admin, "POST", path, "application/yaml", block.as_bytes());
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("nesting deeper"), "{body}");
    // Ordinary YAML still works, and the server is healthy.
    let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata:\n  k: \"[v]\"\n";
    let (code, body) = raw(&s, &admin, "POST", path, "application/yaml", ok.as_bytes());
    assert_eq!(code, 201, "{body}");
    assert_eq!(get(&s, &admin, "/healthz").0, 200);
}

#[test]
fn watchers_that_never_read_are_closed_and_writers_go_on() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let s = ApiServer::start(&[]).expect("server");
    let admin = s.admin_token();
    s.ok(&["create", "configmap", "big"]);
    let rv = s.ok(&[
        "get",
        "configmap",
        "big",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let watchers: Vec<_> = (0..20)
        .map(|_| {
            Command::new("curl")
                .args(["-sk", "-N", "-H", &format!("Authorization: Bearer {admin}")])
                .arg(format!(
                    "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={}",
                    s.url(),
                    rv.trim()
                ))
                .stdout(Stdio::piped())
                .spawn()
                .expect("curl")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = s.rss_kib();
    const UPDATES: usize = 25;
    for i in 0..UPDATES {
        let value = format!("{i}{}", "x".repeat(2 << 20));
        let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "big"}, "data": {"v": value}});
        let (code, resp) = raw(
            &s,
            &admin,
            "PUT",
            "/api/v1/namespaces/default/configmaps/big",
            "application/json",
            body.to_string().as_bytes(),
        );
        assert_eq!(code, 200, "update {i}: {}", &resp[..resp.len().min(300)]);
    }
    let grown_mib = s.rss_kib().saturating_sub(before) / 1024;
    // Unbounded, each of the 20 watchers would hold 25 × 2 MiB serialized events (1 GB).
    assert!(
        grown_mib < 400,
        "RSS grew {grown_mib} MiB with 20 stalled watchers"
    );
    // Every stalled watcher was closed: reading it now reaches the end, short of the 25 events.
    for mut w in watchers {
        let mut out = Vec::new();
        w.stdout
            .take()
            .expect("stdout")
            .read_to_end(&mut out)
            .expect("read");
        let _ = w.wait();
        let events = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
        assert!(events < UPDATES, "a stalled watcher got all {events} events");
    }
}

#[test]
fn subctl_says_when_the_api_is_unreachable_or_the_token_rejected() {
    let s = ApiServer::start(&["--context", "c1"]).expect("server");
    let dir = subsea_integration::TempDir::new("unreachable");
    let original = std::fs::read_to_string(s.kubeconfig()).expect("kubeconfig");
    let url = s.url();
    let write = |name: &str, text: String| {
        let p = dir.0.join(name);
        std::fs::write(&p, text).expect("write kubeconfig");
        p
    };
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    // Accepts TCP (the kernel's backlog) but never answers the TLS handshake.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let cases = [
        (
            write(
                "closed",
                original.replace(&url, &format!("https://127.0.0.1:{closed}")),
            ),
            "cannot reach the API server at https://127.0.0.1:",
        ),
        (
            write(
                "silent",
                original.replace(&url, &format!("https://127.0.0.1:{silent_port}")),
            ),
            "did not answer within 1 s",
        ),
        (
            write("revoked", original.replace(&s.admin_token(), "not-a-valid-token")),
            "rejected the credentials (401 Unauthorized)",
        ),
    ];
    for (kc, want) in &cases {
        for cmd in [
            &["show", "brokers"][..],
            &["show", "all"][..],
            &["diagnose", "deployment"][..],
        ] {
            let out = std::process::Command::new(subsea_integration::binary("subctl"))
                .args(cmd)
                .args(["--connect-timeout", "1", "--kubeconfig"])
                .arg(kc)
                .output()
                .expect("subctl runs");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd:?} with {}: exit 0", kc.display());
            assert!(err.contains(want), "{cmd:?} with {}: {err}", kc.display());
            assert!(!String::from_utf8_lossy(&out.stdout).contains("No brokers found"));
        }
    }
    drop(silent);
}

#[test]
fn requests_kubernetes_refuses_are_refused_here_too() {
    let s = ApiServer::start(&[]).expect("server");
    let admin = s.admin_token();
    s.ok(&["create", "configmap", "keep"]);
    let cm = "/api/v1/namespaces/default/configmaps";
    let json = "application/json";
    let cases: &[(&str, String, &str, &[u8], u16, &str)] = &[
        (
            "DELETE",
            format!("{cm}/keep?propagationPolicy=Bogus"),
            json,
            b"",
            422,
            "Unsupported value: \"Bogus\"",
        ),
        (
            "DELETE",
            format!("{cm}/keep?gracePeriodSeconds=-5"),
            json,
            b"",
            422,
            "must be greater than or equal to 0",
        ),
        (
            "DELETE",
            format!("{cm}/keep"),
            json,
            br#"{"propagationPolicy":"Sideways"}"#,
            422,
            "supported values",
        ),
        (
            "GET",
            format!("{cm}?watch=true&timeoutSeconds=abc"),
            json,
            b"",
            400,
            "invalid timeoutSeconds",
        ),
        (
            "GET",
            format!("{cm}?timeoutSeconds=abc"),
            json,
            b"",
            400,
            "invalid timeoutSeconds",
        ),
        (
            "POST",
            cm.to_string(),
            "text/plain",
            br#"{"metadata":{"name":"t"}}"#,
            415,
            "accepted media types include: application/json",
        ),
        (
            "PATCH",
            format!("{cm}/keep?fieldManager=m"),
            "application/apply-patch+yaml",
            b"garbage",
            400,
            "must be a JSON object",
        ),
        (
            "GET",
            format!("{cm}?watch=true&resourceVersion=99999999"),
            json,
            b"",
            504,
            "Too large resource version: 99999999",
        ),
    ];
    for (method, path, ct, body, code, want) in cases {
        let (got, text) = raw(&s, &admin, method, path, ct, body);
        assert_eq!(got, *code, "{method} {path}: {text}");
        let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let text = status["message"].as_str().unwrap_or(&text).to_string();
        assert!(text.contains(want), "{method} {path}: {text}");
    }
    assert!(
        s.ok(&["get", "configmap", "keep", "-o", "name"]).contains("keep"),
        "no refused delete deleted"
    );
    // The authentication scheme is case-insensitive.
    let out = std::process::Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: bearer {admin}"))
        .arg(format!("{}{cm}", s.url()))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

#[test]
fn built_in_kinds_are_type_checked() {
    let s = ApiServer::start(&[]).expect("server");
    let admin = s.admin_token();
    let ns = "/api/v1/namespaces/default";
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "configmaps",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"a":1}}"#,
            400,
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: data.a",
        ),
        (
            "secrets",
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b"},"data":{"k":"not base64!"}}"#,
            400,
            "cannot be handled as a Secret: data.k",
        ),
        (
            "pods",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"c"},"spec":"garbage"}"#,
            400,
            "cannot be handled as a Pod: spec",
        ),
        (
            "services",
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"d"},"spec":{"ports":[{"port":99999}]}}"#,
            422,
            "spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive",
        ),
        (
            "services",
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"e"},"spec":{"clusterIP":"999.1.1.1","ports":[{"port":80}]}}"#,
            422,
            "spec.clusterIPs[0]: Invalid value: \"999.1.1.1\": must be a valid IP address",
        ),
    ];
    for (plural, body, code, want) in cases {
        let (got, text) = raw(
            &s,
            &admin,
            "POST",
            &format!("{ns}/{plural}"),
            "application/json",
            body.as_bytes(),
        );
        let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let msg = status["message"].as_str().unwrap_or(&text);
        assert_eq!(got, *code, "{plural}: {text}");
        assert!(msg.contains(want), "{plural}: {msg}");
    }
    let slices = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
    for (body, code) in [
        (
            r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"f"},"addressType":"IPv4","endpoints":"garbage"}"#,
            400,
        ),
        (
            r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"g"},"addressType":"Bogus","endpoints":[]}"#,
            422,
        ),
    ] {
        let (got, text) = raw(&s, &admin, "POST", slices, "application/json", body.as_bytes());
        assert_eq!(got, code, "{text}");
    }
    let lease = r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"h"},"spec":{"holderIdentity":5}}"#;
    let (got, text) = raw(
        &s,
        &admin,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        "application/json",
        lease.as_bytes(),
    );
    assert_eq!(got, 400, "{text}");
    // Nothing was stored.
    let stored = s.ok(&["get", "cm,secrets,pods,svc,endpointslices,leases", "-o", "name"]);
    for name in ["/a\n", "/b\n", "/c\n", "/d\n", "/e\n", "/f\n", "/g\n", "/h\n"] {
        assert!(!stored.contains(name), "{name} stored: {stored}");
    }
}

#[test]
fn impersonation_acts_as_the_impersonated_identity_or_is_refused() {
    let s = ApiServer::start(&[]).expect("server");
    s.ok(&["create", "namespace", "team"]);
    s.ok(&["create", "serviceaccount", "viewer", "-n", "team"]);
    s.ok(&["create", "serviceaccount", "helper", "-n", "team"]);
    let setup = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: viewer\n  namespace: team\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects:\n- kind: ServiceAccount\n  name: viewer\n  namespace: team\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: impersonate-viewer\nrules:\n- apiGroups: [\"\"]\n  resources: [serviceaccounts]\n  resourceNames: [viewer]\n  verbs: [impersonate]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: helper-impersonates-viewer\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: impersonate-viewer\nsubjects:\n- kind: ServiceAccount\n  name: helper\n  namespace: team\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: helper-token\n  namespace: team\n  annotations:\n    kubernetes.io/service-account.name: helper\ntype: kubernetes.io/service-account-token\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(setup)).expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let viewer = "--as=system:serviceaccount:team:viewer";
    let can = |args: &[&str]| {
        let o = s.kubectl(args).expect("runs");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    // The admin asking as the viewer gets the viewer's answers, not its own.
    assert_eq!(
        can(&["auth", "can-i", "get", "secrets", "-n", "team", viewer]),
        "no"
    );
    assert_eq!(
        can(&["auth", "can-i", "list", "configmaps", "-n", "team", viewer]),
        "yes"
    );
    assert_eq!(can(&["auth", "can-i", "get", "secrets", "-n", "team"]), "yes");
    let err = s.fails(&["get", "secrets", "-n", "team", viewer]);
    assert!(
        err.contains(r#"User "system:serviceaccount:team:viewer" cannot list resource "secrets""#),
        "{err}"
    );
    // A caller without the impersonate verb is refused, in Kubernetes' words.
    let helper = format!("--token={}", token_of(&s, "team", "helper-token"));
    let out = s
        .kubectl(&[helper.as_str(), "get", "configmaps", "-n", "team", "--as=bob"])
        .expect("runs");
    let err = stderr(&out);
    assert!(
        err.contains(r#"users "bob" is forbidden: User "system:serviceaccount:team:helper" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{err}"
    );
    // With it, the request runs as the impersonated account.
    let out = s
        .kubectl(&[helper.as_str(), "get", "configmaps", "-n", "team", viewer])
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s
        .kubectl(&[helper.as_str(), "get", "secrets", "-n", "team", viewer])
        .expect("runs");
    assert!(
        stderr(&out).contains("team:viewer\" cannot list resource \"secrets\""),
        "{}",
        stderr(&out)
    );
    // Groups alone are not an identity.
    let out = s
        .kubectl(&["get", "configmaps", "--as-group=devs"])
        .expect("runs");
    assert!(!out.status.success());
}

#[test]
fn services_get_a_cluster_ip_by_default() {
    let s = ApiServer::start(&[]).expect("server");
    let ip = s.ok(&["get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(ip.trim(), "10.0.0.1");
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(svc)).expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let ip = s.ok(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.trim().starts_with("10.0.0."), "{ip}");
}

#[test]
fn bound_tokens_token_reviews_and_subject_access_reviews() {
    let s = ApiServer::start(&[]).expect("server");
    s.ok(&["create", "namespace", "team"]);
    s.ok(&["create", "serviceaccount", "bot", "-n", "team"]);
    s.ok(&[
        "create",
        "secret",
        "generic",
        "anchor",
        "-n",
        "team",
        "--from-literal=k=v",
    ]);
    let rbac = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: bot-view\n  namespace: team\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects:\n- kind: ServiceAccount\n  name: bot\n  namespace: team\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(rbac)).expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));

    // kubectl create token (a protobuf TokenRequest) gives a token that works with the
    // account's permissions.
    let token = s.ok(&["create", "token", "bot", "-n", "team"]).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let as_bot = format!("--token={token}");
    let out = s
        .kubectl(&[as_bot.as_str(), "get", "configmaps", "-n", "team"])
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s
        .kubectl(&[as_bot.as_str(), "get", "secrets", "-n", "team"])
        .expect("runs");
    assert!(
        stderr(&out).contains("cannot list resource \"secrets\""),
        "{}",
        stderr(&out)
    );
    let err = s.fails(&["create", "token", "bot", "-n", "team", "--duration", "1m"]);
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );

    // A token bound to a Secret dies with it.
    let bound = s
        .ok(&[
            "create",
            "token",
            "bot",
            "-n",
            "team",
            "--bound-object-kind",
            "Secret",
            "--bound-object-name",
            "anchor",
        ])
        .trim()
        .to_string();
    let works = |t: &str| {
        s.kubectl(&[&format!("--token={t}"), "get", "configmaps", "-n", "team"])
            .expect("runs")
            .status
            .success()
    };
    assert!(works(&bound));
    s.ok(&["delete", "secret", "anchor", "-n", "team"]);
    assert!(!works(&bound), "the bound Secret is gone");
    // A token for another audience does not authenticate here, but TokenReview vouches for it
    // to that audience.
    let other = s
        .ok(&[
            "create",
            "token",
            "bot",
            "-n",
            "team",
            "--audience",
            "https://vault.example",
        ])
        .trim()
        .to_string();
    assert!(!works(&other));
    let admin = s.admin_token();
    let review = |tok: &str, aud: &str| {
        let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": tok, "audiences": [aud]}});
        let (code, text) = raw(
            &s,
            &admin,
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "application/json",
            body.to_string().as_bytes(),
        );
        assert_eq!(code, 201, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["status"].clone()
    };
    let st = review(&other, "https://vault.example");
    assert_eq!(st["authenticated"], true, "{st}");
    assert_eq!(st["user"]["username"], "system:serviceaccount:team:bot");
    assert_eq!(
        review(&other, "https://kubernetes.default.svc.cluster.local")["authenticated"],
        false
    );
    assert_eq!(
        review("garbage.token.here", "https://vault.example")["authenticated"],
        false
    );
    // Deleting the account revokes every token issued for it.
    assert!(works(&token));
    s.ok(&["delete", "serviceaccount", "bot", "-n", "team"]);
    assert!(!works(&token));

    // SubjectAccessReview answers for another user.
    let sar = |user: &str, verb: &str, resource: &str| {
        let body = serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:authenticated"], "resourceAttributes": {"namespace": "team", "verb": verb, "resource": resource}}});
        let (code, text) = raw(
            &s,
            &admin,
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            "application/json",
            body.to_string().as_bytes(),
        );
        assert_eq!(code, 201, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["status"]["allowed"].clone()
    };
    assert_eq!(sar("alice", "get", "secrets"), false);
    let bind = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: alice-edit\n  namespace: team\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: edit\nsubjects:\n- kind: User\n  name: alice\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(bind)).expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sar("alice", "get", "secrets"), true);
}
