#!/usr/bin/env bash
# The fusion benchmark, one run, side by side (bench/README.md has the figures):
#
#   bench/fusion.sh [BUILD_DIR]            # default: build
#   STAGES=engine bench/fusion.sh build    # only the engine against the hand loop
#   STAGES=run ROWS=1000000,10000 REPEAT=5 bench/fusion.sh build
#
# Needs the built `latefuse`, engine_bench and plugins:
#   cmake --build build -j2 --target latefuse engine_bench
#
# 1. Workloads: bench/make_workloads.py writes BUILD_DIR/bench-fusion/<workload>/
#    (breast_cancer, digits, and mfeat when ../shared/data/mfeat exists):
#    per-view linear models, a soft-voting pipeline, and JSONL records tiled to
#    ROWS rows (mfeat: MFEAT_ROWS) with 30% of views missing. Kept between runs
#    (FORCE=1 regenerates).
# 2. STAGES has "engine": engine_bench (Google Benchmark, one thread, data in
#    memory, 7 repetitions interleaved at random, medians of CPU time): the
#    hand-fused loop's rows/s (plain, and with the `linear` plugin's blocked
#    kernel), the engine's for each batch size, the ratios, and one row's
#    median latency through Engine::Run.
# 3. STAGES has "run": for each workload and each row count, `latefuse run`
#    and bench/sklearn_fuse.py (scikit-learn soft voting) on the same JSONL,
#    REPEAT times each (default 3), turn about, each under /usr/bin/time -v:
#    rows/s from the median of each program's wall-clock times (start to exit,
#    loading included, for both; every time is printed), the larger peak RSS,
#    and the check that the two outputs agree (probabilities within 1e-9);
#    exits 1 if they do not.
# Prints the machine's load average before each stage: on a shared machine
# only ratios measured in the same run mean much.
set -euo pipefail
failed=0
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="$(cd "${1:-$root/build}" && pwd)"
rows="${ROWS:-1000000,10000}"
mfeat_rows="${MFEAT_ROWS:-100000,10000}"
stages="${STAGES:-engine run}"
repeat="${REPEAT:-3}"
work="$build/bench-fusion"
latefuse="$build/core/cli/latefuse"
bench="$build/bench/engine_bench"
py=/usr/bin/python3

for tool in "$latefuse" "$bench"; do
  [ -x "$tool" ] || { echo "fusion.sh: no $tool (build first)" >&2; exit 1; }
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

# Regenerates unless every workload already has every row count.
have_all() {
  [ -f "$work/breast_cancer/workload.json" ] || return 1
  local w n
  for w in "$work"/*/; do
    local want="$rows"
    [ "$(basename "$w")" = mfeat ] && want="$mfeat_rows"
    for n in ${want//,/ }; do
      [ -f "$w/rows_$n.jsonl" ] || return 1
    done
  done
}
if [ -n "${FORCE:-}" ] || ! have_all; then
  echo "== generating workloads in $work (rows $rows, mfeat $mfeat_rows)"
  "$py" "$here/make_workloads.py" "$work" "$build/plugins" --rows "$rows" \
    --mfeat-rows "$mfeat_rows"
fi

if [[ " $stages " == *" engine "* ]]; then
  echo "== engine against the hand-fused loop; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  # Repetitions interleaved at random, so that the machine's load falls on
  # the hand loop and the engine alike; medians are compared.
  LATEFUSE_BENCH_WORKLOADS="$work" "$bench" --benchmark_min_time=0.5 \
    --benchmark_repetitions=7 --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true \
    --benchmark_format=json --benchmark_out="$work/engine_bench.json" \
    --benchmark_out_format=json >/dev/null
  "$py" - "$work/engine_bench.json" <<'PY'
import json, sys
runs = [b for b in json.load(open(sys.argv[1]))["benchmarks"]
        if b.get("aggregate_name") == "median"]
by = {b["run_name"]: b for b in runs}
workloads = sorted({n.split("/")[1] for n in by}, key=["breast_cancer", "digits", "mfeat"].index)
print("%-14s %-26s %14s %10s %14s" % ("workload", "one thread, CPU time", "rows/s",
                                      "vs hand", "vs blocked hand"))
for w in workloads:
    hand = by["BM_HandFused/" + w]["items_per_second"]
    blocked = by["BM_HandFusedBlocked/" + w]["items_per_second"]
    print("%-14s %-26s %14.0f %10s %14.2fx" % (w, "hand-fused loop", hand, "1.00x",
                                               hand / blocked))
    print("%-14s %-26s %14.0f %9.2fx %14s" % (w, "hand loop, plugin's kernel",
                                              blocked, blocked / hand, "1.00x"))
    engine = [(int(n.split("/")[2]), b) for n, b in by.items()
              if n.startswith("BM_Engine/%s/" % w)]
    for batch, b in sorted(engine, key=lambda e: e[0]):
        print("%-14s %-26s %14.0f %9.2fx %13.2fx" % (
            w, "engine, batch %d" % batch, b["items_per_second"],
            b["items_per_second"] / hand, b["items_per_second"] / blocked))
    one = by["BM_EngineOneRow/" + w]
    print("%-14s %-26s %11.2f us (median of calls; max |engine - hand| %.2g)" % (
        w, "engine, one row", one["median_ns"] / 1000, one["max_abs_diff"]))
    print("%-14s %-26s %14.0f" % (w, "host allocations per Run",
                                  max(b["allocs_per_run"] for n, b in by.items()
                                      if n.startswith("BM_Engine"))))
PY
fi

# "<wall seconds> <peak RSS kB>" from /usr/bin/time -v's report.
measure() {
  local report="$1"
  shift
  /usr/bin/time -v -o "$report" "$@" >/dev/null 2>>"$work/stderr.log"
  "$py" - "$report" <<'PY'
import sys
text = open(sys.argv[1]).read()
fields = dict(l.strip().rsplit(": ", 1) for l in text.splitlines() if ": " in l)
wall = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
seconds = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
print(seconds, fields["Maximum resident set size (kbytes)"])
PY
}

# The median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
  print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The largest of the numbers given.
largest() { printf '%s\n' "$@" | sort -g | tail -1; }

if [[ " $stages " == *" run "* ]]; then
  echo "== latefuse run against scikit-learn, end to end, $repeat runs each, turn about; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf "%-14s %8s %14s %14s %8s %12s %12s  %s\n" workload rows \
    "latefuse r/s" "sklearn r/s" ratio "latefuse RSS" "sklearn RSS" check
  for dir in "$work"/*/; do
    w="$(basename "$dir")"
    want="$rows"
    [ "$w" = mfeat ] && want="$mfeat_rows"
    for n in ${want//,/ }; do
      in="$dir/rows_$n.jsonl"
      lf_times=() sk_times=() lf_rss=() sk_rss=()
      for ((i = 0; i < repeat; ++i)); do
        rm -f "$work/out_latefuse.jsonl" "$work/out_sklearn.jsonl"
        read -r s kb < <(measure "$work/time_lf.txt" "$latefuse" run -q \
          -i "$in" -o "$work/out_latefuse.jsonl" "$dir/pipeline.yaml")
        lf_times+=("$s") lf_rss+=("$kb")
        read -r s kb < <(measure "$work/time_sk.txt" "$py" \
          "$here/sklearn_fuse.py" "$dir" "$in" "$work/out_sklearn.jsonl")
        sk_times+=("$s") sk_rss+=("$kb")
      done
      check="$("$py" "$here/sklearn_fuse.py" --check "$work/out_latefuse.jsonl" \
        "$work/out_sklearn.jsonl" | sed 's/^check: [0-9]* rows, //')" || failed=1
      awk -v w="$w" -v n="$n" -v a="$(median "${lf_times[@]}")" \
        -v b="$(median "${sk_times[@]}")" -v ra="$(largest "${lf_rss[@]}")" \
        -v rb="$(largest "${sk_rss[@]}")" -v c="$check" 'BEGIN {
        printf "%-14s %8d %14.0f %14.0f %7.1fx %9.0f MB %9.0f MB  %s\n",
          w, n, n / a, n / b, b / a, ra / 1024, rb / 1024, c }'
      echo "               wall s: latefuse ${lf_times[*]}; scikit-learn ${sk_times[*]}"
      rm -f "$work/out_latefuse.jsonl" "$work/out_sklearn.jsonl"
    done
  done
fi
exit "$failed"
