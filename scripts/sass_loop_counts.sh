#!/usr/bin/env bash
# The instructions each kernel's main loop issues, from the SASS nvcc makes for it: the counts the
# napkin model (bench/napkin_math.hpp) takes for loops that are issue-bound. No GPU needed.
#
#   bash scripts/sass_loop_counts.sh [arch] [kernel .cu files ...]
#       arch: sm_90 (the default) or sm_80; files: kernels/masked_linear.cu by default.
#
# nvcc 13 ships without cuobjdump and nvdisasm here; the script takes them from PATH, or else from
# NVIDIA's wheels on PyPI (nvidia-cuda-cuobjdump, nvidia-cuda-nvdisasm), unpacked once into
# ${NMSNN_CUDA_TOOLS:-$HOME/.cache/nmsnn/cuda-tools}. It compiles each file as the library does
# (-O3, C++17, --expt-relaxed-constexpr) and prints bench/sass_loop_mix.py's table per kernel.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:-sm_90}
case "$arch" in
  sm_80 | sm_90) shift || true ;;
  *.cu) arch=sm_90 ;;
  *) echo "sass_loop_counts.sh: arch must be sm_80 or sm_90, got '$arch'" >&2; exit 2 ;;
esac
files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=(kernels/masked_linear.cu)

tools=${NMSNN_CUDA_TOOLS:-$HOME/.cache/nmsnn/cuda-tools}
if ! command -v cuobjdump > /dev/null || ! command -v nvdisasm > /dev/null; then
  if [[ ! -x "$tools/nvidia/cu13/bin/cuobjdump" || ! -x "$tools/nvidia/cu13/bin/nvdisasm" ]]; then
    echo "sass_loop_counts.sh: fetching cuobjdump and nvdisasm from PyPI into $tools" >&2
    mkdir -p "$tools"
    python3 -m pip download --quiet --no-deps --dest "$tools" nvidia-cuda-cuobjdump \
      nvidia-cuda-nvdisasm
    for wheel in "$tools"/nvidia_cuda_*.whl; do
      python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
        "$wheel" "$tools"
    done
    chmod +x "$tools"/nvidia/cu13/bin/*
  fi
  export PATH="$tools/nvidia/cu13/bin:$PATH"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for file in "${files[@]}"; do
  [[ -f "$file" ]] || { echo "sass_loop_counts.sh: no such file: $file" >&2; exit 2; }
  object="$work/$(basename "$file" .cu).o"
  nvcc -O3 -std=c++17 --expt-relaxed-constexpr -DNMSNN_WITH_CUDA=1 -I include -I kernels \
    -I host -arch="$arch" -Xptxas=-warn-spills -c "$file" -o "$object"
  cuobjdump -sass "$object" > "$work/listing.sass"
  echo "== $file ($arch)"
  python3 bench/sass_loop_mix.py "$work/listing.sass"
done
