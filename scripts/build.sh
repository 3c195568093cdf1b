#!/usr/bin/env bash
# Configures and builds nmsnn (Release) in ./build, installing missing packages first.
#   usage: scripts/build.sh [extra cmake flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$jobs"
