#!/usr/bin/env bash
# Writes a PNG screenshot of a `latefuse eval` report (report.html) with headless
# Chromium (Debian's `chromium`, which tools/setup.sh installs).
#
#   tools/eval_screenshot.sh REPORT.html OUT.png [WIDTH,HEIGHT]   (default 1280,1700)
#
# The README's picture of the demo's report was made with:
#   build/core/cli/latefuse eval configs/demo/pipeline.yaml \
#       --data configs/demo/data/patients.jsonl --report build/demo-eval
#   tools/eval_screenshot.sh build/demo-eval/report.html docs/eval-report.png
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,11p' "$0" >&2
  exit 2
fi
html=$(realpath "$1")
out=$(realpath -m "$2")
size=${3:-1280,1700}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  echo "eval_screenshot: chromium is not installed (tools/setup.sh installs it)" >&2
  exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
mkdir -p "$(dirname "$out")"
rm -f "$out"
"$chromium" --headless --disable-gpu --no-sandbox --hide-scrollbars \
  --user-data-dir="$profile" --window-size="$size" \
  --screenshot="$out" "file://$html" >/dev/null 2>&1 || true
if [ ! -s "$out" ]; then
  echo "eval_screenshot: chromium wrote no screenshot to $out" >&2
  exit 1
fi
echo "eval_screenshot: wrote $out" >&2
