//! Every `subctl` command explains itself: `--help` of each leaf command (found by walking the
//! real binary's command tree) describes it and gives an example.

use std::process::Command;

use subsea_integration::binary;

fn help(path: &[String]) -> String {
    let out = Command::new(binary("subctl"))
        .args(path)
        .arg("--help")
        .output()
        .expect("run subctl (cargo build --workspace --bins first)");
    assert!(out.status.success(), "subctl {} --help failed", path.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands listed under `Commands:`.
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_subctl_command_has_an_example() {
    let mut todo = vec![vec![]];
    let mut leaves = Vec::new();
    while let Some(path) = todo.pop() {
        let text = help(&path);
        let subs = subcommands(&text);
        if subs.is_empty() {
            leaves.push((path, text));
        } else {
            todo.extend(subs.into_iter().map(|s| {
                let mut p = path.clone();
                p.push(s);
                p
            }));
        }
    }
    assert!(leaves.len() >= 20, "found only {} commands", leaves.len());
    let missing: Vec<String> = leaves
        .iter()
        .filter(|(_, t)| !t.contains("Example: subctl "))
        .map(|(p, _)| p.join(" "))
        .collect();
    assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    for (path, text) in &leaves {
        let summary = text.lines().next().unwrap_or_default();
        assert!(summary.len() > 10, "subctl {} has no description", path.join(" "));
    }
}

/// Every line of a command list (`Commands:`) in `-h` of both binaries and every subctl group.
fn command_lines(bin: &str, path: &[&str]) -> Vec<String> {
    let out = Command::new(binary(bin))
        .args(path)
        .arg("-h")
        .output()
        .expect("run the binary (cargo build --workspace --bins first)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn command_summaries_fit_on_one_line() {
    let groups: &[(&str, &[&str])] = &[
        ("subctl", &[]),
        ("subctl", &["show"]),
        ("subctl", &["export"]),
        ("subctl", &["benchmark"]),
        ("subsea", &[]),
    ];
    for (bin, path) in groups {
        let lines = command_lines(bin, path);
        assert!(lines.len() >= 2, "{bin} {path:?} lists no commands");
        for l in lines {
            assert!(
                l.chars().count() <= 100,
                "{bin} {path:?}: summary longer than 100 characters:\n{l}"
            );
        }
    }
    // The long explanation is still there, under the command's own --help.
    let verify = help(&["verify".to_string()]);
    assert!(verify.contains("gateway failover"), "{verify}");
}

fn subctl_env(args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    subsea_integration::run_subctl(None, args, env)
}

#[test]
fn common_failures_say_each_cause_once() {
    let s = subsea_integration::ApiServer::start(&["--context", "c1"]).expect("server");
    let kc = s.kubeconfig().display().to_string();
    let dir = subsea_integration::TempDir::new("cli-errors");
    let garbage = dir.0.join("garbage.subm");
    std::fs::write(&garbage, "this is not a broker-info file").expect("write");
    let garbage = garbage.display().to_string();
    // Nothing listens on port 1 of the loopback address.
    let closed = dir.0.join("closed.kubeconfig");
    let text = std::fs::read_to_string(s.kubeconfig()).expect("kubeconfig");
    std::fs::write(&closed, text.replace(&s.url(), "https://127.0.0.1:1")).expect("write");
    let closed = closed.display().to_string();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["show", "connections", "--kubeconfig", "/nonexistent"],
            " ✗ cannot read the kubeconfig /nonexistent: No such file or directory (os error 2)".into(),
        ),
        (
            vec!["show", "connections", "--kubeconfig", &kc, "--context", "nope"],
            " ✗ the kubeconfig has no context \"nope\"; pick one with --context".into(),
        ),
        (
            vec!["show", "brokers", "--kubeconfig", &closed],
            " ✗ cannot reach the API server at https://127.0.0.1:1 (context \"c1\"); check the address and that it is running: ServiceError: client error (Connect): tcp connect error: Connection refused (os error 111)".into(),
        ),
        (
            vec!["join", &garbage, "--kubeconfig", &kc],
            format!(
                " ✗ {garbage} is not a valid broker-info file: it is not base64 text (a broker-info.subm file is the URL-safe base64 of a JSON document); use the file written by `subctl deploy-broker` (or `subctl recover-broker-info`)"
            ),
        ),
    ];
    for (args, want) in cases {
        let (ok, _, err) = subctl_env(&args, &[]);
        assert!(!ok, "{args:?} succeeded");
        assert_eq!(err.lines().next().unwrap_or_default(), want, "{args:?}");
    }
}

#[test]
fn kubeconfig_lists_merge_and_outputs_parse() {
    let a = subsea_integration::ApiServer::start(&["--context", "alpha"]).expect("server");
    let b = subsea_integration::ApiServer::start(&["--context", "beta"]).expect("server");
    let joined = format!("{}:{}", a.kubeconfig().display(), b.kubeconfig().display());
    let env = [("KUBECONFIG", joined)];
    let (ok, out, err) = subctl_env(&["show", "brokers"], &env);
    assert!(ok, "{err}");
    assert!(
        out.contains("Cluster \"alpha\"") && out.contains("Cluster \"beta\""),
        "{out}"
    );
    let (ok, out, err) = subctl_env(&["show", "brokers", "--context", "beta"], &env);
    assert!(ok, "{err}");
    assert!(!out.contains("alpha"), "{out}");
    let verbs = [
        "brokers",
        "networks",
        "endpoints",
        "versions",
        "gateways",
        "connections",
        "service-discovery",
    ];
    for (verb, fmt) in verbs.iter().flat_map(|v| [(v, "json"), (v, "yaml")]) {
        let (ok, out, err) = subctl_env(&["show", verb, "-o", fmt], &env);
        assert!(ok, "show {verb} -o {fmt}: {err}");
        let parsed: Result<serde_json::Value, String> = if fmt == "json" {
            serde_json::from_str(&out).map_err(|e| e.to_string())
        } else {
            serde_yaml::from_str(&out).map_err(|e| e.to_string())
        };
        assert!(parsed.is_ok(), "show {verb} -o {fmt}: {out}");
    }
    // show all: one document with a list per section.
    let (ok, out, err) = subctl_env(&["show", "all", "-o", "json"], &env);
    assert!(ok, "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).expect("show all -o json parses");
    assert!(all["brokers"].is_array() && all["versions"].is_array(), "{all}");
    let (ok, out, err) = subctl_env(&["show", "all", "-o", "yaml"], &env);
    assert!(ok, "{err}");
    let all: serde_json::Value = serde_yaml::from_str(&out).expect("show all -o yaml parses");
    assert!(all["endpoints"].is_array(), "{all}");
    let (ok, out, _) = subctl_env(&["version", "-o", "json"], &[]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).expect("version -o json parses");
    assert_eq!(v["version"], format!("v{}", env!("CARGO_PKG_VERSION")));
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (ok, out, _) = subctl_env(&["completion", shell], &[]);
        assert!(
            ok && out.contains("subctl") && out.contains("deploy-broker"),
            "completion {shell}"
        );
    }
}
