#!/usr/bin/env bash
# Runs each libFuzzer target of fuzz/ for SECONDS (default 30) over its committed corpus
# and dictionary, one after the other, and fails on the first finding. Needs the targets
# built by tools/sanitize.sh (build-asan/fuzz/). New inputs go to a scratch folder, so the
# committed corpus stays as it is; a finding is written to build-asan/fuzz-findings/.
# Usage: tools/fuzz.sh [SECONDS] [pipeline|records|serve_request]...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(pipeline records serve_request); fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
findings=build-asan/fuzz-findings
mkdir -p "$findings"
for target in "${targets[@]}"; do
  scratch=$(mktemp -d)
  echo "fuzz: $target for ${seconds}s" >&2
  # -timeout: an input that takes over 10 s is a finding (a hang), as is a leak.
  if ! "build-asan/fuzz/${target}_fuzzer" "$scratch" "fuzz/corpus/$target" \
      -dict="fuzz/$target.dict" -max_total_time="$seconds" -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$findings/$target-" 2>"$scratch.log"; then
    tail -n 60 "$scratch.log" >&2
    echo "fuzz: $target found a problem; the input is in $findings/" >&2
    rm -rf "$scratch" "$scratch.log"
    exit 1
  fi
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec)' \
    "$scratch.log" >&2 || true
  rm -rf "$scratch" "$scratch.log"
done
