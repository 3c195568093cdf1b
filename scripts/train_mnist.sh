#!/usr/bin/env bash
# Builds nmsnn and trains the seed's MNIST network (784-100-10, T=128) on the MNIST files that
# ship in data/mnist, then prints test accuracy and training throughput.
#   usage: scripts/train_mnist.sh [nmsnn train flags...]   e.g. --preset seed, --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh > build.log 2>&1 || { tail -50 build.log; echo "build failed: see build.log" >&2; exit 1; }
exec build/tools/nmsnn train --data data/mnist "$@"
