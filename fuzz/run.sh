#!/usr/bin/env bash
# Coverage-guided fuzzing of every target with AddressSanitizer (cargo-fuzz, libFuzzer).
#
#   fuzz/run.sh [SECONDS]                 smoke run (CI): each target SECONDS (default 60)
#   fuzz/run.sh long [RUNS] [MAX_SECONDS] campaign: each target until RUNS executions (default
#                                         10 000 000) or MAX_SECONDS (default 3600), then its
#                                         corpus is minimized (kept in the tree, fuzz/corpus/)
#
# JOBS=N runs N targets at once (default 1); TARGETS="a b" picks targets and their order. Inputs come from fuzz/seeds/ and fuzz/corpus/; new
# ones go to fuzz/corpus/. A crash leaves its input in fuzz/artifacts/<target>/ and fails the
# run. Each target's line ends with its executions, corpus size and crashes, the figures of
# fuzz/REPORT.md. Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable
# toolchain take the sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
mode=smoke
if [ "${1:-}" = long ]; then
  mode=long
  runs=${2:-10000000}
  secs=${3:-3600}
else
  runs=-1
  secs=${1:-60}
fi
case "$secs$runs" in *[!0-9-]*) echo "usage: fuzz/run.sh [SECONDS] | fuzz/run.sh long [RUNS] [MAX_SECONDS]" >&2; exit 2;; esac
jobs=${JOBS:-1}
cargo fuzz build -O
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

one() {
  local t=$1 log="$logs/$1.log"
  mkdir -p "corpus/$t"
  cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -runs="$runs" \
    -print_final_stats=1 >"$log" 2>&1 || true
  if [ "$mode" = long ]; then
    cargo fuzz cmin -O "$t" "corpus/$t" >>"$log" 2>&1 || true
  fi
  local execs crashes=0
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then crashes=$(ls "artifacts/$t"/crash-* | wc -l); fi
  grep -E "^(==[0-9]+==|SUMMARY|thread .* panicked)" "$log" | head -20 || true
  echo "== $t: executions ${execs:-?}, corpus $(ls "corpus/$t" | wc -l), crashes $crashes"
}

targets=${TARGETS:-$(cargo fuzz list)}
status=0
running=0
for t in $targets; do
  one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
for t in $targets; do
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "✗ $t crashed: reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O $t artifacts/$t/crash-*" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "✓ no target crashed"
exit "$status"
