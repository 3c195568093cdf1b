#!/usr/bin/env bash
# compare_ranks.sh — data-parallel training on this machine: the seed's MNIST network trained by
# one process with 2 threads against 2 MPI ranks with 1 thread each (the same 2 cores), in one
# run, plus the bytes each step reduces.
#
#   usage: bench/compare_ranks.sh [--train-limit N] [--epochs E] [--nmsnn PATH] [--out DIR]
#
# Both runs use the library's default MNIST recipe (784-100-10, T = 128, batch 100, Adam) on the
# first N training images (default 10000), one epoch, no test set; the figure is the report's
# train_samples_per_second (the trainer's own clock: training only). Each step sums every
# parameter's gradient once: 4 bytes per parameter (79,510 parameters for 784-100-10), plus
# 2 + 2 * ranks doubles of step statistics. The model of N-GPU scaling that goes with these
# figures is in bench/RESULTS.md ("Data parallelism").
set -euo pipefail
cd "$(dirname "$0")/.."
limit=10000 epochs=1 nmsnn=build/tools/nmsnn out=bench/out/ranks
while [ $# -gt 0 ]; do
  case "$1" in
    --train-limit) limit=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --nmsnn) nmsnn=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "compare_ranks.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v mpirun >/dev/null || { echo "compare_ranks.sh: mpirun not found (scripts/install_deps.sh installs OpenMPI)" >&2; exit 1; }
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
args=(train --data data/mnist --train-limit "$limit" --test-limit 0 --epochs "$epochs" --quiet)
mpi=(mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)

rate() { /usr/bin/python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['train_samples_per_second']))" "$1"; }

"$nmsnn" "${args[@]}" --threads 2 --report "$out/one_rank.json" > "$out/one_rank.log" 2>&1
"${mpi[@]}" -np 2 "$nmsnn" "${args[@]}" --threads 1 --report "$out/two_ranks.json" > "$out/two_ranks.log" 2>&1
"$nmsnn" "${args[@]}" --threads 1 --report "$out/one_thread.json" > "$out/one_thread.log" 2>&1
one=$(rate "$out/one_rank.json") two=$(rate "$out/two_ranks.json") single=$(rate "$out/one_thread.json")
params=79510
{
  echo "| run | samples/s |"
  echo "| --- | ---: |"
  echo "| 1 rank x 1 thread | $single |"
  echo "| 1 rank x 2 threads | $one |"
  echo "| 2 ranks x 1 thread (MPI, loopback TCP) | $two |"
  echo
  echo "Reduced per step: $params parameters x 4 bytes = $((params * 4)) bytes of gradients, plus $((2 + 2 * 2)) doubles of step statistics (2 ranks)."
} | tee "$out/summary.md"
