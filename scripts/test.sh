#!/usr/bin/env bash
# scripts/test.sh — build kvant and run every test: a Release build (warnings as errors) with the full
# suite, then an AddressSanitizer+UBSan build running the unit and bad-input tests.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVANT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

# The CUDA sources are already compiled (and their tests skip without a GPU) in the Release build.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVANT_SANITIZE=ON -DKVANT_WERROR=ON -DKVANT_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L sanitize
echo "scripts/test.sh: all tests passed"
