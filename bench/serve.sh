#!/usr/bin/env bash
# `latefuse serve` under load: the demo pipeline (configs/demo) on loopback,
# wrk POSTing OIP infer requests built from the demo's records.
#
#   bench/serve.sh [BUILD_DIR]     # default: build
#   DURATION=10 CONNECTIONS=16 ROWS=1 bench/serve.sh
#
# Phase 1 prints requests/s and p50/p99 latency. Phase 2 runs the same load
# while sending SIGHUP (a full reload of the pipeline) every 0.5 s, and prints
# the reloads done and the requests that failed (non-2xx answers and socket
# errors): the script exits 1 unless that count is 0.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="$(cd "${1:-$root/build}" && pwd)"
latefuse="$build/core/cli/latefuse"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-16}"
threads="${THREADS:-2}"
rows="${ROWS:-1}"
port="${PORT:-18480}"
[ -x "$latefuse" ] || { echo "serve.sh: no $latefuse (build first)" >&2; exit 1; }
command -v wrk > /dev/null || { echo "serve.sh: wrk is not installed (tools/setup.sh)" >&2; exit 1; }
work="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2> /dev/null && wait "$server" 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The demo pipeline, with this build's plugins and absolute model paths.
demo="$root/configs/demo"
sed -e "s#plugin_dirs: \[../../build/plugins\]#plugin_dirs: ['$build/plugins']#" \
    -e "s#{model: models/#{model: $demo/models/#" \
    "$demo/pipeline.yaml" > "$work/pipeline.yaml"

# A Lua script holding 200 request bodies of ROWS rows each, from the demo's
# records, sent in turn.
python3 - "$demo/data/patients.jsonl" "$rows" > "$work/requests.lua" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
rows = int(sys.argv[2])
widths = {"vitals": 12, "labs": 8, "imaging": 16, "wearable": 6}
bodies = []
for start in range(0, 200 * rows, rows):
    chunk = [records[(start + i) % len(records)] for i in range(rows)]
    inputs = []
    for name in ["vitals", "labs", "imaging", "notes", "wearable"]:
        values = [r["modalities"].get(name) for r in chunk]
        # Every modality is sent, with "present" marking its missing rows: a
        # row where all are missing then abstains rather than having no input.
        present = [v is not None for v in values]
        if name == "notes":
            data = [v if v is not None else "" for v in values]
            shape = [rows]
            datatype = "BYTES"
        else:
            data = [x for v in values for x in (v if v is not None else [0.0] * widths[name])]
            shape = [rows, widths[name]]
            datatype = "FP32"
        inputs.append({"name": name, "datatype": datatype, "shape": shape,
                       "data": data, "parameters": {"present": present}})
    bodies.append(json.dumps({"inputs": inputs}))
print("local bodies = {")
for body in bodies:
    print("  %s," % json.dumps(body))
print("}")
print("""local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, "/v2/models/icu-deterioration/infer", nil, bodies[i])
end""")
PY

"$latefuse" serve "$work/pipeline.yaml" --port "$port" 2> "$work/server.log" &
server=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/v2/health/ready" > /dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/v2/health/ready" > /dev/null ||
  { echo "serve.sh: the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }

run_wrk() {
  wrk -t"$threads" -c"$connections" -d"${duration}s" --latency \
    -s "$work/requests.lua" "http://127.0.0.1:$port" > "$1"
}
# wrk prints latencies as 512.00us, 1.20ms or 1.02s: in milliseconds.
ms() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
failed() {  # non-2xx answers plus socket errors
  awk '/Non-2xx or 3xx responses:/ { n += $NF }
       /Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 }
       END { print n + 0 }' "$1"
}

echo "latefuse serve, demo pipeline, $rows row(s) per request, wrk -t$threads -c$connections -d${duration}s, $(nproc) cores"
run_wrk "$work/phase1.txt"
rps="$(awk '/Requests\/sec:/ { print $2 }' "$work/phase1.txt")"
p50="$(ms "$(awk '$1 == "50%" { print $2 }' "$work/phase1.txt")")"
p99="$(ms "$(awk '$1 == "99%" { print $2 }' "$work/phase1.txt")")"
total="$(awk '/requests in/ { print $1 }' "$work/phase1.txt")"
echo "phase 1 (steady): $total requests, $rps requests/s, p50 $p50 ms, p99 $p99 ms, failed $(failed "$work/phase1.txt")"

run_wrk "$work/phase2.txt" &
load=$!
sent=0
end=$((SECONDS + duration))
while [ "$SECONDS" -lt "$end" ]; do
  sleep 0.5
  kill -HUP "$server"
  sent=$((sent + 1))
done
wait "$load"
sleep 1  # let the last reload finish
reloads="$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^latefuse_reloads_total\{result="ok"\}/ { print $2 }')"
rps2="$(awk '/Requests\/sec:/ { print $2 }' "$work/phase2.txt")"
p99_2="$(ms "$(awk '$1 == "99%" { print $2 }' "$work/phase2.txt")")"
total2="$(awk '/requests in/ { print $1 }' "$work/phase2.txt")"
failures="$(failed "$work/phase2.txt")"
echo "phase 2 (SIGHUP every 0.5 s): $sent reloads sent, $((reloads - 1)) done, $total2 requests, $rps2 requests/s, p99 $p99_2 ms, failed $failures"
[ "$failures" -eq 0 ]
