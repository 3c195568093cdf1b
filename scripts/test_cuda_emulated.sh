#!/usr/bin/env bash
# Runs the CUDA engine's tests without a GPU: the CUDA sources (kernels/, host/cuda/) compiled as
# C++ against an emulation of the CUDA runtime, cuBLAS and WMMA (tests/cuda_emulation/), with
# AddressSanitizer and UndefinedBehaviorSanitizer, then test_cuda_kernels, test_cuda_engine and
# test_cuda_layers against the CPU engine as on a GPU, the device-API example program, and
# `nmsnn train --device cuda` against `--device cpu` on two CSV examples.
#
#   usage: scripts/test_cuda_emulated.sh [BUILD_DIR]        (default build-emu)
#          NMSNN_EMU_SANITIZER=thread scripts/test_cuda_emulated.sh build-emu-tsan
#            builds with ThreadSanitizer instead and runs the kernel tests and a few small stacks:
#            the threads of a block are real threads, so a shared-memory access that no
#            __syncthreads orders is reported, as racecheck would (ctest: `cuda_emulation_races`).
#
# Each CUDA thread is a host thread and blocks run one after another (the blocks of a thread-block
# cluster at once, so a read of another block's shared memory is checked too), so this checks the
# kernels' arithmetic and indexing, the engine's buffer planning and the host code around them
# (every out-of-bounds access aborts), not timing, warp-level behaviour or races between blocks
# through global memory: those need the real device (scripts/gpu_run.sh). ctest runs it as the
# test `cuda_emulation`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build-emu}
SANITIZER=${NMSNN_EMU_SANITIZER:-address,undefined}
# The build is the CMake project tests/cuda_emulation: it rewrites the .cu files' launches, and
# its dependency tracking recompiles only what a change touches. The compiler is GCC unless CXX
# names another (CMake reads CXX when it first configures a build directory).
CXX=${CXX:-g++} cmake -S "$ROOT/tests/cuda_emulation" -B "$OUT" -DNMSNN_ROOT="$ROOT" \
    -DNMSNN_EMU_SANITIZER="$SANITIZER"
cmake --build "$OUT" -j "$(nproc 2>/dev/null || echo 2)"

export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 TSAN_OPTIONS=halt_on_error=1
if [[ $SANITIZER == thread ]]; then
  # The race check: every kernel that shares memory within a block (the tiled products, the bias
  # and regularizer reductions, the WMMA stores) on small cases; the arithmetic is the ASan
  # build's job. The masked product's sweep of every width in every precision is left to the
  # ASan build (the same barriers as the per-precision cases, at many sizes: too slow here), and
  # so are the sample clusters' modes but TF32 in time chunks, whose barriers include the others'
  # (four modes took 12 minutes here).
  skipped='MaskedLinear.EveryWidthInEveryPrecision:*/fp32_whole:*/fp32_chunks_of_3:*/tf32_whole'
  skipped+=':*/bf16_whole:*/bf16_chunks_of_16'
  "$OUT/test_cuda_kernels" --gtest_brief=1 --gtest_filter="-$skipped"
  # The convolution bias's block reduction (the other conv and pool kernels share no memory).
  "$OUT/test_cuda_conv" --gtest_brief=1 --gtest_filter='ConvBiasPart.*'
  "$OUT/test_cuda_engine" --gtest_brief=1 \
      --gtest_filter='CudaEngineOptimizer.*:*MatchesCpuEngine/5_7_3_B3_T37*:*MatchesCpuEngine/33_17_B3_T37*'
  "$OUT/test_cuda_layers" --gtest_brief=1 --gtest_filter='*CudaMatchesCpu/spiking_then_dense_noisy:*CudaMatchesCpu/tutorial_regularized:*CudaMatchesCpu/tutorial_lowpass'
  # The device-resident step: its loss kernel's reduction and the guarded updates' atomics. (The
  # step by sample clusters is one kernel, whose barriers and cross-block reads the kernel tests'
  # ClusterForward and SampleClusterStep cases check here; through StepLoop it takes 8 minutes.)
  "$OUT/test_train_step" --gtest_brief=1 --gtest_filter='*StepLoopOn.MatchesTheStepByStepApi/cuda:*HaltsWhenAnUpdateOverflows/cuda'
  # The gradients' scale kernel (data parallelism).
  "$OUT/test_cuda_reduce" --gtest_brief=1 --gtest_filter='*cuda_device*'
  echo "cuda emulation (ThreadSanitizer): no data races"
  exit 0
fi

# The training-curve and model tests run hundreds of passes: minutes under the emulation, and
# their plumbing is covered by the comparisons. Everything else runs but for a few cases whose
# code the others run too (this stage is CI's longest: 70 of its 90 minutes on 2026-12-03):
#  - the sample clusters' modes: fp32 in time chunks, tf32 whole and bf16 in chunks of 16 here
#    (each precision, and both whole and chunked); tf32 in chunks runs in the race check above
#    (its arithmetic is checked there too); fp32 and bf16 whole are left (a minute together);
#  - the random networks: the TF32 and BF16 runs skip the 257-sample cases (about a minute and a
#    half each under the emulation; they passed when added), and FP32 skips 784-100-10 at 257
#    samples and 37 steps (70 s): 784-100-10 at 257 x 2 and 33-65-40-17 at 257 x 37 remain.
"$OUT/test_cuda_kernels" --gtest_brief=1 \
    --gtest_filter='-Modes/*/fp32_whole:Modes/*/bf16_whole:Modes/*/tf32_chunks_of_16'
"$OUT/test_cuda_conv" --gtest_brief=1
"$OUT/test_cuda_engine" --gtest_brief=1 \
    --gtest_filter='-*HarnessOnCpu*:CudaEngineTraining.*:*CudaEngineReduced*B257*:*CudaEngine.MatchesCpuEngine/784_100_10_B257_T37_*'
"$OUT/test_cuda_layers" --gtest_brief=1 --gtest_filter='-*HarnessOnCpu*:CudaModels.*'
# The whole training step on the device, and its CUDA graph replay, against the step-by-step API.
"$OUT/test_train_step" --gtest_brief=1
# Data parallelism: the gradients weighted and summed through host or device memory, StepLoop
# with a communicator against StepLoop without, and its device-resident step against its host path.
"$OUT/test_cuda_reduce" --gtest_brief=1
# The embedding example, a CUDA program on the device API: it must run and its SGD step must lower
# the loss.
"$OUT/embed_example" 16 | tee "$OUT/embed_example.txt"
python3 - "$OUT/embed_example.txt" <<'PY'
import re, sys
m = re.search(r'mean loss ([0-9.]+) before one SGD step, ([0-9.]+) after', open(sys.argv[1]).read())
if not m or not float(m.group(2)) < float(m.group(1)):
    sys.exit('embed_example: expected the loss to fall after one SGD step')
PY
# The command line on the cuda engine: a few epochs of the iris example (spiking) and of the
# house-price regression (MLP) give the same test metrics as on the cpu engine (the same
# arithmetic up to rounding, and no spike flips here), with the device-resident step and with it
# replayed from CUDA graphs, and (iris: a noisy pair of spiking layers) by sample clusters; the
# MLP has no such pair, so it does not run again for the clusters.
for run in cpu cuda cuda-graphs cuda-clusters; do
  flags=(--device "${run%%-*}")
  [[ $run == cuda-graphs ]] && flags+=(--cuda-graphs)
  [[ $run == cuda-clusters ]] && flags+=(--sample-clusters)
  "$OUT/nmsnn" train "${flags[@]}" --quiet --data "$ROOT/data/csv/iris_data.csv" \
      --target target --epochs 3 | grep -E "^test" > "$OUT/cli_$run.txt"
  [[ $run == cuda-clusters ]] && continue
  "$OUT/nmsnn" train "${flags[@]}" --quiet --data "$ROOT/data/csv/house_price_data.csv" \
      --task regression --model mlp --epochs 3 | grep -E "^test" >> "$OUT/cli_$run.txt"
done
cat "$OUT/cli_cuda.txt"
head -n 1 "$OUT/cli_cpu.txt" > "$OUT/cli_cpu_iris.txt"
for run in cuda cuda-graphs cuda-clusters; do
  want="$OUT/cli_cpu.txt"
  [[ $run == cuda-clusters ]] && want="$OUT/cli_cpu_iris.txt"
  diff "$want" "$OUT/cli_$run.txt" ||
    { echo "nmsnn train ($run) differs from --device cpu" >&2; exit 1; }
done
# TF32 products: iris by sample clusters (tensor cores for the products with W0's shape) against
# the layered TF32 kernels; their sums differ only in order and in the small products with W1
# (FP32 in the clusters), too little to change the printed metrics here.
for run in layered clusters; do
  flags=(--device cuda --matmul tf32)
  [[ $run == clusters ]] && flags+=(--sample-clusters)
  "$OUT/nmsnn" train "${flags[@]}" --quiet --data "$ROOT/data/csv/iris_data.csv" \
      --target target --epochs 3 | grep -E "^test" > "$OUT/cli_tf32_$run.txt"
done
diff "$OUT/cli_tf32_layered.txt" "$OUT/cli_tf32_clusters.txt" ||
  { echo "nmsnn train --matmul tf32 --sample-clusters differs from --matmul tf32" >&2; exit 1; }
# The first layer's products on wgmma for the whole engine (NMSNN_CUDA_MMA; automatic keeps
# mma.sync in the emulation): the random networks in TF32 and BF16 against the CPU engine, and
# iris (a noisy pair of spiking layers) in TF32 and BF16, whose printed metrics
# must be those of mma.sync (the emulation adds the same products in the same order). A value
# the variable does not know must stop the run with its name.
NMSNN_CUDA_MMA=wgmma "$OUT/test_cuda_engine" --gtest_brief=1 \
    --gtest_filter='*CudaEngineReduced*:-*B257*'
for math in tf32 bf16; do
  for mma in mma_sync wgmma; do
    NMSNN_CUDA_MMA=$mma "$OUT/nmsnn" train --device cuda --matmul $math --quiet \
        --data "$ROOT/data/csv/iris_data.csv" --target target --epochs 3 |
      grep -E "^test" > "$OUT/cli_${math}_$mma.txt"
  done
  diff "$OUT/cli_${math}_mma_sync.txt" "$OUT/cli_${math}_wgmma.txt" ||
    { echo "nmsnn train --matmul $math: wgmma differs from mma.sync" >&2; exit 1; }
done
if NMSNN_CUDA_MMA=bogus "$OUT/nmsnn" train --device cuda --matmul tf32 --quiet \
    --data "$ROOT/data/csv/iris_data.csv" --target target --epochs 1 > "$OUT/cli_bogus.txt" 2>&1 ||
    ! grep -q 'NMSNN_CUDA_MMA' "$OUT/cli_bogus.txt"; then
  echo "NMSNN_CUDA_MMA=bogus: expected an error naming the variable, got:" >&2
  cat "$OUT/cli_bogus.txt" >&2
  exit 1
fi
echo "cuda emulation: all tests passed"
