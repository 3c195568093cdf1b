#!/usr/bin/python3
"""The seed's MNIST spiking network in plain PyTorch: the reference for bench/compare_cpu.sh.

Same mathematics as the seed's MNIST example (SpikingNeuronLayer, InputDataToSpikingPerceptronLayer,
OutputDataToSpikingPerceptronLayer, SpikingNeuralNetwork, NonSpikingNeuralNetwork, train/test):

  * 784-100-10, T = 128 time steps, begin_eval = 0;
  * input encoding: xi[t] = rand_like(x) * x, a fresh torch.rand mask at every step;
  * spiking layer, per step (decay 0.9, threshold 1.0, penalty 1.5, the package's "scale" reset):
        u = fc(x) + decay * v_prev
        s = relu(u - threshold)
        g = (s > 0) as float            (no gradient through the comparison)
        v = u - (penalty / threshold) * u * g
    and the layer returns the PREVIOUS step's (v, s) (one-step firing delay);
  * layer 2 is fed layer 1's delayed output s; the logits are layer 2's delayed inner state v
    reduced over time (t >= begin_eval); loss = nll_loss(log_softmax(logits));
  * the reduction: the seed's MNIST model builds OutputDataToSpikingPerceptronLayer(average_output=False)
    with the comment "Sum on outputs", but that class's flag is inverted (False -> x.mean(dim=0)), so
    the seed actually AVERAGES over time. --reduce mean (default) is what the seed executes;
    --reduce sum multiplies the logits by T - begin_eval (128) and, with the seed's lr 0.1, the loss
    blows up from the second batch on;
  * weights Xavier-uniform, biases PyTorch's default Linear initialisation;
  * the seed's schedule: SGD momentum 0.5, lr 0.1 / 0.05 / 0.01 over 3 epochs, a fresh optimizer each
    epoch, batch 1000, shuffled training set, inputs x/255 - 0.5 ("centered", from the seed's
    Normalize((0.5,), (1.0,))).

MNIST is read from the gzip IDX files in --data (no torchvision). The seed's plotting is dropped.

Speed: train_samples_per_second = training samples / pure training seconds (forward + backward +
optimizer step; batch gathering, logging and evaluation are outside the timed region), with the
first batch excluded as warm-up (the figure including it is reported too).

Run with Debian's /usr/bin/python3 (python3-torch, OpenBLAS). Example:
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/seed_pytorch.py --threads 2 \
        --train-limit 5000 --epochs 1 --time-budget 60 --report /tmp/pt.json
"""

import argparse
import ctypes
import ctypes.util
import gzip
import json
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N_INPUTS, N_HIDDEN, N_CLASSES = 28 * 28, 100, 10


# --------------------------------------------------------------------------------------- data
def read_idx(path):
    """Reads a (gzip-compressed) IDX file into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtype_code, ndim = raw[2], raw[3]
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{dtype_code:02x}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=dtypes[dtype_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {np.prod(dims)} elements, found {data.size}")
    return data.reshape(dims)


def find_idx(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{stem}(.gz) not found in {data_dir}")


def load_mnist(data_dir, split, input_scale, limit):
    """Returns (x [N, 784] float32, y [N] int64) as torch tensors."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(find_idx(data_dir, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_idx(data_dir, f"{prefix}-labels-idx1-ubyte"))
    if limit is not None and limit >= 0:
        images, labels = images[:limit], labels[:limit]
    x = images.reshape(images.shape[0], N_INPUTS).astype(np.float32) / np.float32(255.0)
    if input_scale == "centered":
        x -= np.float32(0.5)  # the seed's Normalize((0.5,), (1.0,))
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(labels.astype(np.int64))


# -------------------------------------------------------------------------------------- model
class SpikingNeuronLayer(nn.Module):
    """The seed's spiking layer with the "scale" reset and the one-step output delay."""

    def __init__(self, n_inputs, n_hidden, decay=0.9, threshold=1.0, penalty=1.5):
        super().__init__()
        self.n_hidden = n_hidden
        self.decay = decay
        self.threshold = threshold
        self.penalty = penalty
        self.fc = nn.Linear(n_inputs, n_hidden)
        nn.init.xavier_uniform_(self.fc.weight)  # the seed re-initialises 2-D params; bias keeps the default

    def initial_state(self, batch, like):
        zeros = like.new_zeros(batch, self.n_hidden)
        return zeros, zeros

    def forward(self, x, state):
        """One time step. Returns (delayed (v, s) = the previous step's, new state)."""
        prev_inner, prev_outer = state
        inner = self.fc(x) + prev_inner * self.decay
        outer = F.relu(inner - self.threshold)
        gate = (outer > 0).float()
        inner = inner - (self.penalty / self.threshold * inner) * gate
        return (prev_inner, prev_outer), (inner, outer)


class SpikingNeuralNetwork(nn.Module):
    """784-100-10 spiking network; logits = layer 2's delayed state reduced over t >= begin_eval."""

    def __init__(self, n_time_steps=128, begin_eval=0, reduce="mean"):
        super().__init__()
        assert 0 <= begin_eval < n_time_steps
        assert reduce in ("sum", "mean")
        self.n_time_steps = n_time_steps
        self.begin_eval = begin_eval
        self.reduce = reduce
        self.layer1 = SpikingNeuronLayer(N_INPUTS, N_HIDDEN, decay=0.9, threshold=1.0, penalty=1.5)
        self.layer2 = SpikingNeuronLayer(N_HIDDEN, N_CLASSES, decay=0.9, threshold=1.0, penalty=1.5)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        batch = x.shape[0]
        state1 = self.layer1.initial_state(batch, x)
        state2 = self.layer2.initial_state(batch, x)
        out = []
        for _ in range(self.n_time_steps):
            xi = torch.rand(x.shape, dtype=x.dtype, device=x.device) * x  # fresh mask every step
            (_, layer1_output), state1 = self.layer1(xi, state1)
            (layer2_state, _), state2 = self.layer2(layer1_output, state2)
            out.append(layer2_state)
        stacked = torch.stack(out[self.begin_eval:])
        logits = stacked.mean(dim=0) if self.reduce == "mean" else stacked.sum(dim=0)
        return F.log_softmax(logits, dim=-1)


class NonSpikingNeuralNetwork(nn.Module):
    """The seed's non-spiking baseline: 784-100-10 MLP with ReLU, default initialisation."""

    def __init__(self):
        super().__init__()
        self.layer1 = nn.Linear(N_INPUTS, N_HIDDEN)
        self.layer2 = nn.Linear(N_HIDDEN, N_CLASSES)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        return F.log_softmax(self.layer2(F.relu(self.layer1(x))), dim=-1)


def flops_per_training_sample(model_kind, time_steps):
    """Useful FLOPs of one training sample in the dense formulation (the same formula as
    bench/compare_cpu.sh): forward products and weight gradients of both layers plus the input
    gradient of layer 2 (layer 1's input gradient is not needed). Elementwise work, biases and the
    optimizer are not counted.
        snn: 2*T*784*100 (L1 fwd) + 2*T*784*100 (L1 dW) + 3 * 2*T*100*10 (L2 fwd, dW, dX)
        mlp: the same with T = 1"""
    t = time_steps if model_kind == "snn" else 1
    return 2 * t * N_INPUTS * N_HIDDEN * 2 + 2 * t * N_HIDDEN * N_CLASSES * 3


# ---------------------------------------------------------------------------------- utilities
def openblas_threads_in_use():
    """OpenBLAS's own thread count, if the OpenBLAS loaded into this process exposes it."""
    candidates = ["libopenblas.so.0", ctypes.util.find_library("openblas"), "libblas.so.3"]
    for name in candidates:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
            fn = lib.openblas_get_num_threads
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_int
        return int(fn())
    return None


def parse_lrs(text):
    lrs = [float(v) for v in text.split(",") if v.strip()]
    if not lrs:
        raise argparse.ArgumentTypeError("--lr needs at least one value")
    return lrs


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def evaluate(model, x, y, batch):
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for start in range(0, x.shape[0], batch):
            xb, yb = x[start:start + batch], y[start:start + batch]
            output = model(xb)
            loss_sum += F.nll_loss(output, yb, reduction="sum").item()
            correct += (output.argmax(dim=1) == yb).sum().item()
    n = max(1, x.shape[0])
    return correct / n, loss_sum / n


# ------------------------------------------------------------------------------------- main
def main(argv=None):
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=os.path.join(repo_root, "data", "mnist"),
                   help="directory with the MNIST gzip IDX files")
    p.add_argument("--model", choices=["snn", "mlp"], default="snn")
    p.add_argument("--input-scale", choices=["unit", "centered"], default="centered",
                   help="unit: x/255; centered: x/255 - 0.5 (the seed)")
    p.add_argument("--time-steps", type=int, default=128)
    p.add_argument("--begin-eval", type=int, default=0)
    p.add_argument("--reduce", choices=["mean", "sum"], default="mean",
                   help="readout reduction over time; the seed executes mean (its average_output=False)")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr", type=parse_lrs, default=[0.1, 0.05, 0.01],
                   help="comma list: learning rate per epoch (the last repeats)")
    p.add_argument("--momentum", type=float, default=0.5, help="SGD momentum")
    p.add_argument("--epochs", type=int, default=None,
                   help="default: one epoch per --lr value (3 for the seed)")
    p.add_argument("--train-limit", type=int, default=None, help="use the first N training samples")
    p.add_argument("--test-limit", type=int, default=None, help="use the first N test samples")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-budget", type=float, default=None,
                   help="speed runs: stop training (at a batch boundary) before this many seconds "
                        "are exceeded; evaluation is skipped unless --eval")
    p.add_argument("--eval", dest="eval", action="store_true", default=None,
                   help="evaluate on the test set after each epoch")
    p.add_argument("--no-eval", dest="eval", action="store_false")
    p.add_argument("--log-every", type=int, default=10, help="progress line every N batches")
    p.add_argument("--report", default=None, help="write a JSON report here")
    args = p.parse_args(argv)

    do_eval = args.eval if args.eval is not None else args.time_budget is None
    epochs = args.epochs if args.epochs is not None else len(args.lr)
    if args.batch <= 0 or epochs <= 0 or args.time_steps <= 0:
        p.error("--batch, --epochs and --time-steps must be positive")

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    shuffle_gen = torch.Generator().manual_seed(args.seed + 1)

    t_load = time.perf_counter()
    x_train, y_train = load_mnist(args.data, "train", args.input_scale, args.train_limit)
    if do_eval:
        x_test, y_test = load_mnist(args.data, "test", args.input_scale, args.test_limit)
        if x_test.shape[0] == 0:  # --test-limit 0: nothing to evaluate
            do_eval, x_test, y_test = False, None, None
    else:
        x_test = y_test = None
    load_seconds = time.perf_counter() - t_load
    n_train = x_train.shape[0]
    if n_train == 0:
        p.error("no training samples")

    if args.model == "snn":
        model = SpikingNeuralNetwork(args.time_steps, args.begin_eval, args.reduce)
    else:
        model = NonSpikingNeuralNetwork()

    def make_optimizer(lr):
        if args.optimizer == "sgd":
            return torch.optim.SGD(model.parameters(), lr=lr, momentum=args.momentum)
        return torch.optim.Adam(model.parameters(), lr=lr)

    env_ob = os.environ.get("OPENBLAS_NUM_THREADS")
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"OPENBLAS_NUM_THREADS={env_ob}, model {args.model}, T={args.time_steps}, reduce {args.reduce}, "
        f"scale {args.input_scale}, batch {args.batch}, {n_train} training samples, "
        f"{args.optimizer} lr {args.lr}, load {load_seconds:.2f}s")

    batch_seconds, batch_sizes = [], []
    epoch_results = []
    stopped_by_budget = False
    train_wall0 = time.perf_counter()
    batches_per_epoch = (n_train + args.batch - 1) // args.batch

    for epoch in range(epochs):
        lr = args.lr[min(epoch, len(args.lr) - 1)]
        optimizer = make_optimizer(lr)  # fresh optimizer every epoch, as the seed does
        model.train()
        order = torch.randperm(n_train, generator=shuffle_gen)
        for b in range(batches_per_epoch):
            if args.time_budget is not None and len(batch_seconds) >= 2:
                elapsed = time.perf_counter() - train_wall0
                recent = batch_seconds[-1]
                if elapsed + recent > args.time_budget:
                    stopped_by_budget = True
                    break
            idx = order[b * args.batch:(b + 1) * args.batch]
            xb, yb = x_train[idx], y_train[idx]

            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            output = model(xb)
            loss = F.nll_loss(output, yb)
            loss.backward()
            optimizer.step()
            dt = time.perf_counter() - t0

            batch_seconds.append(dt)
            batch_sizes.append(int(xb.shape[0]))
            if b % args.log_every == 0 or b == batches_per_epoch - 1:
                acc = (output.detach().argmax(dim=1) == yb).float().mean().item()
                log(f"epoch {epoch + 1} batch {b + 1}/{batches_per_epoch} "
                    f"[{(b + 1) * args.batch if b + 1 < batches_per_epoch else n_train}/{n_train}] "
                    f"loss {loss.item():.4f} acc {100 * acc:.1f}% "
                    f"{dt:.3f}s/batch {xb.shape[0] / dt:.1f} samples/s")
        result = {"epoch": epoch + 1, "lr": lr}
        if do_eval and not stopped_by_budget:
            acc, test_loss = evaluate(model, x_test, y_test, args.batch)
            result.update(test_accuracy=acc, test_loss=test_loss)
            log(f"epoch {epoch + 1}: test loss {test_loss:.4f}, accuracy {100 * acc:.2f}% "
                f"({x_test.shape[0]} samples)")
        epoch_results.append(result)
        if stopped_by_budget:
            log(f"time budget {args.time_budget}s reached after {len(batch_seconds)} batches")
            break

    if do_eval and stopped_by_budget:  # evaluation explicitly asked for: evaluate where we stopped
        acc, test_loss = evaluate(model, x_test, y_test, args.batch)
        epoch_results[-1].update(test_accuracy=acc, test_loss=test_loss)
        log(f"test loss {test_loss:.4f}, accuracy {100 * acc:.2f}% ({x_test.shape[0]} samples)")

    total_samples, total_seconds = sum(batch_sizes), sum(batch_seconds)
    if len(batch_seconds) >= 2:  # first batch = warm-up, excluded
        meas_samples, meas_seconds = sum(batch_sizes[1:]), sum(batch_seconds[1:])
        warmup_excluded = True
    else:
        meas_samples, meas_seconds = total_samples, total_seconds
        warmup_excluded = False
    sps = meas_samples / meas_seconds if meas_seconds > 0 else None
    sps_all = total_samples / total_seconds if total_seconds > 0 else None
    # Robust to a busy machine: full-size batches after the warm-up, median batch time.
    full = [t for t, n in zip(batch_seconds[1:] if warmup_excluded else batch_seconds,
                              batch_sizes[1:] if warmup_excluded else batch_sizes) if n == args.batch]
    sps_median = args.batch / float(np.median(full)) if full else None
    flops = flops_per_training_sample(args.model, args.time_steps)
    last_acc = next((r["test_accuracy"] for r in reversed(epoch_results) if "test_accuracy" in r), None)

    log(f"trained {total_samples} samples in {total_seconds:.2f}s over {len(batch_seconds)} batches; "
        f"{sps:.1f} samples/s excluding the first batch "
        f"({sps_all:.1f} including it), {flops * sps / 1e9:.2f} GFLOP/s useful")

    report = {
        "engine": "pytorch",
        "model": args.model,
        "train_samples_per_second": sps,
        "train_samples": meas_samples,
        "train_seconds": meas_seconds,
        "warmup_excluded": warmup_excluded,
        "warmup_samples": batch_sizes[0] if warmup_excluded else 0,
        "warmup_seconds": batch_seconds[0] if warmup_excluded else 0.0,
        "train_samples_per_second_incl_warmup": sps_all,
        "train_samples_per_second_median_batch": sps_median,
        "train_samples_total": total_samples,
        "train_seconds_total": total_seconds,
        "batches": len(batch_seconds),
        "batch_seconds": batch_seconds,
        "stopped_by_time_budget": stopped_by_budget,
        "time_budget": args.time_budget,
        "flops_per_train_sample": flops,
        "useful_gflops": flops * sps / 1e9 if sps else None,
        "test_accuracy": last_acc,
        "test_samples": int(x_test.shape[0]) if x_test is not None else 0,
        "epochs": epoch_results,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "openblas_threads": env_ob,
        "openblas_threads_in_use": openblas_threads_in_use(),
        "input_scale": args.input_scale,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "momentum": args.momentum if args.optimizer == "sgd" else None,
        "batch": args.batch,
        "time_steps": args.time_steps if args.model == "snn" else None,
        "begin_eval": args.begin_eval if args.model == "snn" else None,
        "reduce": args.reduce if args.model == "snn" else None,
        "train_limit": args.train_limit,
        "seed": args.seed,
        "python": platform.python_version(),
        "numpy_version": np.__version__,
    }
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        with open(args.report, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
