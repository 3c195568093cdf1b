#!/usr/bin/env bash
# Builds nmsnn and runs every test (CPU tests always; GPU tests skip with a message when no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
jobs=$(nproc 2>/dev/null || echo 2)
ctest --test-dir build --output-on-failure -j "$jobs"
