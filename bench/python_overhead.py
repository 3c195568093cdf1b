"""The Python package's overhead: `SpikingClassifier.fit` on MNIST against `nmsnn train`, the same
network, data, settings and seed, run back to back (alternated, `--repeats` times each).

    <venv>/bin/python bench/python_overhead.py --cli build/tools/nmsnn [--train-limit 10000] [--repeats 2]

Both sides train the README's MNIST network (the `default` preset: 784-100-10 spiking, T = 128,
inputs x/255 not standardised, Adam lr 2e-3, batch 100, seed 1) for one epoch on the first
--train-limit training images, without progress output (`--quiet`, verbose=0) and without a test
pass. Figures printed:
  - the CLI's training throughput (its "training throughput N samples/s" line: the training loop);
  - the estimator's train_samples_per_second_ (the library's count of the same loop, which now
    also calls back into Python once per batch for Ctrl-C);
  - the estimator's end-to-end rate: samples / wall-clock seconds of the whole fit() call
    (input checks, float32 conversion, model construction and training);
and the ratios Python / CLI, of the best runs and run by run (1.00 = no overhead; the acceptance
bound is 0.95). The machine's speed drifts between runs: compare the ratios, not single figures.
"""
import argparse
import gzip
import pathlib
import re
import statistics
import subprocess
import sys
import time

import numpy as np

import nmsnn

REPO = pathlib.Path(__file__).resolve().parents[1]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def cli_run(cli, data, limit):
    cmd = [cli, "train", "--data", str(data), "--train-limit", str(limit), "--test-limit", "0",
           "--epochs", "1", "--seed", "1", "--quiet"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"training throughput (\d+(?:\.\d+)?) samples/s", out)
    if not m:
        sys.exit(f"no throughput line in the CLI's output:\n{out}")
    return float(m.group(1)), " ".join(cmd)


def python_run(X, y):
    p = nmsnn._core.training_preset("default")
    clf = nmsnn.SpikingClassifier(
        hidden=tuple(p["hidden"]), time_steps=p["time_steps"], epochs=1,
        batch_size=p["batch_size"], optimizer=p["optimizer"], lr=p["lr"][0],
        lr_step=p["lr_step_epochs"], lr_gamma=p["lr_gamma"], standardize=False,
        random_state=1, verbose=0)
    start = time.perf_counter()
    clf.fit(X, y)
    wall = time.perf_counter() - start
    return clf.train_samples_per_second_, len(X) / wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", required=True, help="the nmsnn command of this tree")
    ap.add_argument("--data", default=str(REPO / "data" / "mnist"))
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()

    data = pathlib.Path(a.data)
    images = read_idx(data / "train-images-idx3-ubyte.gz")[:a.train_limit]
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)  # the CLI's "unit"
    y = read_idx(data / "train-labels-idx1-ubyte.gz")[:a.train_limit].astype(np.int64)

    cli, py_loop, py_wall = [], [], []
    for r in range(a.repeats):
        # Alternated order (CLI first, then Python first, ...), so a machine that speeds up or
        # slows down during the runs favours neither side.
        if r % 2 == 0:
            c, command = cli_run(a.cli, data, a.train_limit)
            loop, wall = python_run(X, y)
        else:
            loop, wall = python_run(X, y)
            c, command = cli_run(a.cli, data, a.train_limit)
        cli.append(c), py_loop.append(loop), py_wall.append(wall)
        print(f"run {r + 1}: cli {c:.0f} samples/s; python fit {loop:.0f} samples/s "
              f"(training loop), {wall:.0f} samples/s (whole fit call)", flush=True)

    best = max(cli)
    print(f"cli command: {command}")
    print(f"python: SpikingClassifier(default preset, epochs=1, standardize=False, random_state=1, "
          f"verbose=0).fit on the same {a.train_limit} images")
    print(f"nmsnn {nmsnn.__version__}, cpu kernels {nmsnn.cpu_kernel_set()}")
    print(f"cli                 best {best:.0f}  median {statistics.median(cli):.0f} samples/s")
    print(f"python (loop)       best {max(py_loop):.0f}  median {statistics.median(py_loop):.0f} samples/s"
          f"  ratio of bests {max(py_loop) / best:.3f}")
    print(f"python (whole fit)  best {max(py_wall):.0f}  median {statistics.median(py_wall):.0f} samples/s"
          f"  ratio of bests {max(py_wall) / best:.3f}")
    paired = [p / c for p, c in zip(py_loop, cli)]
    print(f"per-run ratios python (loop) / cli: {' '.join(f'{r:.3f}' for r in paired)}, "
          f"median {statistics.median(paired):.3f}")


if __name__ == "__main__":
    main()
