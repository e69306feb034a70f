//! kube-rs's own cluster tests, from the kube 5 sources cargo downloaded for this workspace,
//! run against `subsea apiserver`: a peer's test suite, not ours. They build in their own
//! target directory (kept under target/ so later runs reuse it).

use std::path::{Path, PathBuf};
use std::process::Command;

use subsea_integration::{ApiServer, TempDir, repo_root};

/// The unpacked crates.io source of `name` (e.g. `kube-5.0.0`) in cargo's registry cache.
fn registry_source(name: &str) -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(&std::env::var("HOME").expect("HOME")).join(".cargo"));
    let src = home.join("registry/src");
    std::fs::read_dir(&src)
        .expect("cargo registry source cache")
        .filter_map(Result::ok)
        .map(|d| d.path().join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} is not in {}: build the workspace first", src.display()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").filter_map(Result::ok) {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn run_suite(server: &ApiServer, work: &Path, krate: &str, features: &str, tests: &[&str]) {
    let dir = work.join(krate);
    copy_dir(&registry_source(krate), &dir);
    // Resolve against this workspace's lockfile, so the suite builds the same dependency
    // versions as subsea (and what is already downloaded) rather than the crate's own lock.
    std::fs::copy(repo_root().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    if krate != "kube-5.0.0" {
        // These crates' tests use the `kube` facade, which upstream gets from its workspace but
        // the published crates do not list as a dev-dependency.
        let manifest = dir.join("Cargo.toml");
        let mut toml = std::fs::read_to_string(&manifest).expect("Cargo.toml");
        toml.push_str(
            "\n[dev-dependencies.kube]\nversion = \"=5.0.0\"\nfeatures = [\"runtime\", \"derive\", \"ws\"]\n",
        );
        std::fs::write(&manifest, toml).expect("write Cargo.toml");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&dir)
        .env("KUBECONFIG", server.kubeconfig())
        .env("CARGO_TARGET_DIR", repo_root().join("target/kube-rs-suite"))
        .env_remove("RUSTFLAGS")
        .args(["test", "--lib", "--quiet"]);
    if !features.is_empty() {
        cmd.args(["--features", features]);
    }
    cmd.args(["--", "--ignored", "--exact", "--test-threads=1"])
        .args(tests);
    let out = cmd.output().expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{krate} suite failed:\n{stdout}\n{stderr}");
    let want = format!("test result: ok. {} passed; 0 failed", tests.len());
    assert!(stdout.contains(&want), "{krate}: expected {want:?}:\n{stdout}");
}

#[test]
fn kube_rs_cluster_tests_pass_against_subsea_apiserver() {
    let server = ApiServer::start(&[]).expect("server");
    let work = TempDir::new("kube-rs-suite");
    run_suite(
        &server,
        &work.0,
        "kube-5.0.0",
        "runtime,derive",
        &[
            "test::custom_resource_generates_correct_core_structs",
            "test::api_get_opt_handles_404",
            "test::derived_resource_queryable_and_has_subresources",
            "test::custom_serialized_objects_are_queryable_and_iterable",
        ],
    );
    run_suite(
        &server,
        &work.0,
        "kube-client-5.0.0",
        "rustls-tls,ws,jsonpatch",
        &[
            "api::entry::tests::entry_create_missing_object",
            "api::entry::tests::entry_update_existing_object",
            "api::entry::tests::entry_create_dry_run",
            "test::aggregated_discovery_apis",
            "test::aggregated_discovery_core",
            "test::discovery_run_aggregated",
        ],
    );
    run_suite(
        &server,
        &work.0,
        "kube-runtime-5.0.0",
        "",
        &[
            "events::test::event_recorder_attaches_events",
            "events::test::event_recorder_cache_retain",
        ],
    );
}
