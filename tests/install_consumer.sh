#!/usr/bin/env bash
# Installs the built library into a scratch prefix, then configures, builds and runs
# tests/consumer against it with find_package(nmsnn CONFIG REQUIRED).
#   usage: install_consumer.sh <build dir> <source dir>
set -euo pipefail
build=$1 src=$2
work=$build/install_consumer
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work.log" 2>&1 || { cat "$work.log"; exit 1; }
cmake -S "$src/tests/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release
cmake --build "$work/build"
"$work/build/consumer"
