#!/usr/bin/env bash
# Crash-safety soak (not a timed test): 20 rounds of SIGKILL during a burst of creates and
# updates, each followed by a restart and a check of every acknowledged write.
# Usage: e2e/bench/crash.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
# Building needs protoc (the etcd client's gRPC code is generated at build time).
command -v protoc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q protobuf-compiler >/dev/null
cargo build --workspace --bins
CRASH_ROUNDS="${1:-20}" cargo test -p subsea-integration --test crash -- --nocapture
