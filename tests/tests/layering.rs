//! The crate layering holds: every daemon is on the runtime, library crates have typed errors,
//! and the pure crates pull in no client or runtime. Read from the real dependency graph (`cargo tree`).

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

/// Direct dependencies only: what the package itself names in its manifest.
fn direct(package: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--depth",
            "1",
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
    assert!(out.status.success(), "cargo tree -p {package} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_daemon_is_built_on_the_runtime() {
    for daemon in [
        "subsea-gateway",
        "subsea-lighthouse",
        "subsea-syncer",
        "subsea-globalnet",
        "subsea-extdns",
        "subsea-clusterset-ip",
        "subsea",
    ] {
        assert!(
            has(&deps(daemon), "subsea-runtime"),
            "{daemon} is not on subsea-runtime"
        );
    }
}

/// Library crates return typed errors (`thiserror`); anyhow belongs to the two binaries and
/// the test crates. subctl's verbs are part of its binary, not a library the daemons could use.
#[test]
fn library_crates_do_not_use_anyhow() {
    let root = subsea_integration::repo_root();
    let crates = std::fs::read_dir(root.join("crates")).expect("crates/");
    let mut checked = 0;
    for dir in crates.flatten() {
        let manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).expect("manifest");
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .expect("package name");
        let tree = direct(&name);
        assert!(
            !has(&tree, "anyhow"),
            "library crate {name} depends on anyhow:\n{tree}"
        );
        checked += 1;
    }
    assert!(checked >= 15, "found only {checked} library crates");
    // The check can fail: the binaries do use anyhow.
    assert!(has(&direct("subctl"), "anyhow"));
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
        "subsea-lighthouse-core",
        "subsea-globalnet-core",
        "subsea-extdns-core",
    ] {
        let tree = deps(pure);
        for io in ["kube-client", "tokio", "hyper"] {
            assert!(!has(&tree, io), "{pure} depends on {io}");
        }
    }
}
