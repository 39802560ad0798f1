#!/usr/bin/env bash
# Sets everything up, then runs the bundled ICU demo pipeline: validates it (printing the
# resolved plan), fuses configs/demo/data/patients.jsonl into build/demo-output.jsonl,
# shows the first fused records, then the run's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
build/core/cli/latefuse validate configs/demo/pipeline.yaml
build/core/cli/latefuse run configs/demo/pipeline.yaml --no-progress \
  --input configs/demo/data/patients.jsonl --output build/demo-output.jsonl \
  2> build/demo-summary.txt
echo
echo "first fused records (all $(wc -l < build/demo-output.jsonl) are in build/demo-output.jsonl):"
head -n 8 build/demo-output.jsonl
echo
cat build/demo-summary.txt
