#!/usr/bin/env bash
# Datapath benchmark: single- and 4-stream TCP throughput, CPU per Gbit, idle and loaded RTT
# through subsea's userspace WireGuard vs plain forwarding vs boringtun-cli 0.7.1 vs
# wireguard-go, plus subsea with Globalnet's NAT on both gateways (SNAT of the client to a
# global IP on A, DNAT of the server's global IP on B, programmed by the Globalnet daemon's own
# code), on one bed of four network namespaces, interleaved, medians of ROUNDS runs, printed as
# ratios. Needs root. Never touches the root namespace's addresses or routes.
#
#   client ──veth── gateway A ══ underlay veth (tunnel) ══ gateway B ──veth── server
#   10.1.0.2        10.1.0.1 / 192.168.77.1      192.168.77.2 / 10.2.0.1      10.2.0.2
#
# Usage: e2e/bench/datapath.sh            (ROUNDS=5 DURATION=10 by default)
# Tools (installed when missing): iperf3 wireguard-tools nftables (apt), wireguard-go
#        0.0.20231211 (bookworm-backports), boringtun-cli 0.7.1 (cargo install; or BORINGTUN=path).
#        IMPLS="plain subsea globalnet" limits the rows (and the installs).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
P=dpb
BORINGTUN=${BORINGTUN:-$(command -v boringtun-cli || echo "$HOME/.cargo/bin/boringtun-cli")}
read -r -a IMPLS <<< "${IMPLS:-plain subsea globalnet boringtun wireguard-go}"

[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces, TUN devices)" >&2; exit 1; }
wants() { [[ " ${IMPLS[*]} " == *" $1 "* ]]; }
# The tools compared against are installed here when missing, at the pinned versions.
need_apt=()
for t in iperf3:iperf3 wg:wireguard-tools ping:iputils-ping python3:python3 ip:iproute2 nft:nftables protoc:protobuf-compiler; do
  command -v "${t%%:*}" >/dev/null || need_apt+=("${t#*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}…" >&2
  apt-get install -y -q "${need_apt[@]}" >&2
fi
if wants wireguard-go && ! command -v wireguard-go >/dev/null; then
  echo "installing wireguard-go 0.0.20231211 from bookworm-backports…" >&2
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    src=$(grep -rhs '^Types\|^URIs\|^deb ' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null | grep -o 'http[^ ]*' | head -1)
    echo "deb ${src:-http://deb.debian.org/debian} bookworm-backports main" > /etc/apt/sources.list.d/backports.list
    apt-get update -q >&2
  fi
  apt-get install -y -q -t bookworm-backports wireguard-go >&2
fi
if wants boringtun && [ ! -x "$BORINGTUN" ]; then
  echo "installing boringtun-cli 0.7.1…" >&2
  cargo install -q boringtun-cli --version 0.7.1 >&2
  BORINGTUN=$HOME/.cargo/bin/boringtun-cli
fi

echo "building subsea (release)…" >&2
cargo build --release -q -p subsea
SUBSEA=$PWD/target/release/subsea
# Only programs the NAT table once per run: a debug build is enough.
cargo build -q -p subsea-e2e --bin subsea-sandbox
SANDBOX=$PWD/target/debug/subsea-sandbox

W=$(mktemp -d /tmp/subsea-dpbench.XXXXXX)
PIDS=()
stop_impl() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  PIDS=()
  for n in a b; do
    ip -n $P-$n link del wg0 2>/dev/null || true
    # Only the remote network's route: the local one is the connected route of the bed.
    ip -n $P-$n route del "$(remote_net $n)" 2>/dev/null || true
    ip -n $P-$n route del "$(global_net "$(peer_of $n)")" 2>/dev/null || true
    ip netns exec $P-$n "$SANDBOX" globalnet-nat --remove 2>/dev/null || true
    rm -f "$W/run-$n"/*.sock
  done
}
cleanup() {
  stop_impl
  ip netns exec $P-s pkill -f "iperf3 -s" 2>/dev/null || true
  for n in c a b s; do ip netns del $P-$n 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

# The bed.
for n in c a b s; do ip netns add $P-$n; ip -n $P-$n link set lo up; done
ip link add eth0 netns $P-c type veth peer name c netns $P-a
ip link add u netns $P-a type veth peer name u netns $P-b
ip link add s netns $P-b type veth peer name eth0 netns $P-s
ip -n $P-c addr add 10.1.0.2/24 dev eth0; ip -n $P-c link set eth0 up
ip -n $P-a addr add 10.1.0.1/24 dev c; ip -n $P-a link set c up
ip -n $P-a addr add 192.168.77.1/24 dev u; ip -n $P-a link set u up
ip -n $P-b addr add 192.168.77.2/24 dev u; ip -n $P-b link set u up
ip -n $P-b addr add 10.2.0.1/24 dev s; ip -n $P-b link set s up
ip -n $P-s addr add 10.2.0.2/24 dev eth0; ip -n $P-s link set eth0 up
ip -n $P-c route add default via 10.1.0.1
ip -n $P-s route add default via 10.2.0.1
for n in a b; do ip netns exec $P-$n sysctl -qw net.ipv4.ip_forward=1; mkdir -p "$W/run-$n"; done
mkdir -p /run/wireguard

for n in a b; do wg genkey > "$W/$n.key"; wg pubkey < "$W/$n.key" > "$W/$n.pub"; done
wg genpsk > "$W/psk"
chmod 600 "$W"/*.key "$W/psk"

# Run in a gateway namespace with that namespace's own /run/wireguard, so the two userspace
# devices named wg0 do not share one UAPI socket path.
in_gw() { local n=$1; shift; ip netns exec $P-$n unshare -m sh -c 'mount --bind "$0" /run/wireguard && exec "$@"' "$W/run-$n" "$@"; }
# The same in the background, exec'd all the way down so $! is the daemon itself.
spawn_gw() { local n=$1 log=$2; shift 2; (exec ip netns exec $P-$n unshare -m sh -c 'mount --bind "$0" /run/wireguard && exec "$@"' "$W/run-$n" "$@" >"$log" 2>&1) & PIDS+=($!); }
peer_of() { [ "$1" = a ] && echo b || echo a; }
ip_of() { [ "$1" = a ] && echo 192.168.77.1 || echo 192.168.77.2; }
remote_net() { [ "$1" = a ] && echo 10.2.0.0/24 || echo 10.1.0.0/24; }
# Globalnet: each side's GlobalCIDR; the client leaves A as 242.0.0.2, the server is 242.1.0.10.
global_net() { [ "$1" = a ] && echo 242.0.0.0/16 || echo 242.1.0.0/16; }
TARGET=10.2.0.2

wait_for_link() {
  for _ in $(seq 100); do ip -n $P-$1 link show wg0 >/dev/null 2>&1 && [ -S "$W/run-$1/wg0.sock" ] && return 0; sleep 0.05; done
  echo "wg0 did not appear in $P-$1" >&2; return 1
}

start_impl() {
  local impl=$1 n o far
  TARGET=10.2.0.2
  for n in a b; do
    o=$(peer_of $n)
    far=$(remote_net $n)
    case $impl in
      plain) ip -n $P-$n route add "$far" via "$(ip_of "$o")"; continue ;;
      subsea) spawn_gw $n "$W/$impl-$n.log" "$SUBSEA" wireguard wg0 --listen-port 51820 --private-key "$W/$n.key" \
                --preshared-key "$W/psk" --peer "$(cat "$W/$o.pub"),$(ip_of "$o"):51820,$far" \
                --uapi-dir /run/wireguard ;;
      globalnet) far=$(global_net "$o")
              spawn_gw $n "$W/$impl-$n.log" "$SUBSEA" wireguard wg0 --listen-port 51820 --private-key "$W/$n.key" \
                --preshared-key "$W/psk" --peer "$(cat "$W/$o.pub"),$(ip_of "$o"):51820,$far" \
                --uapi-dir /run/wireguard ;;
      boringtun) spawn_gw $n "$W/$impl-$n.log" "$BORINGTUN" wg0 --foreground --disable-drop-privileges ;;
      wireguard-go) spawn_gw $n "$W/$impl-$n.log" wireguard-go -f wg0 ;;
    esac
    wait_for_link $n
    if [ "$impl" != subsea ] && [ "$impl" != globalnet ]; then
      in_gw $n wg set wg0 listen-port 51820 private-key "$W/$n.key" peer "$(cat "$W/$o.pub")" \
        preshared-key "$W/psk" endpoint "$(ip_of "$o"):51820" allowed-ips "$far"
      ip -n $P-$n link set wg0 mtu 1420 up
    fi
    ip -n $P-$n route add "$far" dev wg0
  done
  if [ "$impl" = globalnet ]; then
    ip netns exec $P-a "$SANDBOX" globalnet-nat --snat 10.1.0.0/24=242.0.0.2 --remote 242.1.0.0/16
    ip netns exec $P-b "$SANDBOX" globalnet-nat --dnat 242.1.0.10=10.2.0.2 --remote 242.0.0.0/16
    TARGET=242.1.0.10
  fi
  if ! ip netns exec $P-c ping -c 3 -W 2 "$TARGET" >/dev/null; then
    echo "no traffic through $impl; its logs and state:" >&2
    cat "$W/$impl"-*.log >&2 || true
    for n in a b; do in_gw $n wg show wg0 >&2 || true; ip -n $P-$n -s link show wg0 >&2 || true; ip -n $P-$n route >&2; done
    return 1
  fi
}

# CPU seconds (user+system) of the tunnel processes, from /proc.
cpu_of_impl() {
  local total=0 p t
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] || continue
    for t in $(pgrep -P "$p") "$p"; do
      [ -r /proc/$t/stat ] || continue
      total=$(awk -v acc="$total" '{ print acc + $14 + $15 }' /proc/$t/stat)
    done
  done
  echo "$total"
}

iperf_bps() { ip netns exec $P-c iperf3 -c "$TARGET" -t "$DURATION" -P "$1" -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'; }
rtt_ms() { ip netns exec $P-c ping -c "$1" -i "$2" -q "$TARGET" | awk -F/ '/^rtt/ { print $5 }'; }

ip netns exec $P-s iperf3 -s -D
sleep 0.3
RESULTS="$W/results.tsv"
: > "$RESULTS"
CLK=$(getconf CLK_TCK)
for round in $(seq "$ROUNDS"); do
  for impl in "${IMPLS[@]}"; do
    start_impl "$impl"
    c0=$(cpu_of_impl)
    bps1=$(iperf_bps 1)
    c1=$(cpu_of_impl)
    bps4=$(iperf_bps 4)
    idle=$(rtt_ms 20 0.05)
    ip netns exec $P-c iperf3 -c "$TARGET" -t 6 -P 1 >/dev/null 2>&1 &
    ipid=$!
    sleep 1
    loaded=$(rtt_ms 20 0.2)
    wait $ipid || true
    cpu=$(python3 -c "print(($c1 - $c0) / $CLK / ($bps1 * $DURATION / 1e9))")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$impl" "$bps1" "$bps4" "$idle" "$loaded" "$cpu" >> "$RESULTS"
    printf 'round %d %-13s 1-stream %6.2f Gbit/s  4-stream %6.2f Gbit/s  idle RTT %s ms  loaded RTT %s ms\n' \
      "$round" "$impl" "$(python3 -c "print($bps1/1e9)")" "$(python3 -c "print($bps4/1e9)")" "$idle" "$loaded" >&2
    stop_impl
  done
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
impls = []
data = {}
for r in rows:
    impl = r[0]
    if impl not in impls:
        impls.append(impl)
    for k, v in zip(["tcp1", "tcp4", "idle", "loaded", "cpu"], r[1:]):
        data.setdefault((impl, k), []).append(float(v))
med = {k: statistics.median(v) for k, v in data.items()}
n = len(data[(impls[0], "tcp1")])
print(f"\nmedians of {n} runs (single host, 2 cores; Gbit/s, ms, CPU core-seconds per Gbit)\n")
print(f"{'':14}{'TCP 1-stream':>14}{'TCP 4-stream':>14}{'idle RTT':>10}{'loaded RTT':>12}{'CPU s/Gbit':>12}")
for i in impls:
    cpu = "-" if i == "plain" else f"{med[(i,'cpu')]:.3f}"
    print(f"{i:14}{med[(i,'tcp1')]/1e9:>14.2f}{med[(i,'tcp4')]/1e9:>14.2f}{med[(i,'idle')]:>10.3f}{med[(i,'loaded')]:>12.3f}{cpu:>12}")
def r(a, b, k="tcp1"):
    return med[(a, k)] / med[(b, k)]
print()
def have(*names):
    return all(x in impls for x in names)
if have('subsea', 'plain'):
    print(f"subsea / plain forwarding, 1 stream:   {r('subsea','plain'):.2f}x")
if have('subsea', 'boringtun'):
    print(f"subsea / boringtun-cli,    1 stream:   {r('subsea','boringtun'):.2f}x   (goal ≥ 3x)")
    print(f"subsea CPU per Gbit / boringtun-cli's: {med[('subsea','cpu')]/med[('boringtun','cpu')]:.2f}x")
if have('subsea', 'wireguard-go'):
    print(f"subsea / wireguard-go,     1 stream:   {r('subsea','wireguard-go'):.2f}x")
if have('subsea'):
    print(f"subsea 4-stream / 1-stream:            {med[('subsea','tcp4')]/med[('subsea','tcp1')]:.2f}x")
if have('subsea', 'plain'):
    print(f"idle RTT added by subsea:              {med[('subsea','idle')]-med[('plain','idle')]:.3f} ms")
if have('globalnet', 'subsea'):
    print(f"subsea+Globalnet / subsea, 1 stream:   {r('globalnet','subsea'):.2f}x   (goal ≥ 0.90: Globalnet costs ≤ 10 %)")
    print(f"subsea+Globalnet CPU per Gbit / subsea's: {med[('globalnet','cpu')]/med[('subsea','cpu')]:.2f}x")
PY
