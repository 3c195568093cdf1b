#!/usr/bin/env bash
# The one script a GPU session runs for the CUDA engine: tests, sanitizers, benchmarks, PyTorch
# baselines and MNIST training on the device machine (one H100 or H200, CUDA 13, PyTorch; no
# network).
#
#   1. Here, on a machine with the build dependencies (GTest, Google Benchmark, zlib, nvcc):
#        bash scripts/gpu_run.sh --prebuild
#      builds Release binaries for sm_90 (without -march=native, so they run on any x86-64) into
#      build-gpu/ and copies them, with the shared libraries the device lacks, to build-gpu-bin/.
#   2. On the device, one call:
#        run(command="bash scripts/gpu_run.sh", carry=["build-gpu-bin", "data/fashion-mnist"],
#            timeout_s=590)
#      (data/fashion-mnist is optional and git-ignored: cp -r /usr/share/datasets/fashion-mnist
#      data/ first; with it the call sends about 62 MiB, under the 64 MiB limit.)
#      Without build-gpu-bin it configures and builds on the device instead (that needs GTest and
#      Google Benchmark there) and also runs the whole ctest suite.
#
# A session has 15 minutes of device time, the machine's start included, so everything runs in
# one call under one time budget (GPU_RUN_BUDGET seconds, default 540), most important first:
#   1. the GPU tests (CPU and CUDA engines agree)          5. compute-sanitizer memcheck, racecheck
#   2. the embedding example                              6. MNIST, seed preset, TF32
#   3. bench_cuda (W1, W2, the cuBLAS floor, time loops)  7. the CSV examples and synthetic binary
#   4. gpu_pytorch.py (the same workloads in PyTorch)     8. MNIST default preset, Fashion tutorial
#      and MNIST, seed preset, FP32, 3 epochs
# A stage gets its own limit or what is left of the budget, whichever is less; a stage with too
# little left is skipped and says so in summary.txt. `gpu_run.sh examples` runs 7 and 8 alone,
# for a second call when time is left.
#
# Everything goes to $OUT (default ./gpu-out), in at most 8 files:
#   summary.txt      device, versions, the status and time of every stage, test totals,
#                    sanitizer summaries, then bench/gpu_verdict.py's RESULTS.md tables and one
#                    PASS/FAIL/MISSING line per target
#   build.log        the build (device builds only) or the prebuilt binaries' dependencies
#   tests.log        test_cuda_kernels, test_cuda_engine, test_cuda_layers (and ctest for device
#                    builds)
#   sanitizer.log    compute-sanitizer memcheck and racecheck on small test cases
#   bench_cuda.json  Google Benchmark's JSON for W1/W2 vs the cuBLAS floor
#   pytorch.json     the PyTorch baselines (bench/gpu_pytorch.py)
#   run.log          console output of the benchmarks, the embedding example, PyTorch, MNIST
#                    training (with its JSON report), the CSV examples and the tutorial
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# ---- 1. prebuild (no GPU needed) ---------------------------------------------------------------
if [[ "${1:-}" == "--prebuild" ]]; then
  set -e
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DNMSNN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DNMSNN_NATIVE=OFF -DNMSNN_BUILD_TESTS=ON -DNMSNN_BUILD_BENCH=ON -DNMSNN_BUILD_TOOLS=ON
  cmake --build build-gpu -j "$(nproc)" --target test_cuda_kernels test_cuda_engine \
        test_cuda_layers bench_cuda nmsnn_cli nmsnn_embed_example fashion_mnist_tutorial \
        synthetic_binary
  rm -rf build-gpu-bin && mkdir -p build-gpu-bin/lib
  cp build-gpu/tests/test_cuda_kernels build-gpu/tests/test_cuda_engine \
     build-gpu/tests/test_cuda_layers build-gpu/bench/bench_cuda build-gpu/tools/nmsnn \
     build-gpu/tools/nmsnn_embed_example build-gpu/examples/fashion_mnist_tutorial \
     build-gpu/examples/synthetic_binary build-gpu-bin/
  # Google Benchmark is a shared library on Debian; the device image does not have it.
  for lib in $(ldd build-gpu-bin/bench_cuda | awk '/benchmark/ {print $3}'); do cp -L "$lib" build-gpu-bin/lib/; done
  du -sh build-gpu-bin
  echo "prebuilt: now run on the device: bash scripts/gpu_run.sh   (carry build-gpu-bin)"
  exit 0
fi

# ---- 2. on the device ---------------------------------------------------------------------------
PART=${1:-all}
[[ $PART == all || $PART == examples ]] || { echo "usage: gpu_run.sh [--prebuild | all | examples]" >&2; exit 2; }
BUDGET=${GPU_RUN_BUDGET:-540}
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
stage() {  # stage NAME SECONDS LOGFILE command... : runs within its limit and the budget
  local name=$1 limit=$2 log=$3; shift 3
  local left=$((BUDGET - SECONDS - 5))
  if ((left < 20)); then
    note "$(printf '%-34s %-22s' "$name" "SKIPPED (budget spent)")"
    return 0
  fi
  ((limit > left)) && limit=$left
  local t0=$SECONDS
  echo "===== $name: $*" >> "$log"
  timeout --kill-after=5 "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  local verdict=ok
  [[ $rc -eq 124 || $rc -eq 137 ]] && verdict="TIMED OUT after ${limit}s"
  [[ $rc -ne 0 && $verdict == ok ]] && verdict="FAILED (exit $rc)"
  note "$(printf '%-34s %-22s %4ds' "$name" "$verdict" $((SECONDS - t0)))"
  return $rc
}

note "nmsnn gpu_run $PART $(date -u +%FT%TZ)  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')  budget ${BUDGET}s"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | sed 's/^/gpu: /' | tee -a "$SUMMARY"
note "nvcc: $(nvcc --version 2>/dev/null | tail -1)"
note "python: $(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1)"

# The CUDA libraries the binaries load (cuBLAS 13): the toolkit's, else PyTorch's wheels.
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -e $d/libcublas.so.13 ]] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
done
if ! ldconfig -p | grep -q libcublas.so.13 && [[ ":${LD_LIBRARY_PATH:-}:" != *cuda* ]]; then
  d=$(python3 - <<'PY' 2>/dev/null
import glob, os, site
for p in site.getsitepackages():
    for f in glob.glob(os.path.join(p, "nvidia", "**", "libcublas.so.13"), recursive=True):
        print(os.path.dirname(f)); raise SystemExit
PY
)
  [[ -n "$d" ]] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
fi

if [[ -d build-gpu-bin ]]; then
  BIN=$ROOT/build-gpu-bin
  export LD_LIBRARY_PATH=$BIN/lib:${LD_LIBRARY_PATH:-}
  note "binaries: prebuilt (build-gpu-bin)"
  { echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; for b in "$BIN"/test_cuda_kernels "$BIN"/bench_cuda "$BIN"/nmsnn; do echo "== ldd $b"; ldd "$b"; done; } > "$OUT/build.log" 2>&1
  TESTS=("$BIN/test_cuda_kernels" "$BIN/test_cuda_engine" "$BIN/test_cuda_layers")
  BENCH=$BIN/bench_cuda CLI=$BIN/nmsnn EMBED=$BIN/nmsnn_embed_example
  FASHION=$BIN/fashion_mnist_tutorial SYNTHETIC=$BIN/synthetic_binary
  CTEST=no
else
  note "binaries: building on the device"
  stage "configure" 120 "$OUT/build.log" cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release \
        -DNMSNN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DNMSNN_BUILD_BENCH=ON
  stage "build" 300 "$OUT/build.log" cmake --build build-gpu -j "$(nproc)" || true
  TESTS=(build-gpu/tests/test_cuda_kernels build-gpu/tests/test_cuda_engine build-gpu/tests/test_cuda_layers)
  BENCH=build-gpu/bench/bench_cuda CLI=build-gpu/tools/nmsnn EMBED=build-gpu/tools/nmsnn_embed_example
  FASHION=build-gpu/examples/fashion_mnist_tutorial SYNTHETIC=build-gpu/examples/synthetic_binary
  CTEST=yes
fi

run_tests() {  # the kernels against their CPU twins first, then the engine against the CPU engine
  for t in "${TESTS[@]}"; do
    stage "$(basename "$t")" 150 "$OUT/tests.log" "$t" --gtest_color=no
  done
  # Per binary: the totals, then the names of failed tests (with their parameters).
  grep -E "^(=====|\[  (PASSED|SKIPPED) +\] [0-9]+ test|\[  FAILED  \] [0-9]+ test|\[  FAILED  \] [A-Za-z].*\()" \
    "$OUT/tests.log" 2>/dev/null | sed 's/^/  /' | head -60 >> "$SUMMARY"
  stage "embed_example" 30 "$OUT/run.log" "$EMBED" 1000
}

run_bench() {
  stage "bench_cuda" 150 "$OUT/run.log" "$BENCH" --benchmark_out="$OUT/bench_cuda.json" \
        --benchmark_out_format=json --benchmark_counters_tabular=true
}

run_pytorch() {  # the seed's model and the multi-step baseline, in the same call as bench_cuda
  stage "gpu_pytorch.py" 170 "$OUT/run.log" env PYTHONUNBUFFERED=1 python3 bench/gpu_pytorch.py \
        --out "$OUT/pytorch.json"
}

mnist() {  # mnist NAME SECONDS [flags...]: nmsnn train on the cuda engine
  local name=$1 limit=$2; shift 2
  stage "$name" "$limit" "$OUT/run.log" "$CLI" train --device cuda --data data/mnist "$@"
}

run_sanitizers() {  # small cases: the tools slow kernels down a hundredfold
  local san
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  local ksmall='NoiseMask.*:MaskedLinear.MasksInside*:MaskedLinear.*Fp32:Gemm.*:Lif.*:SpikesFromU.*:Optimizer.*:NllLoss.*'
  local esmall='*MatchesCpuEngine/5_7_3_B3_T37*:*MatchesCpuEngine/33_65_40_17_B3_T37*:*MatchesCpuEngine/33_17_B3_T37*:*MatchesCpuEngine/33_65_17_B1_T37*:CudaEngineOptimizer.*'
  stage "memcheck test_cuda_kernels" 60 "$OUT/sanitizer.log" "$san" --tool memcheck --error-exitcode 9 \
        "${TESTS[0]}" --gtest_filter="$ksmall" --gtest_color=no
  stage "memcheck test_cuda_engine" 60 "$OUT/sanitizer.log" "$san" --tool memcheck --error-exitcode 9 \
        "${TESTS[1]}" --gtest_filter="$esmall" --gtest_color=no
  stage "memcheck test_cuda_layers" 60 "$OUT/sanitizer.log" "$san" --tool memcheck --error-exitcode 9 \
        "${TESTS[2]}" --gtest_filter='*CudaMatchesCpu*' --gtest_color=no
  stage "racecheck test_cuda_kernels" 60 "$OUT/sanitizer.log" "$san" --tool racecheck --error-exitcode 9 \
        "${TESTS[0]}" --gtest_filter='MaskedLinear.MasksInside*:MaskedLinear.*Tf32:Lif.*' --gtest_color=no
  stage "racecheck test_cuda_layers" 60 "$OUT/sanitizer.log" "$san" --tool racecheck --error-exitcode 9 \
        "${TESTS[2]}" --gtest_filter='*CudaMatchesCpu/tutorial_regularized:*CudaMatchesCpu/tutorial_lowpass' --gtest_color=no
  grep -sE "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/sanitizer.log" | sed 's/^/  /' >> "$SUMMARY"
}

run_examples() {  # the CSV examples (issue 4) and the Fashion-MNIST tutorial (issue 5) on cuda
  stage "iris snn --device cuda" 60 "$OUT/run.log" "$CLI" train --device cuda --quiet \
        --data data/csv/iris_data.csv --target target
  stage "house prices snn --device cuda" 60 "$OUT/run.log" "$CLI" train --device cuda --quiet \
        --data data/csv/house_price_data.csv --task regression
  stage "house prices mlp --device cuda" 60 "$OUT/run.log" "$CLI" train --device cuda --quiet \
        --data data/csv/house_price_data.csv --task regression --model mlp
  stage "synthetic binary --device cuda" 120 "$OUT/run.log" "$SYNTHETIC" --device cuda
  grep -E "^test |training throughput|^(spiking|non-spiking) " "$OUT/run.log" | tail -14 | sed 's/^/  /' >> "$SUMMARY"
}

run_long() {
  mnist "mnist default preset" 150 --quiet
  if [[ -f data/fashion-mnist/t10k-labels-idx1-ubyte.gz ]]; then
    stage "fashion tutorial --device cuda" 300 "$OUT/run.log" "$FASHION" --device cuda \
          --recipe tutorial --data data/fashion-mnist --markdown
    grep -E "^\| " "$OUT/run.log" | tail -9 | sed 's/^/  /' >> "$SUMMARY"
  else
    note "fashion tutorial: skipped (no data/fashion-mnist; copy /usr/share/datasets/fashion-mnist there and carry it)"
  fi
}

if [[ $PART == all ]]; then
  run_tests
  [[ $CTEST == yes ]] && stage "ctest (all tests)" 200 "$OUT/tests.log" ctest --test-dir build-gpu --output-on-failure -j 8
  run_bench
  run_pytorch
  mnist "mnist seed preset fp32" 90 --preset seed --report "$OUT/train_report.json"
  # The report is small: fold it into run.log so $OUT keeps to 8 files.
  [[ -f $OUT/train_report.json ]] && { echo "===== train report"; cat "$OUT/train_report.json"; } >> "$OUT/run.log" && rm -f "$OUT/train_report.json"
  run_sanitizers
  mnist "mnist seed preset tf32" 90 --preset seed --matmul tf32 --quiet
fi
run_examples
run_long

# The tables for bench/RESULTS.md (benchmarks, PyTorch, time loops) and issue 3's targets, with
# each MNIST run's accuracy, from what this run measured.
[[ $PART == all ]] && python3 bench/gpu_verdict.py "$OUT" 2>&1 | tee -a "$SUMMARY"
note "done in ${SECONDS}s of ${BUDGET}s; files in $OUT:"
ls -la "$OUT" | tee -a "$SUMMARY"
