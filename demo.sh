#!/usr/bin/env bash
# The one-command demo: two simulated clusters and a broker in network namespaces, a service
# exported from cluster1 and reached by name from a pod in cluster2, over encrypted tunnels.
# Run as root on a Debian/Ubuntu machine with Rust; it installs missing packages itself.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" != 0 ]; then
  echo "The demo builds network namespaces and TUN devices: run it as root (sudo ./demo.sh)." >&2
  exit 1
fi
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v wg >/dev/null || need+=(wireguard-tools)
command -v dig >/dev/null || need+=(dnsutils)
command -v curl >/dev/null || need+=(curl)
# The etcd client's gRPC code is generated at build time.
command -v protoc >/dev/null || need+=(protobuf-compiler)
if [ ${#need[@]} -gt 0 ]; then
  echo "• installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v kubectl >/dev/null || echo "• kubectl is not installed: the demo works without it, exploring needs it"
command -v cargo >/dev/null || { echo "cargo is missing: install Rust from https://rustup.rs" >&2; exit 1; }

echo "• building (first build takes a few minutes)"
cargo build --workspace --bins -q
BIN=$PWD/target/debug
SB="$BIN/subsea-sandbox"
export SUBSEA_SANDBOX_DIR=${SUBSEA_SANDBOX_DIR:-/run/subsea-sandbox}
"$SB" down >/dev/null 2>&1 || true

echo "• bringing up a broker and two clusters"
"$SB" up --clusters 2
KC=$("$SB" kubeconfig)

echo "• deploying payment-service in cluster1 and a client pod in cluster2"
"$SB" deploy cluster1 payment-service --replicas 2
"$SB" add-pod cluster2 cluster2-worker client

echo "• exporting it:  subctl export service payment-service -n default --context cluster1"
"$BIN/subctl" export service payment-service -n default --kubeconfig "$KC" --context cluster1

NAME=payment-service.default.svc.clusterset.local
for _ in $(seq 60); do
  "$SB" exec cluster2 client -- curl -sf -m 2 "http://$NAME/health" >/dev/null 2>&1 && break
  sleep 0.5
done
echo
echo "\$ nslookup $NAME        (from a pod in cluster2)"
"$SB" exec cluster2 client -- nslookup "$NAME" | sed -n '/^Name/,$p' | grep -v "recursion not available"
echo "\$ curl http://$NAME/health"
"$SB" exec cluster2 client -- curl -s -m 5 "http://$NAME/health"
echo
echo "Explore:"
echo "  $BIN/subctl show all --kubeconfig $KC"
echo "  $SB status"
echo "  $SB exec cluster2 client -- dig $NAME"
echo "  $SB exec cluster1 cluster1-gw1 -- wg show"
echo "  KUBECONFIG=$KC kubectl --context cluster1 get serviceexports,gateways.submariner.io -A"
echo "  $BIN/subctl verify --kubeconfig $KC --context cluster2 --tocontext cluster1"
echo "  $BIN/subctl benchmark latency --kubeconfig $KC --context cluster2 --tocontext cluster1"
echo "Tear down:"
echo "  $SB down"
