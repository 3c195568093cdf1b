#!/usr/bin/env bash
# The instructions each kernel's main loop issues, from the SASS nvcc makes for it: the counts the
# napkin model (bench/napkin_math.hpp) takes for loops that are issue-bound. No GPU needed.
#
#   bash scripts/sass_loop_counts.sh [arch] [kernel .cu files ...]
#       arch: sm_90 (the default), sm_90a (the wgmma forward's code) or sm_80; files:
#       kernels/masked_linear.cu by default.
#   bash scripts/sass_loop_counts.sh --check
#       compares the sm_90 counts of kernels/masked_linear.cu (and the sm_90a counts of its wgmma
#       forward) with the loop constants of bench/napkin_math.hpp (bench/check_loop_constants.py)
#       and fails on a stale one. The
#       constants are nvcc 13.0's counts, so with another nvcc, or none, or without the tools
#       (no PyPI), it prints why and exits 77 (ctest's skip: `napkin_loop_constants`).
#
# nvcc 13 ships without cuobjdump and nvdisasm here; the script takes them from PATH, or else from
# NVIDIA's wheels on PyPI (nvidia-cuda-cuobjdump, nvidia-cuda-nvdisasm), unpacked once into
# ${NMSNN_CUDA_TOOLS:-$HOME/.cache/nmsnn/cuda-tools}. It compiles each file as the library does
# (-O3, C++17, --expt-relaxed-constexpr) and prints bench/sass_loop_mix.py's table per kernel.
set -euo pipefail
cd "$(dirname "$0")/.."

# cuobjdump and nvdisasm on PATH, from the wheels if need be; fails if they cannot be had.
find_tools() {
  command -v cuobjdump > /dev/null && command -v nvdisasm > /dev/null && return 0
  local tools=${NMSNN_CUDA_TOOLS:-$HOME/.cache/nmsnn/cuda-tools}
  if [[ ! -x "$tools/nvidia/cu13/bin/cuobjdump" || ! -x "$tools/nvidia/cu13/bin/nvdisasm" ]]; then
    echo "sass_loop_counts.sh: fetching cuobjdump and nvdisasm from PyPI into $tools" >&2
    mkdir -p "$tools"
    python3 -m pip download --quiet --no-deps --dest "$tools" nvidia-cuda-cuobjdump \
      nvidia-cuda-nvdisasm || return 1
    for wheel in "$tools"/nvidia_cuda_*.whl; do
      python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
        "$wheel" "$tools" || return 1
    done
    chmod +x "$tools"/nvidia/cu13/bin/* || return 1
  fi
  export PATH="$tools/nvidia/cu13/bin:$PATH"
}

if [[ ${1:-} == --check ]]; then
  skip() { echo "sass_loop_counts.sh --check: skipped: $*"; exit 77; }
  command -v nvcc > /dev/null || skip "no nvcc on PATH"
  release=$(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
  [[ $release == 13.0 ]] || skip "nvcc $release; the constants are nvcc 13.0's counts"
  find_tools || skip "cuobjdump and nvdisasm are not on PATH and could not be fetched"
  counts=$(mktemp)
  counts_a=$(mktemp)
  trap 'rm -f "$counts" "$counts_a"' EXIT
  bash "$0" sm_90 kernels/masked_linear.cu > "$counts"
  bash "$0" sm_90a kernels/masked_linear.cu > "$counts_a"
  python3 bench/check_loop_constants.py "$counts" "$counts_a" bench/napkin_math.hpp
  exit
fi

arch=${1:-sm_90}
case "$arch" in
  sm_80 | sm_90 | sm_90a) shift || true ;;
  *.cu) arch=sm_90 ;;
  *) echo "sass_loop_counts.sh: arch must be sm_80, sm_90 or sm_90a, got '$arch'" >&2; exit 2 ;;
esac
files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=(kernels/masked_linear.cu)
find_tools || { echo "sass_loop_counts.sh: no cuobjdump and nvdisasm" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for file in "${files[@]}"; do
  [[ -f "$file" ]] || { echo "sass_loop_counts.sh: no such file: $file" >&2; exit 2; }
  object="$work/$(basename "$file" .cu).o"
  nvcc -O3 -std=c++17 --expt-relaxed-constexpr -DNMSNN_WITH_CUDA=1 -I include -I kernels \
    -I host -gencode="arch=compute_${arch#sm_},code=$arch" -Xptxas=-warn-spills -c "$file" \
    -o "$object"
  cuobjdump -sass "$object" > "$work/listing.sass"
  echo "== $file ($arch)"
  python3 bench/sass_loop_mix.py "$work/listing.sass"
done
