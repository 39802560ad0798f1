#!/usr/bin/env bash
# Installs what is missing (tools/setup.sh), then configures and builds latefuse in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLATEFUSE_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build build -j "$(nproc)"
