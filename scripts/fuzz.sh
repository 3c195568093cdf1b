#!/usr/bin/env bash
# Builds the fuzz targets (tests/fuzz/) with clang's libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer (the library instrumented too), then fuzzes each one for a bounded
# time, starting from its committed seed corpus and saved crashes. Fails on any finding: a crash,
# a sanitizer report, a hang (-timeout), running out of memory (-rss_limit_mb), an exception other
# than nmsnn::Error, or an error message that is not one clean line. ctest runs it as `fuzz`.
#
#   usage: scripts/fuzz.sh [--build DIR] [--seconds N] [TARGET...]
#          DIR defaults to build-fuzz; N (seconds per target) to $NMSNN_FUZZ_SECONDS or 45;
#          TARGETs to all: csv idx spec_json model safetensors flags.
#
# What a run finds is kept under DIR/artifacts/<target>/ (crash-*, timeout-*, oom-*); reproduce
# one with `DIR/build/tests/fuzz/fuzz_<target> FILE`. Once it is fixed, copy the file to
# tests/fuzz/regressions/<target>/: every build's ctest then replays it (fuzz_replay_<target>).
# New inputs that reach new code collect in DIR/corpus/<target>/, outside the source tree;
# `fuzz_<target> -merge=1 tests/fuzz/corpus/<target> DIR/corpus/<target>` would fold the useful
# ones into the seed corpus (keep it small).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build-fuzz
SECONDS_EACH=${NMSNN_FUZZ_SECONDS:-45}
TARGETS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) OUT=$2; shift 2 ;;
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(csv idx spec_json model safetensors flags)
for t in "${TARGETS[@]}"; do
  [[ -d $ROOT/tests/fuzz/corpus/$t ]] || { echo "fuzz: unknown target '$t' (no tests/fuzz/corpus/$t)" >&2; exit 2; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # absolute, for the paths libFuzzer prints

# The largest input each target is given: enough for its seeds and for every check to be reached,
# small enough to keep executions fast (the model seeds are whole small model files).
declare -A MAX_LEN=([csv]=4096 [idx]=4096 [spec_json]=4096 [model]=16384 [safetensors]=4096
                    [flags]=1024)

CXX=${NMSNN_FUZZ_CXX:-}
if [[ -z $CXX ]]; then
  for c in clang++-14 clang++; do
    if command -v "$c" >/dev/null; then CXX=$c; break; fi
  done
fi
if [[ -z $CXX ]]; then
  echo "fuzz: no clang++ found (libFuzzer needs clang; scripts/install_deps.sh installs clang-14" \
       "and libclang-rt-14-dev, or set NMSNN_FUZZ_CXX)" >&2
  exit 1
fi

jobs=$(nproc 2>/dev/null || echo 2)
SAN=(-fsanitize=address,undefined -fsanitize=float-cast-overflow -fno-sanitize-recover=all)
FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link ${SAN[*]}"
# Build type None: exactly FLAGS (no -DNDEBUG, so the library's asserts are checked too).
cmake -S "$ROOT" -B "$OUT/build" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=None \
      -DCMAKE_CXX_FLAGS="$FLAGS" -DNMSNN_CUDA=OFF -DNMSNN_NATIVE=OFF -DNMSNN_BUILD_TOOLS=OFF \
      -DNMSNN_BUILD_BENCH=OFF -DNMSNN_BUILD_TESTS=ON -DNMSNN_LIBFUZZER=ON > "$OUT/configure.log" 2>&1 ||
  { cat "$OUT/configure.log" >&2; echo "fuzz: configuring the libFuzzer build failed" >&2; exit 1; }
start=$(date +%s)
cmake --build "$OUT/build" -j "$jobs" --target "${TARGETS[@]/#/fuzz_}" > "$OUT/build.log" 2>&1 ||
  { tail -n 60 "$OUT/build.log" >&2; echo "fuzz: building the fuzz targets failed" >&2; exit 1; }
echo "fuzz: built ${#TARGETS[@]} targets with $CXX in $(($(date +%s) - start)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${TARGETS[@]}"; do
  corpus=$ROOT/tests/fuzz/corpus/$t regressions=$ROOT/tests/fuzz/regressions/$t
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
  # The first directory is where libFuzzer adds inputs; the committed ones are only read.
  dirs=("$OUT/corpus/$t" "$corpus")
  [[ -d $regressions ]] && dirs+=("$regressions")
  dict=()
  [[ $t == spec_json || $t == model || $t == safetensors ]] && dict=(-dict="$ROOT/tests/fuzz/json.dict")
  log=$OUT/$t.log
  if "$OUT/build/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
       -rss_limit_mb=2048 -max_len="${MAX_LEN[$t]:-4096}" -print_final_stats=1 "${dict[@]}" \
       -artifact_prefix="$OUT/artifacts/$t/" "${dirs[@]}" > "$log" 2>&1; then
    echo "fuzz: $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs" \
         "in ${SECONDS_EACH} s, no findings"
  else
    failed+=("$t")
    tail -n 40 "$log" >&2
    echo "fuzz: $t: FINDING (log $log; inputs in $OUT/artifacts/$t/)" >&2
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: findings in ${failed[*]}; once fixed, save each input under" \
       "tests/fuzz/regressions/<target>/" >&2
  exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets ran without findings"
