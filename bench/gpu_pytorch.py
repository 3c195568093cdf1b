#!/usr/bin/env python3
"""PyTorch baselines for the CUDA benchmarks of issue 3, on the same GPU as bench/bench_cuda.

Workloads (the same as bench_cuda.cu):
  W1  the seed's MNIST training step: 784-100-10, T=128, B=1000, fresh Uniform[0,1) mask per step
      on dense inputs in [-0.5, 0.5), scale reset, delay, mean readout, NLL(log_softmax),
      SGD(lr 0.1, momentum 0.5): forward + backward + update.
  W2  a given input sequence (spikes, p=0.1) through Linear(16384, 16384) + spiking layer, T=500,
      B=16: forward + backward (loss = sum(logits * g) for a fixed random g).

Variants:
  eager       the seed's model: a Python loop over t, one small matmul per layer per step
  graphs      the eager step captured whole into a CUDA graph (torch.cuda.graph) and replayed
  compiled    the eager loop with its per-step cell compiled by torch.compile (if it works here)
  multistep   one big matmul over all T*B rows per layer (masks materialised), then a per-step
              elementwise loop for the neurons: the strongest plain-PyTorch formulation
Each runs in FP32 (allow_tf32 = False, PyTorch's default for matmuls); multistep also with TF32.

Reported per run: ms per step (median over timed iterations, CUDA-synchronised wall clock),
samples/s, TFLOP/s of the dense products (the same count as bench_cuda), and peak device memory
(torch.cuda.max_memory_allocated). A variant that fails records its error instead.

    python3 bench/gpu_pytorch.py --out out/pytorch.json [--only W1] [--no-compile]

`--smoke --device cpu` runs every variant that can run on the CPU (not graphs) on tiny versions
of the workloads, to check the script itself where there is no GPU; its timings mean nothing.
"""

import argparse
import json
import math
import platform
import sys
import time
import traceback

import torch
import torch.nn.functional as F

DECAY, THRESHOLD, PENALTY = 0.9, 1.0, 1.5


# ------------------------------------------------------------------------------- the neuron
def lif_step(a, v_prev):
    """One step of the seed's layer on input current a: returns (u, s, v) with the scale reset."""
    u = a + DECAY * v_prev
    s = F.relu(u - THRESHOLD)
    g = (s > 0).float()  # no gradient through the comparison
    v = u - (PENALTY / THRESHOLD) * u * g
    return s, v


# ------------------------------------------------------------------------------- the models
class Layer(torch.nn.Module):
    def __init__(self, n_in, n_out, device):
        super().__init__()
        self.fc = torch.nn.Linear(n_in, n_out, device=device)
        torch.nn.init.xavier_uniform_(self.fc.weight)


class EagerNet(torch.nn.Module):
    """The seed's per-step loop. `noisy`: x is [B, I] masked per step; else x is xi [T, B, I]."""

    def __init__(self, sizes, T, noisy, device, cell=None):
        super().__init__()
        self.layers = torch.nn.ModuleList(Layer(a, b, device) for a, b in zip(sizes[:-1], sizes[1:]))
        self.T, self.noisy = T, noisy
        self.cell = cell or self.step

    def step(self, inp, states):
        """One time step through every layer; returns the last layer's returned (delayed) state."""
        new_states, out_v = [], None
        x = inp
        for layer, (s_prev, v_prev) in zip(self.layers, states):
            s, v = lif_step(layer.fc(x), v_prev)
            new_states.append((s, v))
            x, out_v = s_prev, v_prev  # delay: the layer returns the previous step's values
        return out_v, new_states

    def forward(self, x):
        B = x.shape[-2]
        states = [(x.new_zeros(B, l.fc.out_features), x.new_zeros(B, l.fc.out_features))
                  for l in self.layers]
        total = 0
        for t in range(self.T):
            inp = torch.rand_like(x) * x if self.noisy else x[t]
            out_v, states = self.cell(inp, states)
            total = total + out_v
        return total / self.T  # mean readout from step 0


class MultiStepNet(EagerNet):
    """One matmul over all T*B rows per layer, then the per-step elementwise recurrence."""

    def forward(self, x):
        T = self.T
        inp = torch.rand((T,) + tuple(x.shape), device=x.device) * x if self.noisy else x
        for i, layer in enumerate(self.layers):
            a = layer.fc(inp)  # [T, B, H]: one GEMM
            v = a.new_zeros(a.shape[1:])
            out_s, out_v = [a.new_zeros(a.shape[1:])], [a.new_zeros(a.shape[1:])]  # delay
            for t in range(T):
                s, v = lif_step(a[t], v)
                if t + 1 < T:
                    out_s.append(s)
                    out_v.append(v)
            if i + 1 < len(self.layers):
                inp = torch.stack(out_s)
            else:
                return torch.stack(out_v).mean(dim=0)


# ------------------------------------------------------------------------------- workloads
def dense_flops(sizes, T, B):
    """As bench_cuda: forward product and weight gradient per layer, input gradient past layer 0."""
    m = T * B
    flops = 0.0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        flops += 2 * (2.0 * m * a * b)
        if i > 0:
            flops += 2.0 * m * a * b
    return flops


SMOKE = False  # --smoke: tiny workloads


def make_workload(name, device):
    g = torch.Generator(device="cpu").manual_seed(1)
    if name == "W1":
        sizes, T, B = ([784, 100, 10], 128, 1000) if not SMOKE else ([784, 20, 10], 6, 8)
        x = (torch.rand(B, 784, generator=g) - 0.5).to(device)
        labels = (torch.arange(B) % 10).to(device)
        return dict(sizes=sizes, T=T, B=B, noisy=True, x=x, labels=labels, update=True)
    sizes, T, B = ([16384, 16384], 500, 16) if not SMOKE else ([64, 64], 7, 3)
    xi = (torch.rand(T, B, sizes[0], generator=g) < 0.1).float().to(device)
    grad = (torch.rand(B, sizes[1], generator=g) - 0.5).to(device)
    return dict(sizes=sizes, T=T, B=B, noisy=False, x=xi, grad=grad, update=False)


def make_step(net, w):
    """One training step as a closure (forward, loss, backward, and the update for W1)."""
    if w["update"]:
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.5)

        def step():
            opt.zero_grad(set_to_none=False)
            loss = F.nll_loss(F.log_softmax(net(w["x"]), dim=-1), w["labels"])
            loss.backward()
            opt.step()
            return loss
    else:
        def step():
            for p in net.parameters():
                p.grad = None
            loss = (net(w["x"]) * w["grad"]).sum()
            loss.backward()
            return loss
    return step


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, iters, warmup, device):
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def run_variant(wname, variant, tf32, iters, device):
    cuda = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if cuda:
        torch.cuda.empty_cache()
    torch.manual_seed(0)
    w = make_workload(wname, device)
    cls = MultiStepNet if variant == "multistep" else EagerNet
    net = cls(w["sizes"], w["T"], w["noisy"], device)
    if variant == "compiled":
        net.cell = torch.compile(net.step)
    step = make_step(net, w)
    warmup = 2
    if variant == "graphs":
        # Whole-step capture, as in PyTorch's CUDA-graphs guide: warm up on a side stream (the
        # optimiser creates its momentum buffers there), capture, then replay.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        fn = graph.replay
    else:
        fn = step
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    seconds = time_it(fn, iters, warmup, device)
    total = time.perf_counter() - t0
    flops = dense_flops(w["sizes"], w["T"], w["B"])
    return {
        "workload": wname, "variant": variant, "math": "tf32" if tf32 else "fp32",
        "ms": seconds * 1e3, "samples_per_s": w["B"] / seconds, "tflops": flops / seconds / 1e12,
        "peak_memory_mb": torch.cuda.max_memory_allocated() / 1e6 if cuda else 0.0,
        "iterations": iters, "wall_seconds": total,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="pytorch_gpu.json")
    ap.add_argument("--only", choices=["W1", "W2"], default=None)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    ap.add_argument("--iters-w1", type=int, default=10)
    ap.add_argument("--iters-w2", type=int, default=3)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--smoke", action="store_true", help="tiny workloads, to test the script")
    args = ap.parse_args()
    global SMOKE
    SMOKE = args.smoke
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device for PyTorch", file=sys.stderr)
        json.dump({"error": "no CUDA device"}, open(args.out, "w"), indent=1)
        return 1
    device = torch.device(args.device)
    report = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(), "runs": [],
    }
    plan = []
    workloads = ["W1", "W2"] if args.only is None else [args.only]
    iters = {"W1": args.iters_w1, "W2": args.iters_w2}
    for wname in workloads:
        variants = [("eager", False), ("graphs", False), ("multistep", False), ("multistep", True)]
        if device.type != "cuda":  # CUDA graphs and TF32 exist on the GPU only
            variants = [("eager", False), ("multistep", False)]
        plan += [(wname, v, tf32, iters[wname]) for v, tf32 in variants]
    if not args.no_compile:  # last: compilation takes the longest and is the likeliest to fail
        plan += [(wname, "compiled", False, iters[wname]) for wname in workloads]
    for wname, variant, tf32, iters in plan:
        label = f"{wname} {variant} {'tf32' if tf32 else 'fp32'}"
        print(f"[pytorch] {label} ...", file=sys.stderr, flush=True)
        try:
            r = run_variant(wname, variant, tf32, iters, device)
            print(f"[pytorch] {label}: {r['ms']:.2f} ms/step, {r['samples_per_s']:.0f} samples/s, "
                  f"{r['tflops']:.2f} TFLOP/s, peak {r['peak_memory_mb']:.0f} MB", file=sys.stderr, flush=True)
        except Exception as e:  # record and go on: one failing variant must not hide the others
            r = {"workload": wname, "variant": variant, "math": "tf32" if tf32 else "fp32",
                 "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
            print(f"[pytorch] {label}: FAILED {r['error']}", file=sys.stderr, flush=True)
        report["runs"].append(r)
        with open(args.out, "w") as f:  # after every run, so a timeout keeps what finished
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
