#!/usr/bin/env bash
# Installs every Debian package that latefuse's build, tests and demo need, and only the
# ones that are missing. Safe to run again. Needs root or sudo for the install step.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config git clang-format
  # tools/sanitize.sh and tools/fuzz.sh: clang with its sanitizer and libFuzzer runtimes,
  # llvm-symbolizer for file:line in their reports
  clang libclang-rt-14-dev llvm
  # libraries the host, SDK and plugins build against
  libboost-dev libyaml-cpp-dev libfmt-dev libabsl-dev nlohmann-json3-dev
  libsimdjson-dev libcli11-dev libssl-dev
  # HTTP for `latefuse serve` and the `remote` model plugin
  libcpp-httplib-dev
  # numerics for fitting combiners and calibrators
  libeigen3-dev liblbfgspp-dev
  # gradient-boosted trees for the xgboost model plugin
  libxgboost-dev
  # tests and benchmarks; chromium renders `latefuse eval`'s HTML report headless
  libgtest-dev libgmock-dev libbenchmark-dev chromium
  # load generator for the server's benchmark (bench/serve.sh)
  wrk
  # reference implementations for fixtures and the demo's training script
  python3 python3-numpy python3-sklearn python3-xgboost
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: every package is installed" >&2
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
