#!/usr/bin/env bash
# Scale benchmark of the broker (not a test): builds release binaries, then joins N simulated
# clusters (default 50) with E exports each (default 20; 200 is the full target) to one broker, first on the embedded
# store, then on a 3-member etcd (Debian's etcd-server, installed when missing; the benchmark
# starts and removes it). Each run prints a table. Root (the DNS servers bind 127.0.50.x:5300).
# Usage: e2e/bench/scale.sh [CLUSTERS] [EXPORTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
clusters=${1:-50}
exports=${2:-20}
need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v kubectl >/dev/null || { echo "kubectl is missing: the cluster API servers are checked with it" >&2; exit 1; }
cargo build --release -p subsea -p subctl -p subsea-e2e --bin subsea --bin subctl --bin scale-bench
export SUBSEA_BIN_DIR=$PWD/target/release
for store in embedded etcd; do
  target/release/scale-bench --clusters "$clusters" --exports "$exports" --store "$store"
  echo
done
