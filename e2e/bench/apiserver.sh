#!/usr/bin/env bash
# Benchmark of subsea apiserver (not a test): builds release binaries and prints a table.
# Usage: e2e/bench/apiserver.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# Building needs protoc (the etcd client's gRPC code is generated at build time).
command -v protoc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q protobuf-compiler >/dev/null
cargo build --release -p subsea -p subsea-e2e --bin subsea --bin apiserver-bench
SUBSEA_BIN=target/release/subsea target/release/apiserver-bench
