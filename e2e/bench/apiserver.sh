#!/usr/bin/env bash
# Benchmark of subsea apiserver (not a test): builds release binaries and prints two tables, the
# embedded log and a 3-member etcd on loopback (Debian's etcd-server, installed when missing;
# members' data in a temporary directory, stopped and removed at exit).
# Usage: e2e/bench/apiserver.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# Building needs protoc (the etcd client's gRPC code is generated at build time).
command -v protoc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q protobuf-compiler >/dev/null
command -v etcd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >/dev/null
command -v etcdctl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-client >/dev/null
command -v python3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 >/dev/null
cargo build --release -p subsea -p subsea-e2e --bin subsea --bin apiserver-bench
SUBSEA_BIN=target/release/subsea target/release/apiserver-bench

dir=$(mktemp -d /tmp/subsea-bench-etcd.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
clients=(); peers=(); initial=()
for i in 0 1 2; do
  clients+=("http://127.0.0.1:$(port)"); peers+=("http://127.0.0.1:$(port)")
  initial+=("m$i=${peers[$i]}")
done
for i in 0 1 2; do
  etcd --name "m$i" --data-dir "$dir/m$i" \
    --listen-client-urls "${clients[$i]}" --advertise-client-urls "${clients[$i]}" \
    --listen-peer-urls "${peers[$i]}" --initial-advertise-peer-urls "${peers[$i]}" \
    --initial-cluster "$(IFS=,; echo "${initial[*]}")" >"$dir/m$i.log" 2>&1 &
  pids+=($!)
done
servers=$(IFS=,; echo "${clients[*]}")
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints "$servers" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
echo
SUBSEA_BENCH_ETCD=$servers SUBSEA_BIN=target/release/subsea target/release/apiserver-bench
