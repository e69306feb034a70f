//! The crate layering holds: no daemon is built on subctl's library, and the pure crates pull in
//! no client or runtime. Read from the real dependency graph (`cargo tree`).

use std::process::Command;

fn deps(package: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-f",
            "{p}",
            "-p",
            package,
        ])
        .current_dir(subsea_integration::repo_root())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has(tree: &str, krate: &str) -> bool {
    tree.lines().any(|l| l.split_whitespace().next() == Some(krate))
}

#[test]
fn daemons_do_not_depend_on_subctls_library() {
    for daemon in [
        "subsea-gateway",
        "subsea-lighthouse",
        "subsea-syncer",
        "subsea-runtime",
        "subsea",
    ] {
        let tree = deps(daemon);
        assert!(
            has(&tree, "subsea-runtime") || daemon == "subsea-runtime",
            "{daemon} is not on subsea-runtime"
        );
        assert!(
            !has(&tree, "subsea-ctl"),
            "{daemon} depends on subsea-ctl:\n{tree}"
        );
    }
    // The check can fail: subctl itself does depend on it.
    assert!(has(&deps("subctl"), "subsea-ctl"));
}

#[test]
fn pure_crates_have_no_client_or_async_runtime() {
    for pure in [
        "subsea-rbac",
        "subsea-plan",
        "subsea-cidr",
        "subsea-store",
        "subsea-broker",
        "subsea-health",
    ] {
        let tree = deps(pure);
        for io in ["kube-client", "tokio", "hyper"] {
            assert!(!has(&tree, io), "{pure} depends on {io}");
        }
    }
}
