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
# Each CUDA thread is a host thread and blocks run one after another, so this checks the kernels'
# arithmetic and indexing, the engine's buffer planning and the host code around them (every
# out-of-bounds access aborts), not timing, warp-level behaviour or races between blocks: those
# need the real device (scripts/gpu_run.sh). ctest runs it as the test `cuda_emulation`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build-emu}
EMU=$ROOT/tests/cuda_emulation
mkdir -p "$OUT/obj" "$OUT/src"
jobs=$(nproc 2>/dev/null || echo 2)
# -ffp-contract=off: no fused multiply-adds, like the __fadd_rn/__fmul_rn the kernels ask for.
SANITIZER=${NMSNN_EMU_SANITIZER:-address,undefined}
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -ffp-contract=off -fsanitize="$SANITIZER"
       -fno-sanitize-recover=all -Wno-psabi -pthread -DNMSNN_WITH_CUDA=1 -I"$EMU/include"
       -I"$ROOT/include" -I"$ROOT/host" -I"$ROOT/kernels" -I"$ROOT/host/cuda")

# The library's sources, read from CMakeLists.txt: its C++ files, and the .cu files of the CUDA
# engine (rewritten to C++ first).
mapfile -t CPP < <(python3 - "$ROOT/CMakeLists.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
lib = re.search(r'add_library\(nmsnn\s+(.*?)\)', text, re.S).group(1)
print('\n'.join(f for f in lib.split() if f.endswith('.cpp')))
PY
)
mapfile -t CU < <(python3 - "$ROOT/CMakeLists.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in re.findall(r'target_sources\(nmsnn PRIVATE(.*?)\)', text, re.S):
    for f in block.split():
        if f.endswith('.cu'):
            print(f)
PY
)
[[ ${#CU[@]} -gt 0 ]] || { echo "no .cu sources found in CMakeLists.txt" >&2; exit 1; }

objects=("$OUT/obj/runtime.o")
tasks=("$EMU/runtime.cpp" "$OUT/obj/runtime.o")
for f in "${CPP[@]}"; do
  o=$OUT/obj/$(echo "$f" | tr / _).o
  objects+=("$o")
  tasks+=("$ROOT/$f" "$o")
done
for f in "${CU[@]}"; do
  s=$OUT/src/$(echo "$f" | tr / _).cpp
  o=$OUT/obj/$(echo "$f" | tr / _).o
  python3 "$EMU/rewrite_launches.py" "$ROOT/$f" "$s.new"
  cmp -s "$s.new" "$s" && rm "$s.new" || mv "$s.new" "$s"  # keep the timestamp when unchanged
  objects+=("$o")
  tasks+=("$s" "$o")
done
# The nmsnn command, to run the CLI with --device cuda (its sources from tools/CMakeLists.txt).
mapfile -t TOOLS < <(python3 - "$ROOT/tools/CMakeLists.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = re.search(r'add_executable\(nmsnn_cli(.*?)\)', text, re.S).group(1)
for f in block.split():
    if f.endswith('.cpp'):
        print(f)
PY
)
tool_objects=()
for f in "${TOOLS[@]}"; do
  o=$OUT/obj/tools_$f.o
  tool_objects+=("$o")
  tasks+=("$ROOT/tools/$f" "$o")
done
# Headers are not tracked: rebuild everything when any header is newer than the library.
if [[ -f $OUT/libnmsnn_emulated.a ]] &&
   [[ -n $(find "$ROOT/include" "$ROOT/host" "$ROOT/kernels" "$EMU/include" -newer "$OUT/libnmsnn_emulated.a" \( -name '*.hpp' -o -name '*.cuh' -o -name '*.h' \) | head -1) ]]; then
  rm -f "$OUT"/obj/*.o
fi
# Compile what changed, $jobs at a time; a failure leaves a marker (wait -n cannot report it).
rm -f "$OUT/failed"
running=0
for ((i = 0; i < ${#tasks[@]}; i += 2)); do
  src=${tasks[i]} obj=${tasks[i + 1]}
  [[ -f $obj && ! $src -nt $obj ]] && continue
  (g++ "${FLAGS[@]}" -x c++ -c "$src" -o "$obj" || touch "$OUT/failed") &
  if ((++running >= jobs)); then wait -n || true; ((running--)); fi
done
wait
[[ -f $OUT/failed ]] && { echo "cuda emulation: compilation failed" >&2; exit 1; }
rm -f "$OUT/libnmsnn_emulated.a"
ar rcs "$OUT/libnmsnn_emulated.a" "${objects[@]}"

python3 "$EMU/rewrite_launches.py" "$ROOT/tools/embed_example.cu" "$OUT/src/embed_example.cpp"
g++ "${FLAGS[@]}" "$OUT/src/embed_example.cpp" "$OUT/libnmsnn_emulated.a" -lz -o "$OUT/embed_example" &
pids=($!)
g++ "${FLAGS[@]}" "${tool_objects[@]}" "$OUT/libnmsnn_emulated.a" -lz -o "$OUT/nmsnn" &
pids+=($!)
for t in test_cuda_kernels test_cuda_engine test_cuda_layers; do
  g++ "${FLAGS[@]}" -DNMSNN_SOURCE_DIR=\"$ROOT\" -DNMSNN_BINARY_DIR=\"$OUT\" "$ROOT/tests/$t.cpp" \
      "$OUT/libnmsnn_emulated.a" -lgtest -lgtest_main -lz -o "$OUT/$t" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 TSAN_OPTIONS=halt_on_error=1
if [[ $SANITIZER == thread ]]; then
  # The race check: every kernel that shares memory within a block (the tiled products, the bias
  # and regulariser reductions, the WMMA stores) on small cases; the arithmetic is the ASan
  # build's job.
  "$OUT/test_cuda_kernels" --gtest_brief=1
  "$OUT/test_cuda_engine" --gtest_brief=1 \
      --gtest_filter='CudaEngineOptimizer.*:*MatchesCpuEngine/5_7_3_B3_T37*:*MatchesCpuEngine/33_17_B3_T37*'
  "$OUT/test_cuda_layers" --gtest_brief=1 --gtest_filter='*CudaMatchesCpu/spiking_then_dense_noisy:*CudaMatchesCpu/tutorial_regularized:*CudaMatchesCpu/tutorial_lowpass'
  echo "cuda emulation (ThreadSanitizer): no data races"
  exit 0
fi

# The training-curve and model tests run hundreds of passes: minutes under the emulation, and
# their plumbing is covered by the comparisons. Everything else runs.
"$OUT/test_cuda_kernels" --gtest_brief=1
"$OUT/test_cuda_engine" --gtest_brief=1 --gtest_filter='-*HarnessOnCpu*:CudaEngineTraining.*'
"$OUT/test_cuda_layers" --gtest_brief=1 --gtest_filter='-*HarnessOnCpu*:CudaModels.*'
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
# arithmetic up to rounding, and no spike flips here).
for device in cpu cuda; do
  "$OUT/nmsnn" train --device "$device" --quiet --data "$ROOT/data/csv/iris_data.csv" \
      --target target --epochs 3 | grep -E "^test" > "$OUT/cli_$device.txt"
  "$OUT/nmsnn" train --device "$device" --quiet --data "$ROOT/data/csv/house_price_data.csv" \
      --task regression --model mlp --epochs 3 | grep -E "^test" >> "$OUT/cli_$device.txt"
done
cat "$OUT/cli_cuda.txt"
diff "$OUT/cli_cpu.txt" "$OUT/cli_cuda.txt" ||
  { echo "nmsnn train --device cuda differs from --device cpu" >&2; exit 1; }
echo "cuda emulation: all tests passed"
