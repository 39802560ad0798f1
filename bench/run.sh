#!/bin/bash
# `latefuse run` end to end: rows/s, input MB/s, CPU seconds and peak memory on
# issue 9's workloads (bench/run_workload.py: breast cancer 3x10, digits 4x16,
# 30% of views missing), each at 10,000 and 1,000,000 rows, output written to a
# file. With a second program (e.g. a `latefuse` built from an older commit),
# both run on the same files, turn about, and their outputs must be identical.
#
#   bench/run.sh [BUILD_DIR [BEFORE_LATEFUSE]]      # default: build
#   ROWS="10000 1000000" REPEAT=3 WORK=/tmp/latefuse-run-bench bench/run.sh
set -euo pipefail

build=${1:-build}
before=${2:-}
rows=${ROWS:-10000 1000000}
repeat=${REPEAT:-3}
work=${WORK:-/tmp/latefuse-run-bench}
here=$(cd "$(dirname "$0")" && pwd)
after="$build/core/cli/latefuse"

mkdir -p "$work"
if [[ ! -f "$work/.rows" || "$(cat "$work/.rows")" != "$rows" ]]; then
  echo "generating workloads in $work ..." >&2
  /usr/bin/python3 "$here/run_workload.py" "$work" "$build/plugins" $rows
  echo "$rows" > "$work/.rows"
fi

# One timed run: "<wall s> <cpu s> <max RSS KB>".
measure() {
  local program=$1 workload=$2 n=$3 out=$4
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$program" run \
    "$work/$workload/pipeline.yaml" -i "$work/$workload/rows$n.jsonl" -o "$out" -q
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$work/time"
}

printf "%-7s %9s %-7s %8s %12s %9s %8s %9s\n" workload rows program "wall s" "rows/s" "MB/s in" "cpu s" "RSS MB"
for workload in bc digits; do
  for n in $rows; do
    bytes=$(stat -c %s "$work/$workload/rows$n.jsonl")
    programs=(after)
    [[ -n "$before" ]] && programs=(before after)
    for ((i = 0; i < repeat; ++i)); do
      for which in "${programs[@]}"; do
        program=$after
        [[ $which == before ]] && program=$before
        read -r wall cpu rss < <(measure "$program" $workload $n "$work/out-$which.jsonl")
        awk -v w=$workload -v n=$n -v p=$which -v t=$wall -v c=$cpu -v r=$rss -v b=$bytes \
          'BEGIN { if (t == 0) t = 0.005; printf "%-7s %9d %-7s %8.2f %12.0f %9.0f %8.2f %9.1f\n", w, n, p, t, n / t, b / t / 1e6, c, r / 1024 }'
      done
      if [[ -n "$before" ]] && ! cmp -s "$work/out-before.jsonl" "$work/out-after.jsonl"; then
        echo "outputs differ: $workload rows$n" >&2
        exit 1
      fi
    done
  done
done
