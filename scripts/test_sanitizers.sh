#!/usr/bin/env bash
# Builds the whole CPU test suite (library, nmsnn program, tests; no CUDA, no benchmarks) with
# AddressSanitizer and UndefinedBehaviorSanitizer, float-to-int conversions out of range and
# signed overflow included, every report fatal, and runs all its tests under ctest. ctest runs
# it as the test `sanitizers`.
#
#   usage: scripts/test_sanitizers.sh [BUILD_DIR]     (default build-sanitizers)
#          CXX=clang++ scripts/test_sanitizers.sh      (default g++, the compiler CI builds with)
#
# Left out: the ctest entries that start nested builds of their own (the CUDA emulation, which
# already runs under ASan and UBSan, the fuzz and sanitizer stages, install_consumer, the Python
# package) and the GPU verdict script (Python). Built without MPI (NMSNN_MPI=OFF): this stage is
# also the check that the library, the program and every other test work without it (the
# data-parallel tests run on local_group's threads here; mpirun's in the main build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build-sanitizers}
CXX=${CXX:-g++}
mkdir -p "$OUT"
jobs=$(nproc 2>/dev/null || echo 2)

# -O1: the sanitizers' usual level, fast enough for the training tests. Build type None: exactly
# these flags, so asserts stay on.
FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fsanitize=float-cast-overflow"
FLAGS+=" -fno-sanitize-recover=all"
start=$(date +%s)
cmake -S "$ROOT" -B "$OUT" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=None \
      -DCMAKE_CXX_FLAGS="$FLAGS" -DNMSNN_CUDA=OFF -DNMSNN_BUILD_TESTS=ON \
      -DNMSNN_BUILD_BENCH=OFF -DNMSNN_BUILD_TOOLS=ON -DNMSNN_MPI=OFF > "$OUT/configure.log" 2>&1 ||
  { cat "$OUT/configure.log" >&2; echo "sanitizers: configuring failed" >&2; exit 1; }
cmake --build "$OUT" -j "$jobs" > "$OUT/build.log" 2>&1 ||
  { grep -E -A5 'error|Error' "$OUT/build.log" | head -n 80 >&2; echo "sanitizers: build failed" >&2; exit 1; }
built=$(date +%s)
echo "sanitizers: built with $CXX in $((built - start)) s"

# Leaks count too. Every report aborts (SIGABRT, with a stack trace) rather than exiting with
# status 1, which the CLI tests would take for the nmsnn program's ordinary error exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
ctest --test-dir "$OUT" -j "$jobs" --output-on-failure \
      -E '^(cuda_emulation.*|fuzz|sanitizers|install_consumer|gpu_verdict|python)$'
echo "sanitizers: every test passed under ASan and UBSan in $(($(date +%s) - built)) s"
