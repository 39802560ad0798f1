#!/usr/bin/env bash
# Builds latefuse with clang, AddressSanitizer and UndefinedBehaviorSanitizer (any
# undefined behaviour fatal) into build-asan/, beside the libFuzzer targets of fuzz/, and
# runs the whole test suite there. The fuzz targets' corpus tests are part of that suite.
# Usage: tools/sanitize.sh [ctest arguments...]   (e.g. -R records_test)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# -O1 and line tables only: the sanitizers' reports keep file:line, the build stays
# small and quick. Debug keeps assert() on. Benchmarks are not part of the suite.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  "-DCMAKE_C_FLAGS_DEBUG=-O1 -gline-tables-only" \
  "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only" \
  -DLATEFUSE_SANITIZE=ON -DLATEFUSE_FUZZ=ON -DLATEFUSE_BUILD_BENCHMARKS=OFF \
  -DLATEFUSE_WARNINGS_AS_ERRORS=ON "${launcher[@]}" >/dev/null
cmake --build build-asan -j "$(nproc)"
# Every finding fails the test that ran into it: ASan and UBSan abort, leaks included.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j "$(nproc)" "$@"
