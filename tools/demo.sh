#!/usr/bin/env bash
# Sets everything up, then runs the bundled ICU demo pipeline: validates it (printing the
# resolved plan), then fuses configs/demo/data/patients.jsonl. Fused records go to stdout
# (the first 5 are shown, all are in build/demo-output.jsonl); the summary goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
build/core/cli/latefuse validate configs/demo/pipeline.yaml
build/core/cli/latefuse run configs/demo/pipeline.yaml \
  --input configs/demo/data/patients.jsonl --output build/demo-output.jsonl
echo "first records of build/demo-output.jsonl:"
head -n 5 build/demo-output.jsonl
