#!/usr/bin/env bash
# Benchmark of subsea apiserver (not a test): builds release binaries and prints a table.
# Usage: e2e/bench/apiserver.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p subsea -p subsea-e2e --bin subsea --bin apiserver-bench
SUBSEA_BIN=target/release/subsea target/release/apiserver-bench
