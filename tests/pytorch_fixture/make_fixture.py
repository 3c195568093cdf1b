#!/usr/bin/env python3
"""Writes seed_fixture.json: logits and every gradient of small spiking networks, by PyTorch.

The model is the seed's SpikingNeuronLayer stack as SPEC.md states it, written out plainly in
torch ops in float64, so that autograd gives the reference gradients:

    a[t] = W xi[t] + bias
    u[t] = a[t] + decay * v[t-1]                   (v[-1] = 0)
    s[t] = relu(u[t] - threshold)
    g[t] = (s[t] > 0), detached: a constant for differentiation
    v[t] = u[t] - (penalty / threshold) * u[t] * g[t]     reset "scale"
    v[t] = u[t] - (penalty + s[t]) * g[t]                 reset "subtract"
    the layer returns (v[t-1], s[t-1]) with delay (zeros at t = 0), (v[t], s[t]) without;
    the next layer's input is the returned s; the last layer's returned v is reduced over
    t = begin_eval .. T-1 (sum or mean) into the logits.
    loss = NLL of log_softmax(logits) with the given labels, averaged over the batch.

Nothing is taken from the library: its C++ test (tests/test_pytorch_fixture.cpp) reads the
file, runs the same network on its engines in float32 and compares.

The parameters and the input sequence are drawn from a seeded generator and rounded to float32,
so that both sides start from the same numbers. A network whose spikes could flip between the
float64 reference and a float32 engine would make the comparison meaningless (one spike more
moves the state by ~1.5), so every draw is checked: no pre-reset state u of any layer, step,
sample and neuron may lie within MARGIN of its threshold, and every layer must spike at some
steps but not at all of them. A draw that fails is redrawn from the next seed (deterministically).

Run from anywhere:  /usr/bin/python3 tests/pytorch_fixture/make_fixture.py
(torch: Debian's python3-torch, or pip's CPU wheel). It overwrites seed_fixture.json beside it.
"""
import json
import os
import re
import sys

import torch
import torch.nn.functional as F

MARGIN = 1e-4  # the smallest |u - threshold| allowed anywhere (float32 differs by ~1e-6)
T, B, I = 9, 3, 5
BASE_SEED = 20240611

# Each case: the library's model-file description (spec_json.hpp) of the network.
def spiking(size, reset, delay, decay=0.9, threshold=1.0, penalty=1.5):
    return {"type": "spiking", "size": size, "decay": decay, "threshold": threshold,
            "penalty": penalty, "reset": reset, "delay": delay}


CASES = [
    # The seed's own settings: scale reset, delay, mean readout from step 0.
    ("seed_scale_delay_mean", [spiking(7, "scale", True), spiking(4, "scale", True)],
     {"reduce": "mean", "begin_eval": 0}),
    # The README's reset rule, summed from a later step.
    ("subtract_delay_sum_begin3", [spiking(7, "subtract", True), spiking(4, "subtract", True)],
     {"reduce": "sum", "begin_eval": 3}),
    # No delay, a threshold other than 1 (penalty/threshold = 5/3), sum from step 2.
    ("scale_nodelay_sum_begin2",
     [spiking(7, "scale", False, decay=0.8, threshold=0.75, penalty=1.25),
      spiking(4, "scale", False, decay=0.8, threshold=0.75, penalty=1.25)],
     {"reduce": "sum", "begin_eval": 2}),
    # Three layers, mixed settings: delay on the first two only.
    ("subtract_three_layers_mixed",
     [spiking(7, "subtract", True, decay=0.95, threshold=0.8, penalty=0.5),
      spiking(6, "scale", True),
      spiking(4, "subtract", False, decay=0.7, threshold=1.25, penalty=1.0)],
     {"reduce": "mean", "begin_eval": 1}),
]


def as_f32(x):
    """The float64 tensor of the float32 nearest to x: the numbers both sides start from."""
    return x.to(torch.float32).to(torch.float64)


def draw(gen, layers):
    """Parameters by PyTorch name and the input sequence xi [T, B, I], all float32 values."""
    params = {}
    fan_in = I
    for l, layer in enumerate(layers):
        h = layer["size"]
        # Xavier-uniform weights and PyTorch-Linear biases (the seed's initialisation), with a
        # gain of 2 on the weights so that the hidden spikes drive the next layer to fire too.
        limit = 2.0 * (6.0 / (fan_in + h)) ** 0.5
        w = (torch.rand(h, fan_in, generator=gen, dtype=torch.float64) * 2 - 1) * limit
        bound = 1.0 / fan_in ** 0.5
        b = (torch.rand(h, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        params[f"layers.{l}.weight"] = as_f32(w)
        params[f"layers.{l}.bias"] = as_f32(b)
        fan_in = h
    # A given sequence (event-like data): values in [0, 1.5), about a third of them zero.
    xi = torch.rand(T, B, I, generator=gen, dtype=torch.float64) * 1.5
    keep = torch.rand(T, B, I, generator=gen, dtype=torch.float64) >= 1.0 / 3.0
    xi = as_f32(xi * keep)
    labels = torch.randint(0, layers[-1]["size"], (B,), generator=gen)
    return params, xi, labels


def forward(layers, readout, params, xi):
    """The logits [B, C] and, per layer, the pre-reset states u [T, B, H] (for the margin)."""
    x = [xi[t] for t in range(T)]  # the current layer's input, one [B, in] tensor per step
    us = []
    for l, layer in enumerate(layers):
        w, bias = params[f"layers.{l}.weight"], params[f"layers.{l}.bias"]
        decay, th, pen = layer["decay"], layer["threshold"], layer["penalty"]
        v = torch.zeros(B, layer["size"], dtype=torch.float64)
        states, spikes, u_seq = [], [], []
        for t in range(T):
            a = x[t] @ w.T + bias
            u = a + decay * v
            s = F.relu(u - th)
            g = (s > 0).to(torch.float64).detach()
            if layer["reset"] == "scale":
                v = u - (pen / th) * u * g
            else:
                v = u - (pen + s) * g
            states.append(v)
            spikes.append(s)
            u_seq.append(u.detach())
        if layer["delay"]:  # return the previous step's values, zeros at t = 0
            zero = torch.zeros(B, layer["size"], dtype=torch.float64)
            states = [zero] + states[:-1]
            spikes = [zero] + spikes[:-1]
        us.append(torch.stack(u_seq))
        x = spikes if l + 1 < len(layers) else states
    kept = torch.stack(x[readout["begin_eval"]:])
    logits = kept.mean(dim=0) if readout["reduce"] == "mean" else kept.sum(dim=0)
    return logits, us


def acceptable(layers, us):
    """(ok, smallest margin): every u away from its threshold, every layer spiking sometimes."""
    margin = min(float((u - layer["threshold"]).abs().min()) for layer, u in zip(layers, us))
    fire = [float((u > layer["threshold"]).to(torch.float64).mean())
            for layer, u in zip(layers, us)]
    lively = all(0.1 <= f <= 0.7 for f in fire)
    return margin >= MARGIN and lively, margin, fire


def tensor_json(x):
    return {"shape": list(x.shape), "values": [float(v) for v in x.reshape(-1).tolist()]}


def make_case(index, name, layers, readout):
    for attempt in range(1000):
        seed = BASE_SEED + 1000 * index + attempt
        gen = torch.Generator().manual_seed(seed)
        params, xi, labels = draw(gen, layers)
        with torch.no_grad():
            _, us = forward(layers, readout, params, xi)
        ok, margin, fire = acceptable(layers, us)
        if ok:
            break
    else:
        sys.exit(f"{name}: no acceptable draw in 1000 seeds")

    leaves = {k: p.clone().requires_grad_(True) for k, p in params.items()}
    xi_leaf = xi.clone().requires_grad_(True)
    logits, _ = forward(layers, readout, leaves, xi_leaf)
    logits.retain_grad()
    loss = F.nll_loss(F.log_softmax(logits, dim=-1), labels)
    loss.backward()
    for k, p in leaves.items():
        assert float(p.grad.abs().max()) > 0, f"{name}: {k} has an all-zero gradient"
    assert float(xi_leaf.grad.abs().max()) > 0, f"{name}: dL/dxi is all zero"

    fractions = ", ".join(f"{f:.2f}" for f in fire)
    print(f"{name}: seed {seed} (attempt {attempt + 1}), smallest |u - threshold| {margin:.3g}, "
          f"firing fractions per layer {fractions}, loss {loss.item():.6f}")
    model = {"inputs": I, "time_steps": T, "encoding": "sequence", "readout": readout,
             "layers": layers}
    return {
        "name": name,
        "model": model,
        "batch": B,
        "draw_seed": seed,
        "min_margin": margin,
        "parameters": {k: tensor_json(p) for k, p in params.items()},
        "input": tensor_json(xi),
        "labels": [int(v) for v in labels.tolist()],
        "loss": float(loss.item()),
        "logits": tensor_json(logits.detach()),
        "dlogits": tensor_json(logits.grad),
        "gradients": {k: tensor_json(p.grad) for k, p in leaves.items()},
        "dinput": tensor_json(xi_leaf.grad),
    }


def main():
    torch.set_default_dtype(torch.float64)
    out = {
        "about": "Reference logits and gradients of the seed's spiking network (SPEC.md 2-4), "
                 "float64 PyTorch autograd; made by tests/pytorch_fixture/make_fixture.py",
        "torch_version": torch.__version__,
        "dtype": "float64",
        "margin": MARGIN,
        "cases": [make_case(i, *c) for i, c in enumerate(CASES)],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_fixture.json")
    # Python writes floats with repr (up to 17 significant digits): they read back exactly.
    text = json.dumps(out, indent=1)
    # One line per array of numbers, so the file stays small and a diff shows what changed.
    text = re.sub(r"\[([^\[\]{}\"]+)\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(CASES)} cases, T={T} B={B} I={I}, "
          f"torch {torch.__version__})")


if __name__ == "__main__":
    main()
