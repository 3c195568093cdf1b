#!/usr/bin/env python3
"""nmsnn's spiking layers inside PyTorch models, trained with a torch optimiser.

A synthetic event-data task: 3 classes of spike trains on 12 input channels over 25 steps. Every
channel fires at random (15% of steps); the 4 channels of a sample's class fire more often (30%).
Two models learn it:

  1. SpikingLinear layers composed by hand: 12 -> 32 spiking -> 3 spiking, the last layer's
     state averaged over time, then a torch.nn.Linear readout;
  2. nmsnn.torch.Network: the library's whole network (same sizes, the seed's mean readout) as one
     module, behind a torch.nn.Linear that mixes the input channels at every step.

    python examples/python/torch_spiking.py [--quick] [--epochs N]

Needs torch (Debian: apt-get install python3-torch) and the nmsnn package (pip install .).
"""
import argparse
import time

import torch
import torch.nn.functional as F

import nmsnn.torch as nt

T, CHANNELS, CLASSES = 25, 12, 3


def make_data(n, gen):
    """Spike trains x [T, n, CHANNELS] (0 or 1) and their classes y [n]."""
    y = torch.randint(0, CLASSES, (n,), generator=gen)
    rate = torch.full((n, CHANNELS), 0.15)
    group = CHANNELS // CLASSES
    for c in range(CLASSES):
        rate[y == c, c * group:(c + 1) * group] = 0.30
    x = (torch.rand(T, n, CHANNELS, generator=gen) < rate).float()
    return x, y


class HandComposed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nt.SpikingLinear(CHANNELS, 32)   # the seed's defaults: scale reset, delay
        self.out = nt.SpikingLinear(32, CLASSES)
        self.readout = torch.nn.Linear(CLASSES, CLASSES)

    def forward(self, x):
        _, spikes = self.hidden(x)          # spikes [T, B, 32] feed the next layer
        state, _ = self.out(spikes)         # the inner state [T, B, 3], as the seed reads logits
        return self.readout(state.mean(0))


def whole_network():
    spec = {"inputs": CHANNELS, "time_steps": T, "encoding": "sequence",
            "readout": {"reduce": "mean", "begin_eval": 0},
            "layers": [{"type": "spiking", "size": 32}, {"type": "spiking", "size": CLASSES}]}
    return torch.nn.Sequential(torch.nn.Linear(CHANNELS, CHANNELS), nt.Network(spec, seed=1))


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return acc


def train(name, model, data, epochs, batch=50, lr=0.01):
    (x, y), (xt, yt) = data
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    start = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in range(0, len(y), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[:, idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"{name}: epoch {epoch + 1}/{epochs}  loss {total / len(y):.4f}  "
              f"test accuracy {accuracy(model, xt, yt):.3f}")
    print(f"{name}: test accuracy {accuracy(model, xt, yt):.3f} "
          f"({time.time() - start:.1f} s, chance {1 / CLASSES:.3f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and epochs (the test suite)")
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args()
    epochs = args.epochs or (4 if args.quick else 10)
    n = 400 if args.quick else 1200
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(2)
    data = (make_data(n, gen), make_data(400, gen))
    train("SpikingLinear", HandComposed(), data, epochs)
    train("nmsnn.torch.Network", whole_network(), data, epochs)


if __name__ == "__main__":
    main()
