"""The PyTorch model a network description stands for, in plain torch ops (nmsnn.torch's
reference_module). Nothing here calls the library's engines: it is the statement of SPEC.md
sections 2-3 that the library's logits are checked against, and the model a file saved by
`nmsnn train --save` (or Network.state_dict()) loads into by name. Only the spec's JSON is read
by the library (its checks and defaults).

    ref = nmsnn.torch.reference_module(spec)       # layers.0 = nn.Conv2d, layers.1 = LIF, ...
    ref.load_state_dict(state, strict=True)        # the library's parameter names and shapes
    logits = ref(x)                                # x [B, I] or [B, C, H, W] (repeated over T),
                                                   # or a sequence [T, B, I] / [T, B, C, H, W]

Every layer runs at every step, [T, B, ...] -> [T, B, ...]: nn.Linear, nn.Conv2d, the pools,
nn.Flatten and the activations on each step (time folded into the batch), the neurons (LIF,
SeedSpiking) over the steps in order, TemporalMean over all of them. A neuron layer passes its
spikes s to the next layer; the last layer's output, the inner state v of a last neuron layer,
is reduced over t = begin_eval .. T-1 (mean or sum) into the logits [B, outputs].
"""
import json
import math

import torch
from torch import nn

from . import _core


def lif_sequence(a, decay, threshold, penalty, reset, delay, keep_u=False):
    """The seed's leaky integrate-and-fire neurons over currents a [T, B, ...] (SPEC.md 2):

        u[t] = a[t] + decay * v[t-1]          (v[-1] = 0)
        s[t] = relu(u[t] - threshold);  g[t] = s[t] > 0, a constant for differentiation
        v[t] = u[t] - (penalty / threshold) * u[t] * g[t]     reset "scale"
        v[t] = u[t] - (penalty + s[t]) * g[t]                 reset "subtract"

    Returns (v, s), each [T, B, ...]: with `delay` those of the previous step (zeros at t = 0),
    as the seed returns them; and with keep_u the pre-reset states u [T, B, ...] (detached)."""
    v = torch.zeros_like(a[0])
    states, spikes, us = [], [], []
    for t in range(a.shape[0]):
        u = a[t] + decay * v
        s = torch.relu(u - threshold)
        g = (s > 0).to(a.dtype)
        if reset == "scale":
            v = u - (penalty / threshold) * u * g
        else:
            v = u - (penalty + s) * g
        states.append(v)
        spikes.append(s)
        us.append(u.detach())
    if delay:
        zero = torch.zeros_like(a[0])
        states, spikes = [zero] + states[:-1], [zero] + spikes[:-1]
    out = (torch.stack(states), torch.stack(spikes))
    return out + (torch.stack(us),) if keep_u else out


class LIF(nn.Module):
    """The "lif" layer: the seed's neurons on whatever the previous layer returns. No parameters.
    forward(a [T, B, ...]) returns (v, s); with record=True the module keeps the last pass's
    pre-reset states in `.u` (to see how close any neuron came to its threshold)."""

    def __init__(self, decay=0.9, threshold=1.0, penalty=1.5, reset="scale", delay=True):
        super().__init__()
        self.decay, self.threshold, self.penalty = float(decay), float(threshold), float(penalty)
        self.reset, self.delay = str(reset), bool(delay)
        self.record, self.u = False, None

    def neurons(self, a):
        out = lif_sequence(a, self.decay, self.threshold, self.penalty, self.reset, self.delay,
                           keep_u=self.record)
        if self.record:
            self.u = out[2]
        return out[0], out[1]

    def forward(self, a):
        return self.neurons(a)

    def extra_repr(self):
        return (f"decay={self.decay}, threshold={self.threshold}, penalty={self.penalty}, "
                f"reset={self.reset!r}, delay={self.delay}")


class SeedSpiking(nn.Linear):
    """The "spiking" layer (the seed's SpikingNeuronLayer): a[t] = W x[t] + bias, then LIF.
    Its parameters are nn.Linear's, so that they load as "layers.N.weight" [H, I] and
    "layers.N.bias" [H]."""

    def __init__(self, in_features, out_features, decay=0.9, threshold=1.0, penalty=1.5,
                 reset="scale", delay=True):
        super().__init__(in_features, out_features)
        self.lif = LIF(decay, threshold, penalty, reset, delay)

    def forward(self, x):
        return self.lif.neurons(nn.functional.linear(x, self.weight, self.bias))


class TemporalMean(nn.Module):
    """The "temporal_avg_pool" layer: [T, B, ...] -> [1, B, ...]."""

    def forward(self, x):
        return x.mean(dim=0, keepdim=True)


_PER_STEP = (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d, nn.Flatten, nn.ReLU, nn.Tanh,
             nn.Sigmoid)
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def _pair(v):
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


def _window(hw, kernel, stride, padding):
    return tuple((hw[d] + 2 * padding[d] - kernel[d]) // stride[d] + 1 for d in range(2))


class Reference(nn.Module):
    """A network description as plain PyTorch modules: self.layers[i] is the spec's layer i (see
    the module docstring). forward(x, encoding=None) returns the logits [B, outputs]."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.time_steps = int(spec["time_steps"])
        self.encoding = spec["encoding"]
        self.readout = dict(spec["readout"])
        self.input_shape = tuple(spec["input_shape"]) if spec.get("input_shape") else None
        shape = self.input_shape or (int(spec["inputs"]),)
        layers = []
        for i, layer in enumerate(spec["layers"]):
            kind = layer["type"]
            if kind == "dense":
                m = nn.Linear(shape[0], layer["size"])
                shape = (layer["size"],)
            elif kind == "spiking":
                m = SeedSpiking(shape[0], layer["size"], layer["decay"], layer["threshold"],
                                layer["penalty"], layer["reset"], layer["delay"])
                shape = (layer["size"],)
            elif kind == "conv2d":
                k, s, p = _pair(layer["kernel"]), _pair(layer["stride"]), _pair(layer["padding"])
                m = nn.Conv2d(shape[0], layer["out_channels"], k, s, p)
                shape = (layer["out_channels"],) + _window(shape[1:], k, s, p)
            elif kind in ("avg_pool2d", "max_pool2d"):
                k = _pair(layer["kernel"])
                s = tuple(si or ki for si, ki in zip(_pair(layer["stride"]), k))
                m = (nn.AvgPool2d if kind == "avg_pool2d" else nn.MaxPool2d)(k, s)
                shape = (shape[0],) + _window(shape[1:], k, s, (0, 0))
            elif kind == "flatten":
                m = nn.Flatten()
                shape = (math.prod(shape),)
            elif kind == "activation":
                m = _ACTIVATIONS[layer["function"]]()
            elif kind == "lif":
                m = LIF(layer["decay"], layer["threshold"], layer["penalty"], layer["reset"],
                        layer["delay"])
            elif kind == "temporal_avg_pool":
                m = TemporalMean()
            else:
                raise NotImplementedError(
                    f"layer {i} ({kind}): the PyTorch reference covers dense, spiking, conv2d, "
                    "avg_pool2d, max_pool2d, flatten, activation, lif and temporal_avg_pool "
                    "layers")
            layers.append(m)
        self.layers = nn.ModuleList(layers)

    def sequence(self, x, encoding=None):
        """The input as the sequence the first layer reads: [T, B, I] or [T, B, C, H, W]."""
        encoding = encoding or ("sequence" if x.dim() in (3, 5) else self.encoding)
        if encoding == "noisy":
            raise ValueError("the noisy encoding's masks come from the library's random stream; "
                             "the reference takes encoding='repeated' or a sequence")
        if encoding == "repeated":
            x = x.unsqueeze(0).expand(self.time_steps, *x.shape)
        elif encoding != "sequence":
            raise ValueError(f"encoding must be 'repeated' or 'sequence', got {encoding!r}")
        if self.input_shape and x.dim() == 3:
            x = x.reshape(x.shape[0], x.shape[1], *self.input_shape)
        return x

    def forward(self, x, encoding=None):
        x = self.sequence(x, encoding)
        last = len(self.layers) - 1
        for i, m in enumerate(self.layers):
            if isinstance(m, (LIF, SeedSpiking)):
                v, s = m(x)
                x = v if i == last else s
            elif isinstance(m, _PER_STEP):
                T, B = x.shape[:2]
                y = m(x.reshape(T * B, *x.shape[2:]))
                x = y.reshape(T, B, *y.shape[1:])
            else:
                x = m(x)
        kept = x[self.readout["begin_eval"]:].flatten(2)
        return kept.mean(dim=0) if self.readout["reduce"] == "mean" else kept.sum(dim=0)


def reference_module(spec):
    """The plain-PyTorch model of a network description: a dict or its JSON text (checked and
    completed with the defaults by the library's description reader), or an nmsnn.Network /
    nmsnn.torch.Network, whose parameters it then takes too (float32, on the CPU)."""
    params = None
    if hasattr(spec, "state_dict") and hasattr(spec, "spec"):
        params = {k: torch.as_tensor(v).detach().clone() for k, v in spec.state_dict().items()}
        spec = spec.spec
    elif isinstance(spec, str):
        spec = json.loads(spec)
    elif not isinstance(spec, dict):
        raise TypeError(f"spec must be a dict, JSON text or a network, got {type(spec).__name__}")
    ref = Reference(json.loads(_core.normalize_spec(json.dumps(spec), 0)))
    if params is not None:
        ref.load_state_dict(params, strict=True)
    return ref
