#!/usr/bin/env bash
# Installs what nmsnn needs to build and test on Debian/Ubuntu, if it is missing:
# a C++17 compiler, CMake, Python 3 (test scripts), zlib, nlohmann-json (the JSON parser, header
# only), GoogleTest and Google Benchmark, clang 14 and its compiler-rt (libFuzzer, for ctest's
# `fuzz` stage: scripts/fuzz.sh; GCC's sanitizer runtimes come with g++), and, when asked,
# Fashion-MNIST into /usr/share/datasets/fashion-mnist; and for the Python package's tests
# (scripts/test_python.sh) the system Python's venv, headers, NumPy, scikit-learn, pandas, pytest
# and matplotlib (Debian ships them for /usr/bin/python3 only); and OpenMPI (mpirun and its
# headers) for data-parallel training and its tests.
# The CUDA toolkit is optional (the CUDA engine is built when nvcc is found) and is not installed
# here.
set -euo pipefail

# usage: install_deps.sh [--fashion-mnist]   (also Debian's dataset-fashion-mnist package)
packages=(g++ cmake make python3 zlib1g-dev nlohmann-json3-dev libgtest-dev libgmock-dev
          libbenchmark-dev clang-14 libclang-rt-14-dev
          python3-venv python3-dev python3-numpy python3-sklearn python3-pandas python3-pytest
          python3-matplotlib openmpi-bin libopenmpi-dev)
[ "${1:-}" = "--fashion-mnist" ] && packages+=(dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "nmsnn: missing packages (${missing[*]}) and no apt-get to install them" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "nmsnn: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
