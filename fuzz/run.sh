#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) from the committed seeds, with AddressSanitizer.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable toolchain take
# the sanitizer flags cargo-fuzz passes. New inputs go to fuzz/corpus/ (not committed); a crash
# leaves its input in fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  echo "== $t ($secs s)"
  cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 \
    | grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked)" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "✗ $t crashed: reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O $t artifacts/$t/crash-*" >&2
    exit 1
  fi
done
echo "✓ no target crashed"
