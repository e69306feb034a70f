//! Compiles Kubernetes' `.proto` definitions (crates/store/proto) into one descriptor set that
//! the protobuf codec reads at run time. protoc is the one Debian ships (protobuf-compiler),
//! which the etcd client needs as well; `PROTOC` points elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

fn protos(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            protos(&p, out);
        } else if p.extension().is_some_and(|x| x == "proto") {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-env-changed=PROTOC");
    let mut files = Vec::new();
    protos(&root, &mut files);
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("k8s.bin");
    let protoc = std::env::var("PROTOC").unwrap_or_else(|_| "protoc".into());
    let status = Command::new(&protoc)
        .arg("--include_imports")
        // The comments become the descriptions kubectl explain prints.
        .arg("--include_source_info")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg(format!("-I{}", root.display()))
        .args(&files)
        .status()
        .unwrap_or_else(|e| {
            panic!("running {protoc}: {e}; install protobuf-compiler (apt-get install -y protobuf-compiler) or set PROTOC")
        });
    assert!(status.success(), "{protoc} failed on {}", root.display());
}
